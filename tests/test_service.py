"""The ingestion service: while leader it streams, repairs and schedules; it stops cleanly."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app import create_app
from db.engine import make_engine
from db.schema import book_tickers, candles
from ingest.fake.server import FakeExchange
from ingest.jobs import JobSpec
from ingest.service import DEFAULT_JOB_FACTORIES, IngestService
from tests.conftest import make_settings
from tests.spot_support import wait_until

QUICK = {"SPOT_SYMBOLS": "BTCUSDT,ETHUSDT", "INGEST_LEADER_RETRY_SECONDS": "0.2",
         "INGEST_FLUSH_SECONDS": "0.1", "SPOT_GAP_HORIZON_MINUTES": "30",
         "SPOT_RECONNECT_BASE_SECONDS": "0.05"}
INGEST_THREADS = ("spot-ws", "ingest-writer", "spot-gap-repair")


@pytest.fixture
def fake():
    with FakeExchange("simulate", symbols=["BTCUSDT", "ETHUSDT"]) as fake:
        yield fake


@pytest.fixture
def settings(database_url, tmp_path, fake):
    return make_settings(tmp_path, DATABASE_URL=database_url, **QUICK, **fake.environment())


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def ingest_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(INGEST_THREADS)]


def test_the_leader_streams_repairs_runs_jobs_and_stops_cleanly(settings, fake):
    ran = threading.Event()

    def probe_jobs(settings_, engine_):
        return [JobSpec("probe", ran.set, seconds=0.2)]

    service = IngestService(settings, job_factories=[*DEFAULT_JOB_FACTORIES, probe_jobs])
    service.start()
    try:
        wait_until(lambda: service.is_leader, message="leadership")
        wait_until(lambda: count(service.engine, candles) >= 60, message="repaired history")
        wait_until(lambda: count(service.engine, book_tickers) >= 2, message="book tickers")
        assert ran.wait(10), "the extra job factory's job never ran"
        status = service.status()
        assert status["leader"] and status["jobs"] == [
            "candle_rollups", "job_queue", "p2p_rollups", "probe", "retention",
            "spot_gap_repair"]
        assert status["stream"][0]["symbols"] == 2 and status["stream"][0]["frames"] > 0
    finally:
        service.stop()
    assert not service.is_leader and service.feeds is None
    wait_until(lambda: not ingest_threads(), timeout=10, message="ingest threads to end")
    assert fake.binance.open_connections == 0


def test_stopping_lets_a_running_job_finish_before_the_database_may_go(settings):
    """A P2P poll mid-store when SIGTERM comes stores its snapshot: stop() returns only
    after the running job ends, and tells long work (a backfill) to stop first."""
    started, finished, told = threading.Event(), threading.Event(), threading.Event()

    def slow_store():
        if started.is_set():
            return
        started.set()
        threading.Event().wait(1.0)  # a store that takes a while
        finished.set()

    def slow_jobs(settings_, engine_):
        return [JobSpec("slow", slow_store, seconds=60, run_now=True, on_stop=told.set)]

    service = IngestService(settings, job_factories=[slow_jobs]).start()
    try:
        assert started.wait(10), "the job never ran"
    finally:
        service.stop()
    assert told.is_set(), "on_stop was not called"
    assert finished.is_set(), "stop() returned while the job still ran"


def test_only_the_leader_ingests_and_a_follower_takes_over(settings, fake):
    first = IngestService(settings).start()
    second = IngestService(settings).start()
    try:
        wait_until(lambda: first.is_leader or second.is_leader, message="a leader")
        leader, follower = (first, second) if first.is_leader else (second, first)
        wait_until(lambda: fake.binance.open_connections == 1, message="one stream")
        assert follower.feeds is None and follower.status() == {"leader": False,
                                                                 "feeds": None}
        leader.stop()
        wait_until(lambda: follower.is_leader and follower.feeds is not None,
                   message="the follower taking over")
        wait_until(lambda: fake.binance.connects == 2 and fake.binance.open_connections == 1,
                   message="the new leader's stream")
    finally:
        first.stop()
        second.stop()


def test_create_app_starts_ingestion_when_enabled(database_url, tmp_path, fake):
    settings = make_settings(tmp_path, DATABASE_URL=database_url, INGEST_ENABLED="true",
                             **QUICK, **fake.environment())
    server = create_app(settings)
    service = server.extensions["p2pdash_ingest"]
    try:
        wait_until(lambda: service.is_leader and fake.binance.open_connections == 1,
                   message="ingestion inside the app")
    finally:
        service.stop()
        server.extensions["p2pdash"].engine.dispose()
    engine = make_engine(database_url)
    assert count(engine, candles) > 0
    engine.dispose()
