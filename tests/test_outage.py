"""A database outage, piece by piece: the writer holds and replays, stale runs are closed as
interrupted by the next leader, P2P polls are stamped when the book arrived or skipped."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from app import create_app
from app.config import P2PMarket, load_settings
from app.health import system_health
from db.engine import make_engine
from db.schema import p2p_snapshots, runs
from ingest.fake.p2p import FakeP2P, serving
from ingest.p2p_poll import POLL_STATS, poll_market
from ingest.runs import Run, this_process
from ingest.service import IngestService
from ingest.writer import Writer
from tests.conftest import make_settings
from tests.p2p.conftest import CAPTURES, p2p_settings
from tests.spot_support import database_down, wait_until
from tests.test_writer import T0, candle

MARKET = P2PMarket("binance", "USDT", "KZT")


def minute_of(record) -> int:
    return int((record.row["open_time"] - T0).total_seconds()) // 60


def test_the_writer_holds_at_most_the_bound_and_replays_in_order(engine, database_url,
                                                                  pg_cluster, tmp_path):
    tuning = load_settings(environ={"P2PDASH_DATA_DIR": str(tmp_path),
                                    "INGEST_MAX_PENDING_ROWS": "50", "INGEST_BATCH_ROWS": "10",
                                    "INGEST_FLUSH_SECONDS": "0.05",
                                    "INGEST_RETRY_MAX_SECONDS": "0.2"}, env_file=None).ingest
    batches: list[list[int]] = []
    writer = Writer.from_settings(engine, tuning, observe=lambda records, _at: batches.append(
        [minute_of(record) for record in records]))
    writer.retry_base = 0.05
    writer.start()
    try:
        with database_down(pg_cluster, database_url):
            writer.submit([candle(minute, "101", True) for minute in range(20)])
            wait_until(lambda: writer.stats.failures >= 2, message="failed write attempts")
            for first in range(20, 80, 20):  # more than the bound, while batches fail
                writer.submit([candle(minute, "101", True) for minute in range(first, first + 20)])
                assert writer.pending <= 50
                failures = writer.stats.failures
                wait_until(lambda f=failures: writer.stats.failures > f, message="a retry")
            assert writer.database_down and writer.pending == 50
        assert writer.wait_idle(20)
    finally:
        writer.stop()
    assert writer.stats.dropped == 30 and not writer.database_down
    assert [minute for batch in batches for minute in batch] == list(range(30, 80))
    assert all(len(batch) <= 10 for batch in batches)


def test_a_new_leader_closes_stale_running_runs_as_interrupted(database_url, tmp_path, engine):
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = this_process().rpartition(":")[0]
    with engine.begin() as connection:
        def add(kind: str, process: str, status: str = "running") -> int:
            return connection.scalar(insert(runs).values(
                source="test", kind=kind, status=status, params={"process": process})
                .returning(runs.c.id))
        crashed_stream = add("ws_session", "elsewhere:4242")
        crashed_backfill = add("klines_backfill", f"{here}:{gone.pid}")
        foreign_push = add("p2p_push", "elsewhere:4242")
        finished = add("ws_session", "elsewhere:4242", "ok")
    live_poll = Run(engine, "binance_p2p", "p2p_poll", str(MARKET))  # this process, open
    settings = make_settings(tmp_path, DATABASE_URL=database_url, SPOT_SYMBOLS="",
                             ALERTS_ENABLED="false", INGEST_LEADER_RETRY_SECONDS="0.2")
    service = IngestService(settings, job_factories=()).start()
    try:
        wait_until(lambda: service.feeds is not None, message="the leader's feeds")
    finally:
        service.stop()
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(select(runs))}
    assert {run_id: rows[run_id].status for run_id in (
        crashed_stream, crashed_backfill, foreign_push, finished, live_poll.id)} == {
        crashed_stream: "interrupted", crashed_backfill: "interrupted",
        foreign_push: "running", finished: "ok", live_poll.id: "running"}
    assert rows[crashed_stream].finished_at is not None
    assert rows[crashed_stream].error.startswith("interrupted: closed by the ingest leader")
    live_poll.finish()


@pytest.fixture
def slow_fake():
    fake = FakeP2P(captures_dir=CAPTURES, slow_seconds=1.5)
    with serving(fake) as url:
        yield fake, url


def test_a_snapshot_is_stamped_when_its_book_arrived(slow_fake, tmp_path, database_url, engine):
    fake, url = slow_fake
    settings = p2p_settings(tmp_path, database_url, url, P2P_TIMEOUT_MS="5000")
    fake.inject("binance", "timeout")  # the first page hangs for 1.5 s, then comes
    asked = datetime.now(UTC)
    assert poll_market(settings, engine, MARKET).status == "ok"
    done = datetime.now(UTC)
    with engine.connect() as connection:
        stamps = dict(connection.execute(select(p2p_snapshots.c.side,
                                                p2p_snapshots.c.captured_at)).all())
    assert asked + timedelta(seconds=1.4) <= stamps["ask"] <= stamps["bid"] <= done


def test_a_poll_with_the_database_down_is_skipped_and_counted(slow_fake, tmp_path,
                                                              database_url, pg_cluster):
    fake, url = slow_fake
    settings = p2p_settings(tmp_path, database_url, url)
    skipped = POLL_STATS.skipped
    engine = make_engine(database_url)
    try:
        with database_down(pg_cluster, database_url):
            result = poll_market(settings, engine, MARKET)
    finally:
        engine.dispose()
    assert (result.run_id, result.status) == (None, "skipped")
    assert POLL_STATS.skipped == skipped + 1 and fake.requests == []


def test_healthz_shows_the_leader_lock_and_the_rows_held(database_url, tmp_path):
    settings = make_settings(tmp_path, DATABASE_URL=database_url, INGEST_ENABLED="true",
                             SPOT_SYMBOLS="", ALERTS_ENABLED="false",
                             INGEST_LEADER_RETRY_SECONDS="0.2", INGEST_MAX_PENDING_ROWS="1000")
    server = create_app(settings)
    service = server.extensions["p2pdash_ingest"]
    try:
        wait_until(lambda: service.feeds is not None, message="the leader's feeds")
        with server.app_context():
            ingest = system_health()["ingest"]
    finally:
        service.stop()
        server.extensions["p2pdash"].engine.dispose()
    assert ingest["leader"] and ingest["leader_lock"]["held"]
    assert ingest["writer"]["pending"] == 0 and ingest["writer"]["max_pending"] == 1000
    assert ingest["writer"]["database_down_since"] is None
    assert ingest["p2p_polls"].keys() == {"skipped", "lost_snapshots"}
