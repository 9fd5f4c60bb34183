"""The leader's job queue: execute, one at a time, the long jobs pages have queued.

Every POLL_SECONDS the leader polls the `jobs` table (db/jobs.py). While a job runs in
the `job-<id>` thread a poll only renews the lease; when none runs it claims the next job:
first one a gone leader left running (all of them on the first poll of a new leader, which
knows that no one else leads), else the oldest queued one. A worker beats the job's
heartbeat between pages and stops at the next page when a user cancelled it, when a newer
leader took it over (its claim is fenced by `attempts`), or when this process stopped
polling, i.e. no longer leads (its lease ran out): the job then goes back to the queue.
Resuming starts from the job's checkpoint; every executor must be idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine

from app.config import Settings
from db import jobs
from ingest.backfill_jobs import KIND as BACKFILL_KIND
from ingest.backfill_jobs import run_queued_backfill
from ingest.binance_rest import BinanceRest
from ingest.jobs import JobSpec
from ingest.runs import this_process
from ingest.writer import DATABASE_ERRORS

log = logging.getLogger(__name__)

POLL_SECONDS = 5
STOP_SECONDS = 10.0  # a stopping leader waits this long for a job to reach its next page
LEASE_SECONDS = 30  # no poll for this long: this process no longer leads
STALE_SECONDS = 180  # a running job's heartbeat older than this: its leader is gone
LEAVING = "leaving"

Executor = Callable[["Attempt"], None]
EXECUTORS: dict[str, Executor] = {BACKFILL_KIND: run_queued_backfill}


class JobStopped(Exception):
    """An executor stopped between two pages because `Attempt.should_stop` said so."""

    def __init__(self, reason: str, run_id: int | None) -> None:
        super().__init__(reason)
        self.reason, self.run_id = reason, run_id


class Attempt:
    """One claim of a job by this leader: what executors use to beat and to stop."""

    def __init__(self, queue: JobQueue, job: jobs.Job) -> None:
        self.queue, self.job = queue, job
        self.engine, self.settings = queue.engine, queue.settings
        self.stop_reason: str | None = None

    def rest(self) -> BinanceRest:
        """A Binance REST client for this attempt."""
        return self.queue.rest_factory()

    def should_stop(self, *, checkpoint: Mapping[str, Any] | None = None,
                    run_id: int | None = None) -> bool:
        """Beat the heartbeat (saving the checkpoint); True when the job must stop now."""
        if not self.queue.leading():
            self.stop_reason = LEAVING
            return True
        beat = jobs.heartbeat(self.engine, self.job, checkpoint=checkpoint, run_id=run_id)
        if beat != jobs.GO:
            self.stop_reason = beat
        return beat != jobs.GO

    def stopped(self, run_id: int | None) -> JobStopped:
        """The exception an executor raises once it has stopped for `stop_reason`."""
        return JobStopped(self.stop_reason or LEAVING, run_id)


class JobQueue:
    """The poller and its single worker thread; one per leadership term."""

    def __init__(self, settings: Settings, engine: Engine, *,
                 rest_factory: Callable[[], BinanceRest] | None = None,
                 lease_seconds: float = LEASE_SECONDS,
                 stale_seconds: float = STALE_SECONDS) -> None:
        self.settings, self.engine = settings, engine
        rest_url = settings.endpoints["BINANCE_REST_URL"]
        self.rest_factory = rest_factory or (lambda: BinanceRest(rest_url))
        self.lease_seconds, self.stale_seconds = lease_seconds, stale_seconds
        self.thread: threading.Thread | None = None
        self._fresh = True
        self._last_poll = time.monotonic()
        self._stop = threading.Event()

    def leading(self) -> bool:
        """Whether this queue's leader still polls (so still leads) and was not stopped."""
        return (not self._stop.is_set()
                and time.monotonic() - self._last_poll < self.lease_seconds)

    def poll(self) -> jobs.Job | None:
        """Renew the lease; if idle, claim the next job and start it; return what started."""
        self._last_poll = time.monotonic()
        if self._stop.is_set() or (self.thread is not None and self.thread.is_alive()):
            return None
        try:
            job = jobs.claim_next(self.engine, stale_seconds=self.stale_seconds,
                                  take_all_running=self._fresh, kinds=tuple(EXECUTORS))
        except DATABASE_ERRORS as error:
            log.warning("job queue not polled: the database is unreachable (%s)",
                        str(error).splitlines()[0])
            return None
        self._fresh = False
        if job is not None:
            self.thread = threading.Thread(target=self.execute, args=(job,),
                                           name=f"job-{job.id}", daemon=True)
            self.thread.start()
        return job

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker at its next page (the job goes back to the queue)."""
        self._stop.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def execute(self, job: jobs.Job) -> None:
        """Run one claimed job to its end, recording how it ended."""
        extra = {"job_id": job.id, "kind": job.kind, "attempt": job.attempts}
        log.info("job %s started%s", job.id, " (resumed)" if job.resumed else "", extra=extra)
        if job.resumed:
            jobs.close_abandoned_run(self.engine, job.run_id, (
                f"interrupted: its leader went away; job {job.id} resumed by {this_process()}"))
        try:
            EXECUTORS[job.kind](Attempt(self, job))
        except JobStopped as stopped:
            self._after_stop(job, stopped)
        except Exception as error:  # whatever it was, the job failed with it
            log.error("job %s failed: %s", job.id, error, extra=extra)
            self._safely(jobs.finish, job, jobs.FAILED,
                         f"{error.__class__.__name__}: {error}"[:1000])
        else:
            log.info("job %s done", job.id, extra=extra)
            self._safely(jobs.finish, job, jobs.DONE)

    def _after_stop(self, job: jobs.Job, stopped: JobStopped) -> None:
        """Close the run and the job the way the stop asks."""
        notes = {jobs.CANCEL: ("cancelled", "cancelled between two pages; every earlier "
                                            "page is stored"),
                 jobs.LOST: ("interrupted", "interrupted: another ingest leader took the "
                                            "job over"),
                 LEAVING: ("interrupted", "interrupted: the ingest leader stopped; the job "
                                          "went back to the queue")}
        run_status, note = notes[stopped.reason]
        log.warning("job %s stopped: %s", job.id, note, extra={"job_id": job.id})
        if stopped.run_id is not None:
            self._safely(jobs.end_run, stopped.run_id, run_status, note)
        if stopped.reason == jobs.CANCEL:
            self._safely(jobs.finish, job, jobs.CANCELLED, note)
        elif stopped.reason == LEAVING:
            self._safely(jobs.release, job)

    def _safely(self, action: Callable[..., Any], *args: Any) -> None:
        """Record an outcome; if the database is down, a later leader resumes the job."""
        try:
            action(self.engine, *args)
        except DATABASE_ERRORS as error:
            log.error("job outcome not recorded (the job will be resumed): %s",
                      str(error).splitlines()[0], extra={"action": action.__name__})


def job_queue_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """Poll the job queue every POLL_SECONDS, first as soon as leading starts."""
    queue = JobQueue(settings, engine)
    return [JobSpec("job_queue", queue.poll, POLL_SECONDS, run_now=True,
                    on_stop=lambda: queue.stop(timeout=STOP_SECONDS))]
