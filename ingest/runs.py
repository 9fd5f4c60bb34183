"""Ingestion runs: one `runs` row per poll, push, backfill or stream session, with its errors.

Every stored row carries the id of the run that brought it; every rejected item is an
`ingest_errors` row of that run with the reason and an excerpt of the payload. A run whose
process died, or lost the database, before it could finish stays `running` in the table;
the next ingest leader (or the same one, back from an outage) closes it as `interrupted`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, cast, insert, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import func

from db.ops import INTERRUPTED, RUNNING
from db.schema import ingest_errors, runs

log = logging.getLogger(__name__)

PAYLOAD_EXCERPT = 2000
# Kinds only the ingest leader runs: a new leader knows no one else is running them.
LEADER_KINDS = ("ws_session", "p2p_poll", "gap_repair", "retention")

_open_runs: set[int] = set()  # ids of this process's runs that have not finished
_open_runs_lock = threading.Lock()


def this_process() -> str:
    """host:pid of the calling process (read each time: gunicorn forks after import)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunCounts:
    """What a run has seen so far."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0


class Run:
    """A `runs` row and its counters; thread-safe, so a reader and a writer can share one."""

    def __init__(self, engine: Engine, source: str, kind: str, market: str | None = None,
                 params: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.source = source
        self.kind = kind
        self.market = market
        self.counts = RunCounts()
        self.errors = 0
        self._lock = threading.Lock()
        # Set once `finish` has written the counters: what is added later (the writer commits
        # a stream's last rows after its session closed) goes to the stored row.
        self._finished = False
        # Which process ran it: with several app processes, only the ingest leader polls.
        recorded = {**(params or {}), "process": this_process()}
        with engine.begin() as connection:
            self.id: int = connection.scalar(
                insert(runs).values(source=source, kind=kind, market=market,
                                    params=recorded).returning(runs.c.id))
        with _open_runs_lock:
            _open_runs.add(self.id)

    def add(self, *, received: int = 0, inserted: int = 0, duplicates: int = 0,
            rejected: int = 0) -> None:
        """Add to the counters (kept in memory until `save_counts` or `finish`; once the run
        is finished, added to its row)."""
        with self._lock:
            self.counts.received += received
            self.counts.inserted += inserted
            self.counts.duplicates += duplicates
            self.counts.rejected += rejected
            if not self._finished:
                return
        added = {name: value for name, value in (
            ("received", received), ("inserted", inserted), ("duplicates", duplicates),
            ("rejected", rejected)) if value}
        if not added:  # the writer reports every batch of a run, nothing new included
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(update(runs).where(runs.c.id == self.id).values(
                    {runs.c[name]: runs.c[name] + value for name, value in added.items()}))
        except DBAPIError as error:  # the caller (the writer, after its commit) goes on
            log.warning("could not add to the finished run's counts: %s", error,
                        extra={"run_id": self.id, **added})

    def error(self, message: str, payload: str | bytes | None = None,
              level: str = "error") -> None:
        """Record what went wrong, with an excerpt of the offending payload."""
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        excerpt = payload[:PAYLOAD_EXCERPT] if payload is not None else None
        with self._lock:
            self.errors += 1
        with self.engine.begin() as connection:
            connection.execute(insert(ingest_errors).values(
                run_id=self.id, level=level, message=message, payload=excerpt))
        log.warning("%s", message, extra={"run_id": self.id, "source": self.source})

    def note(self, details: Mapping[str, Any]) -> None:
        """Add `details` to the run's params (what a maintenance run did, say)."""
        with self.engine.begin() as connection:
            connection.execute(update(runs).where(runs.c.id == self.id).values(
                params=runs.c.params.op("||")(cast(dict(details), JSONB))))

    def save_counts(self) -> None:
        """Write the counters to the row (a long stream session calls this now and then)."""
        with self._lock:
            values = vars(self.counts).copy()
        with self.engine.begin() as connection:
            connection.execute(update(runs).where(runs.c.id == self.id).values(**values))

    def finish(self, status: str | None = None, error: str | None = None) -> str:
        """Close the run: ok, partial (something rejected or logged) or failed; return it."""
        # Held while writing, so that a later `add` lands on the row after these values.
        with self._lock:
            values = vars(self.counts).copy()
            if status is None:
                status = "partial" if (self.counts.rejected or self.errors or error) else "ok"
            try:
                with self.engine.begin() as connection:
                    connection.execute(update(runs).where(runs.c.id == self.id).values(
                        **values, status=status, error=error, finished_at=func.now()))
            finally:
                # Unfinished for good if this failed: the next leader closes it as interrupted.
                self._finished = True
                with _open_runs_lock:
                    _open_runs.discard(self.id)
        return status


@contextmanager
def start_run(engine: Engine, source: str, kind: str, market: str | None = None,
              params: Mapping[str, Any] | None = None) -> Iterator[Run]:
    """Open a run; close it ok/partial on success, failed (with the reason) on an exception."""
    run = Run(engine, source, kind, market, params)
    try:
        yield run
    except Exception as error:
        run.finish("failed", error=f"{error.__class__.__name__}: {error}"[:1000])
        raise
    else:
        run.finish()


def close_interrupted(engine: Engine) -> int:
    """Close as `interrupted` the runs left `running` by a process that is gone, or by this
    one before it lost the database: every unfinished run of a leader-only kind but this
    process's open ones, and any run of a dead process on this host. Return how many."""
    with _open_runs_lock:
        still_open = sorted(_open_runs)
    stale = or_(and_(runs.c.kind.in_(LEADER_KINDS), runs.c.id.notin_(still_open)),
                runs.c.id.in_(_dead_on_this_host(engine, still_open)))
    note = (f"interrupted: closed by the ingest leader {this_process()}; its process ended "
            "or lost the database before it finished")
    with engine.begin() as connection:
        closed = list(connection.scalars(
            update(runs).where(runs.c.status == RUNNING, stale)
            .values(status=INTERRUPTED, finished_at=func.now(),
                    error=func.coalesce(runs.c.error + "; ", "") + note)
            .returning(runs.c.id)))
    if closed:
        log.warning("closed %d interrupted runs", len(closed), extra={"run_ids": closed[:50]})
    return len(closed)


def _dead_on_this_host(engine: Engine, still_open: list[int]) -> list[int]:
    """Unfinished runs (of any kind) started by a process of this host that no longer runs."""
    host = socket.gethostname()
    query = select(runs.c.id, runs.c.params["process"].astext).where(
        runs.c.status == RUNNING, runs.c.params["process"].astext.like(f"{host}:%"))
    with engine.connect() as connection:
        found = connection.execute(query).all()
    return [run_id for run_id, process in found
            if run_id not in still_open and not _alive(process.rpartition(":")[2])]


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
