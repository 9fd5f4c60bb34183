"""The job queue: long work (backfills) a page asks for and the ingest leader executes.

A job is `queued`, then `running` once a leader claims it, then `done`, `failed` or
`cancelled`. Each claim adds one to `attempts`, and every later write of the worker names
the attempt it holds: a worker whose job was taken over by a newer leader finds its writes
refused and stops (a fence, so two leaders never both finish one job). `checkpoint` is
where a resumed attempt starts; its meaning belongs to the job's kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, cast, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from db.schema import jobs, runs

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
# What a heartbeat tells the worker: carry on, stop because a user asked, or stop because
# the job is no longer its own (a newer leader claimed it).
GO, CANCEL, LOST = "go", "cancel", "lost"


class JobError(RuntimeError):
    """A job request the queue refuses; the message says why."""


class JobBusy(JobError):
    """The same job (kind and parameters) is queued or running already."""


class JobNotCancellable(JobError):
    """The job does not exist or has ended already."""


@dataclass(frozen=True)
class Job:
    """A claimed job: what to do, where to resume, and the attempt that holds it."""

    id: int
    kind: str
    params: dict[str, Any]
    attempts: int
    checkpoint: dict[str, Any] | None
    run_id: int | None
    resumed: bool  # claimed from a leader that left it running

    @classmethod
    def from_row(cls, row: Mapping[str, Any], resumed: bool) -> Job:
        return cls(row["id"], row["kind"], dict(row["params"] or {}), row["attempts"],
                   row["checkpoint"], row["run_id"], resumed)


def enqueue(engine: Engine, kind: str, params: Mapping[str, Any],
            requested_by: str | None = None) -> int:
    """Queue a job and return its id; raise JobBusy if the same one is queued or running."""
    try:
        with engine.begin() as connection:
            return connection.scalar(insert(jobs).values(
                kind=kind, params=dict(params), requested_by=requested_by).returning(jobs.c.id))
    except IntegrityError as error:
        if "jobs_active_uniq" not in str(error):
            raise
    existing = _active_twin(engine, kind, params)
    raise JobBusy(f"the same {kind} job is {existing or 'queued or running'} already")


def _active_twin(engine: Engine, kind: str, params: Mapping[str, Any]) -> str | None:
    with engine.connect() as connection:
        row = connection.execute(select(jobs.c.id, jobs.c.status).where(
            jobs.c.kind == kind, jobs.c.params == cast(dict(params), JSONB),
            jobs.c.status.in_(ACTIVE))).first()
    return f"{row.status} (job {row.id})" if row else None


def claim_next(engine: Engine, *, stale_seconds: float, take_all_running: bool = False,
               kinds: tuple[str, ...] | None = None) -> Job | None:
    """Claim the next job for this leader: first one a gone leader left running, else the
    oldest queued one; None if there is nothing to do.

    A running job counts as left behind when its heartbeat is older than `stale_seconds`,
    or always when `take_all_running` (a leader that has just been elected knows that any
    running job belongs to one that led before it).
    """
    abandoned = jobs.c.status == RUNNING
    if not take_all_running:
        stale = func.now() - timedelta(seconds=stale_seconds)
        abandoned = and_(abandoned, or_(jobs.c.heartbeat_at.is_(None),
                                        jobs.c.heartbeat_at < stale))
    with engine.begin() as connection:
        _cancel_abandoned(connection, abandoned)
        candidate = (select(jobs.c.id, jobs.c.status)
                     .where(or_(abandoned, jobs.c.status == QUEUED))
                     .order_by((jobs.c.status == QUEUED).asc(), jobs.c.created_at, jobs.c.id)
                     .limit(1).with_for_update(skip_locked=True))
        if kinds is not None:
            candidate = candidate.where(jobs.c.kind.in_(kinds))
        found = connection.execute(candidate).first()
        if found is None:
            return None
        row = connection.execute(
            update(jobs).where(jobs.c.id == found.id)
            .values(status=RUNNING, started_at=func.coalesce(jobs.c.started_at, func.now()),
                    heartbeat_at=func.now(), attempts=jobs.c.attempts + 1)
            .returning(*jobs.c)).mappings().one()
    return Job.from_row(row, resumed=found.status == RUNNING)


def _cancel_abandoned(connection, abandoned) -> None:
    """A left-behind job a user asked to cancel is cancelled, not resumed."""
    connection.execute(update(jobs).where(abandoned, jobs.c.cancel_requested).values(
        status=CANCELLED, finished_at=func.now(),
        error=func.coalesce(jobs.c.error, "cancelled while its leader was gone")))


def heartbeat(engine: Engine, job: Job, *, checkpoint: Mapping[str, Any] | None = None,
              run_id: int | None = None) -> str:
    """Say the job is alive (with where it got to); return GO, CANCEL or LOST."""
    values: dict[str, Any] = {"heartbeat_at": func.now()}
    if checkpoint is not None:
        values["checkpoint"] = dict(checkpoint)
    if run_id is not None:
        values["run_id"] = run_id
    with engine.begin() as connection:
        cancel = connection.scalar(update(jobs).where(*_held(job)).values(**values)
                                   .returning(jobs.c.cancel_requested))
    if cancel is None:
        return LOST
    return CANCEL if cancel else GO


def finish(engine: Engine, job: Job, status: str, error: str | None = None) -> bool:
    """End a job the worker still holds as done, failed or cancelled; False if it lost it."""
    assert status in (DONE, FAILED, CANCELLED), status
    # A cancelled job keeps who cancelled it (request_cancel's note) before how it stopped.
    note = func.concat_ws("; ", jobs.c.error, error) if status == CANCELLED else error
    with engine.begin() as connection:
        ended = connection.execute(update(jobs).where(*_held(job)).values(
            status=status, finished_at=func.now(), error=note, heartbeat_at=func.now()))
    return ended.rowcount == 1


def release(engine: Engine, job: Job) -> bool:
    """Hand a job back to the queue (its leader is stopping); it keeps its checkpoint."""
    with engine.begin() as connection:
        released = connection.execute(update(jobs).where(*_held(job)).values(
            status=QUEUED, heartbeat_at=None))
    return released.rowcount == 1


def _held(job: Job) -> tuple:
    return jobs.c.id == job.id, jobs.c.attempts == job.attempts, jobs.c.status == RUNNING


def request_cancel(engine: Engine, job_id: int, actor: str) -> str:
    """Cancel a queued job at once, or ask a running one to stop at its next page.

    Return the job's status afterwards (`cancelled` or `running`); raise JobNotCancellable
    when there is no such job or it has ended already.
    """
    note = f"cancelled by {actor}"
    queued = jobs.c.status == QUEUED
    with engine.begin() as connection:
        status = connection.scalar(update(jobs).where(
            jobs.c.id == job_id, jobs.c.status.in_(ACTIVE)).values(
            cancel_requested=True, error=note,
            status=case((queued, CANCELLED), else_=jobs.c.status),
            finished_at=case((queued, func.now()), else_=jobs.c.finished_at))
            .returning(jobs.c.status))
    if status is None:
        raise JobNotCancellable(f"job {job_id} is not queued or running")
    return status


def end_run(engine: Engine, run_id: int, status: str, error: str) -> None:
    """Restate how a job's run ended (a stopped backfill's run closes `failed` first)."""
    with engine.begin() as connection:
        connection.execute(update(runs).where(runs.c.id == run_id).values(
            status=status, error=error, finished_at=func.coalesce(runs.c.finished_at,
                                                                  func.now())))


def close_abandoned_run(engine: Engine, run_id: int | None, note: str) -> None:
    """Close as interrupted the run a gone leader left open for a job being resumed."""
    if run_id is None:
        return
    with engine.begin() as connection:
        connection.execute(update(runs).where(runs.c.id == run_id, runs.c.status == RUNNING)
                           .values(status="interrupted", finished_at=func.now(), error=note))


def get(engine: Engine, job_id: int) -> dict[str, Any] | None:
    """One job as a dict, or None."""
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def list_recent(engine: Engine, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest jobs with the counts of their current run (prefixed run_)."""
    query = (select(jobs, runs.c.status.label("run_status"), runs.c.received.label("run_received"),
                    runs.c.inserted.label("run_inserted"),
                    runs.c.duplicates.label("run_duplicates"),
                    runs.c.params.label("run_params"))
             .select_from(jobs.outerjoin(runs, runs.c.id == jobs.c.run_id))
             .order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit))
    if kind is not None:
        query = query.where(jobs.c.kind == kind)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
