"""The job queue: the leader executes queued backfills, resumes a dead leader's, cancels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from db import jobs
from db.intervals import from_ms
from db.schema import candle_rollups, candles
from ingest.backfill_jobs import BackfillBusy, queue_backfill
from ingest.binance_rest import BinanceRest, KlinesRequest, RestPolicy
from ingest.fake.server import FakeExchange
from ingest.job_queue import JobQueue
from tests.conftest import make_settings

QUICK = RestPolicy(timeout=2.0, retries=3, backoff_base=0.01, backoff_max=0.05)
MINUTES = 2500  # three pages: 1000, 1000, 500


class Crash(BaseException):
    """The leader's process dying mid-job: nothing gets to record how it ended."""


class HookedRest(BinanceRest):
    """The fake's REST client: `before_second_page()` runs as page two is asked for,
    `after_first_page()` once page one has come (before it is stored)."""

    def __init__(self, fake, before_second_page=None, after_first_page=None) -> None:
        super().__init__(fake.rest_url, QUICK, clock=fake.clock)
        self.before, self.after, self.pages = before_second_page, after_first_page, 0

    def klines(self, *args, **kwargs):
        if self.before and self.pages == 1:
            self.before()
        rows = super().klines(*args, **kwargs)
        self.pages += 1
        if self.after and self.pages == 1:
            self.after()
        return rows


@pytest.fixture
def fake():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        yield fake


@pytest.fixture
def settings(database_url, tmp_path, fake):
    return make_settings(tmp_path, DATABASE_URL=database_url, BINANCE_REST_URL=fake.rest_url)


@pytest.fixture
def request_(fake) -> KlinesRequest:
    """2,500 closed 1m candles, ending well before the fake's current minute."""
    end = from_ms(fake.clock.ms() // 60_000 * 60_000) - timedelta(minutes=100)
    return KlinesRequest("BTCUSDT", "1m", end - timedelta(minutes=MINUTES), end)


def leader(settings, engine, fake, **hooks) -> JobQueue:
    return JobQueue(settings, engine, rest_factory=lambda: HookedRest(fake, **hooks))


def run_to_end(queue: JobQueue) -> jobs.Job:
    job = queue.poll()
    assert job is not None, "the leader found nothing to do"
    queue.thread.join(60)
    assert not queue.thread.is_alive()
    return job


def stored(engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return connection.execute(select(
            func.count(), func.count(func.distinct(candles.c.open_time)))).one()


def run_rows(engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(
            "SELECT id, status, received, inserted, duplicates, error FROM runs "
            "WHERE kind = 'klines_backfill' ORDER BY id")).mappings()]


def test_a_queued_backfill_waits_for_the_leader_which_runs_it_to_the_end(
        settings, engine, fake, request_):
    job_id = queue_backfill(engine, request_, "admin")
    assert jobs.get(engine, job_id)["status"] == "queued" and run_rows(engine) == []
    with pytest.raises(BackfillBusy, match="queued"):
        queue_backfill(engine, request_, "admin")

    run_to_end(leader(settings, engine, fake))
    job = jobs.get(engine, job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("done", 1, None)
    [run] = run_rows(engine)
    assert (job["run_id"], run["status"], run["inserted"]) == (run["id"], "ok", MINUTES)
    assert stored(engine) == (MINUTES, MINUTES)
    with engine.connect() as connection:  # late data: the range's rollups were redone
        assert connection.scalar(select(func.count()).select_from(candle_rollups)) > 0
    assert queue_backfill(engine, request_, "admin") > job_id, "done: it may be queued again"


def test_a_job_left_running_by_a_dead_leader_resumes_where_it_stopped(
        settings, engine, fake, request_):
    job_id = queue_backfill(engine, request_, "admin")

    def die():
        raise Crash

    dead = leader(settings, engine, fake, before_second_page=die)
    first = jobs.claim_next(engine, stale_seconds=60)
    with pytest.raises(Crash):
        dead.execute(first)  # page one stored, then the process is gone
    assert jobs.get(engine, job_id)["status"] == "running"
    assert stored(engine) == (1000, 1000)

    run_to_end(leader(settings, engine, fake))  # a new leader: takes any running job
    job = jobs.get(engine, job_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
    abandoned, resumed = run_rows(engine)
    assert abandoned["status"] == "interrupted" and "resumed by" in abandoned["error"]
    assert (resumed["status"], resumed["inserted"], resumed["duplicates"]) == (
        "ok", MINUTES - 1000, 0), "resumed from the first page not stored, not from the start"
    assert stored(engine) == (MINUTES, MINUTES), "no duplicate rows"
    assert jobs.heartbeat(engine, first) == jobs.LOST, "the dead leader's claim is fenced off"


def test_a_running_leader_takes_over_only_jobs_whose_heartbeat_went_stale(
        settings, engine, fake, request_):
    queue = leader(settings, engine, fake)
    assert queue.poll() is None  # its first poll is behind it
    job_id = queue_backfill(engine, request_, "admin")
    jobs.claim_next(engine, stale_seconds=60)  # another leader's, beating
    assert queue.poll() is None
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET heartbeat_at = now() - interval '1 hour'"))
    run_to_end(queue)
    assert jobs.get(engine, job_id)["status"] == "done"


def test_cancelling_a_queued_job_ends_it_before_it_starts(settings, engine, fake, request_):
    job_id = queue_backfill(engine, request_, "admin")
    assert jobs.request_cancel(engine, job_id, "admin") == "cancelled"
    assert leader(settings, engine, fake).poll() is None
    job = jobs.get(engine, job_id)
    assert (job["status"], job["run_id"], job["error"]) == ("cancelled", None,
                                                             "cancelled by admin")
    assert run_rows(engine) == [] and stored(engine) == (0, 0)
    with pytest.raises(jobs.JobNotCancellable):
        jobs.request_cancel(engine, job_id, "admin")


def test_cancelling_a_running_job_stops_it_at_the_next_page(settings, engine, fake, request_):
    job_id = queue_backfill(engine, request_, "admin")

    def click_cancel():  # while page one is on its way
        assert jobs.request_cancel(engine, job_id, "admin") == "running"

    queue = leader(settings, engine, fake, after_first_page=click_cancel)
    run_to_end(queue)
    job = jobs.get(engine, job_id)
    assert job["status"] == "cancelled" and job["error"].startswith("cancelled by admin; ")
    [run] = run_rows(engine)
    assert (run["status"], run["inserted"]) == ("cancelled", 1000)
    assert stored(engine) == (1000, 1000), "stopped between pages, the first page kept"


def test_a_leader_that_stops_hands_its_job_back_to_the_queue(settings, engine, fake, request_):
    job_id = queue_backfill(engine, request_, "admin")
    queue = leader(settings, engine, fake)
    queue.rest_factory = lambda: HookedRest(fake, after_first_page=queue.stop)
    queue.execute(jobs.claim_next(engine, stale_seconds=60))
    job = jobs.get(engine, job_id)
    assert (job["status"], job["checkpoint"]["next_ms"] > 0) == ("queued", True)
    assert run_rows(engine)[0]["status"] == "interrupted"

    run_to_end(leader(settings, engine, fake))
    assert jobs.get(engine, job_id)["status"] == "done"
    assert [run["inserted"] for run in run_rows(engine)] == [1000, MINUTES - 1000]
