"""Backfills started from the admin tab: queued as jobs, executed by the ingest leader.

A page only queues the job (`queue_backfill`); the leader's job queue (ingest/job_queue.py)
runs `run_queued_backfill` in a thread of its own. The run row (kind klines_backfill) holds
the counts after every page and the expected total in its params, so every web process can
show the progress. Before each page the job saves where that page starts as its checkpoint;
a resumed job (its leader died, or stopped) backfills from there, and since backfill merges
idempotently, a page done twice changes nothing. The rollups of the whole range are redone
once the last page is stored.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from db import jobs, rollups
from db.intervals import from_ms, to_ms
from ingest.binance_rest import BackfillStopped, KlinesRequest
from ingest.binance_rest import backfill_klines as run_backfill

if TYPE_CHECKING:
    from ingest.job_queue import Attempt

log = logging.getLogger(__name__)
KIND = "klines_backfill"


class BackfillBusy(jobs.JobBusy):
    """The same backfill is queued or running already."""


def backfill_params(request: KlinesRequest) -> dict[str, Any]:
    """The job parameters of a request (the same request gives the same parameters)."""
    return {"symbol": request.symbol, "interval": request.interval,
            "from": request.start.isoformat(), "to": request.end.isoformat()}


def request_from_params(params: dict[str, Any]) -> KlinesRequest:
    """The request a job's parameters describe."""
    return KlinesRequest(params["symbol"], params["interval"],
                         datetime.fromisoformat(params["from"]),
                         datetime.fromisoformat(params["to"])).validate()


def queue_backfill(engine: Engine, request: KlinesRequest, requested_by: str | None) -> int:
    """Check the request and queue it for the ingest leader; return the job id."""
    request.validate()
    try:
        return jobs.enqueue(engine, KIND, backfill_params(request), requested_by)
    except jobs.JobBusy as error:
        raise BackfillBusy(f"this {request.symbol} {request.interval} backfill: {error}"
                           ) from None


def resume_point(request: KlinesRequest, checkpoint: dict[str, Any] | None) -> datetime:
    """Where an attempt starts: the first page not yet stored, else the request's start."""
    next_ms = (checkpoint or {}).get("next_ms")
    if isinstance(next_ms, int) and next_ms > to_ms(request.start):
        return from_ms(next_ms)
    return request.start


def run_queued_backfill(attempt: Attempt) -> None:
    """Execute a queued backfill from its checkpoint, then redo the range's rollups."""
    request = request_from_params(attempt.job.params)
    start = resume_point(request, attempt.job.checkpoint)
    if start < request.end:
        remaining = KlinesRequest(request.symbol, request.interval, start, request.end)
        try:
            report = run_backfill(
                attempt.engine, attempt.rest(), remaining,
                should_stop=lambda run, next_ms: attempt.should_stop(
                    checkpoint={"next_ms": next_ms}, run_id=run.id))
        except BackfillStopped as stopped:
            raise attempt.stopped(stopped.run_id) from None
        log.info("backfill done", extra={**report, "job_id": attempt.job.id})
    # Late data: the rollups of every bucket the whole backfill touched are redone.
    rollups.recompute(attempt.engine, request.symbol, request.start, request.end)
