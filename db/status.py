"""What the database can tell about the system's health: reachability, extension, feeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from db.timescale import installed_version


@dataclass
class DatabaseStatus:
    """A snapshot of the database as seen from one process."""

    reachable: bool
    error: str | None = None
    server_version: str | None = None
    timescaledb: str | None = None
    revision: str | None = None
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)


FEEDS_SQL = text("""
    SELECT DISTINCT ON (source) source, kind, status, started_at, finished_at,
           inserted, rejected, error
    FROM runs
    ORDER BY source, started_at DESC
""")


def _feeds(connection, now: datetime) -> dict[str, dict[str, Any]]:
    feeds = {}
    for row in connection.execute(FEEDS_SQL).mappings():
        last = row["finished_at"] or row["started_at"]
        feeds[row["source"]] = {
            "kind": row["kind"],
            "status": row["status"],
            "last_run_at": last.astimezone(UTC).isoformat(),
            "age_seconds": round((now - last).total_seconds(), 1),
            "error": row["error"],
        }
    return feeds


def database_status(engine: Engine) -> DatabaseStatus:
    """Ask the database what it is and what the feeds last did; never raises."""
    try:
        with engine.connect() as connection:
            has_runs = connection.scalar(text("SELECT to_regclass('public.runs') IS NOT NULL"))
            has_version = connection.scalar(
                text("SELECT to_regclass('public.alembic_version') IS NOT NULL"))
            return DatabaseStatus(
                reachable=True,
                server_version=connection.scalar(text("SHOW server_version")),
                timescaledb=installed_version(connection),
                revision=connection.scalar(text("SELECT version_num FROM alembic_version"))
                if has_version else None,
                feeds=_feeds(connection, datetime.now(UTC)) if has_runs else {},
            )
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        return DatabaseStatus(reachable=False, error=str(reason).strip().splitlines()[0])
