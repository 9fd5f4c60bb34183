"""Read-side queries for operators (the admin tab): runs and their errors, the ingest leader."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, text

from db.locks import INGEST_LEADER_LOCK
from db.schema import ingest_errors, runs

RUNNING, INTERRUPTED = "running", "interrupted"
# interrupted: its process died, or lost the database, before it could finish the run.
CANCELLED = "cancelled"  # a user cancelled its job (db/jobs.py) between two pages
RUN_STATUSES = (RUNNING, "ok", "partial", "failed", INTERRUPTED, CANCELLED)

# Who holds the ingest leader's advisory lock right now, as PostgreSQL itself sees it.
# A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
LEADER_SQL = text("""
    SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr,
           a.backend_start, a.state
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = :key
""")


def list_runs(engine: Engine, *, source: str | None = None, status: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    """The newest runs, optionally of one source and status, with their error count."""
    errors = (select(func.count()).select_from(ingest_errors)
              .where(ingest_errors.c.run_id == runs.c.id).scalar_subquery())
    query = select(runs, errors.label("errors")).order_by(runs.c.started_at.desc(),
                                                           runs.c.id.desc()).limit(limit)
    if source:
        query = query.where(runs.c.source == source)
    if status:
        query = query.where(runs.c.status == status)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def run_detail(engine: Engine, run_id: int, error_limit: int = 200) -> dict[str, Any] | None:
    """One run with its counts and its first errors, or None."""
    with engine.connect() as connection:
        run = connection.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if run is None:
            return None
        errors = connection.execute(
            select(ingest_errors).where(ingest_errors.c.run_id == run_id)
            .order_by(ingest_errors.c.at, ingest_errors.c.id).limit(error_limit)).mappings()
        return {**dict(run), "errors": [dict(error) for error in errors]}


def sources(engine: Engine) -> list[str]:
    """Every source that has had a run."""
    with engine.connect() as connection:
        return list(connection.scalars(select(runs.c.source).distinct().order_by(runs.c.source)))


def ingest_leader(engine: Engine) -> dict[str, Any] | None:
    """The session holding the ingest leader lock (application, address, since), or None."""
    with engine.connect() as connection:
        row = connection.execute(LEADER_SQL, {"key": INGEST_LEADER_LOCK}).mappings().first()
    return dict(row) if row else None
