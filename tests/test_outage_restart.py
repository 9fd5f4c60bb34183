"""The database stopped for 20 s under a running ingest service loses no stream sample.

A private cluster (stopping it must not disturb the session's one) is stopped with
`pg_ctl stop -m fast` and started again on the same port while the service streams from the
fake exchange, which records every frame it sends. Afterwards every book ticker second and
every 24h ticker the fake sent is in the tables, the P2P poller has carried on, and no run
is left `running`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from app.config import Settings
from db.embedded import EmbeddedPostgres
from db.schema import book_tickers, runs, tickers_24h
from ingest.fake.server import FakeExchange
from ingest.p2p_poll import POLL_STATS
from ingest.service import IngestService
from tests.conftest import make_settings, migrated_cluster
from tests.spot_support import wait_until

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 20
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
# A frame sent this late in a second may be read in the next one; its second is then
# sampled by the next frame (four a second), so only earlier frames name a second for sure.
LATEST_IN_SECOND = 0.75


@pytest.fixture
def private_cluster() -> Iterator[EmbeddedPostgres]:
    """A migrated cluster of this test's own, which the test may stop and start."""
    yield from migrated_cluster("p2pdash-test-outage-")


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange("simulate", symbols=SYMBOLS, p2p=True, record=True) as fake:
        yield fake


def sent_samples(fake: FakeExchange, start: float, end: float) -> tuple[set, set]:
    """(symbol, second) of the book tickers and 24h tickers the fake sent in [start, end)."""
    books, tickers = set(), set()
    for sent_at, text in list(fake.binance.sent_frames):
        if not start <= sent_at < end:
            continue
        data = orjson.loads(text)["data"]
        if data.get("e") == "24hrTicker":
            tickers.add((data["s"], data["E"] // 1000))
        elif "u" in data and sent_at % 1 <= LATEST_IN_SECOND:
            books.add((data["s"], int(sent_at)))
    return books, tickers


def stored(engine, table) -> set:
    with engine.connect() as connection:
        return {(symbol, int(ts.timestamp())) for symbol, ts in
                connection.execute(select(table.c.symbol, table.c.ts))}


@pytest.fixture
def settings(private_cluster, fake, tmp_path) -> Settings:
    """Streaming two symbols and polling one P2P market, with quick retries."""
    return make_settings(
        tmp_path, DATABASE_URL=private_cluster.url(), SPOT_SYMBOLS=",".join(SYMBOLS),
        P2P_MARKETS="binance:USDT/ARS", P2P_POLL_SECONDS="5", P2P_JITTER_SECONDS="0",
        P2P_PACING_MS="0", ALERTS_ENABLED="false", INGEST_LEADER_RETRY_SECONDS="0.5",
        INGEST_FLUSH_SECONDS="0.1", INGEST_RETRY_MAX_SECONDS="1",
        SPOT_GAP_HORIZON_MINUTES="30", **fake.environment())


def test_a_20_s_database_restart_loses_no_stream_sample(private_cluster, fake, settings):
    skipped = POLL_STATS.skipped
    service = IngestService(settings).start()
    engine = service.engine
    try:
        wait_until(lambda: service.feeds is not None and stored(engine, book_tickers),
                   message="book tickers stored")
        watched_from = time.time()
        time.sleep(2)
        private_cluster.stop(force=True)
        down_at = time.time()
        time.sleep(OUTAGE_SECONDS)
        assert service.is_leader and service.feeds is not None, "ingestion kept running"
        status = service.status()
        assert not status["leader_lock"]["held"] and status["writer"]["database_down_since"]
        held = status["writer"]["pending"]
        private_cluster.ensure_running()  # on its own port again (free_port allows TIME_WAIT)
        up_at = time.time()
        wait_until(lambda: service.elector.holds_lock, timeout=30, message="the lock re-taken")
        writer = service.feeds.writer
        wait_until(lambda: not writer.database_down and writer.pending < 50, timeout=30,
                   message="the held rows written")
        wait_until(lambda: p2p_polls_since(engine, up_at), timeout=30,
                   message="a P2P poll after the outage")
        watched_to = time.time() - 1
        time.sleep(1)
    finally:
        service.stop()
    books, tickers = sent_samples(fake, watched_from, watched_to)
    outage = {(s, t) for s, t in books if down_at <= t < up_at}
    assert len(outage) >= OUTAGE_SECONDS * len(SYMBOLS) * 0.9, "the fake streamed throughout"
    assert held > len(outage), "the writer held the outage's rows"
    assert books - stored(engine, book_tickers) == set()
    assert tickers - stored(engine, tickers_24h) == set()
    assert service.feeds is None and writer.stats.dropped == 0
    assert POLL_STATS.skipped > skipped, "polls during the outage were skipped and counted"
    with engine.connect() as connection:
        left = connection.execute(select(runs.c.id, runs.c.kind).where(
            runs.c.status == "running")).all()
    assert left == []
    engine.dispose()


def p2p_polls_since(engine, since: float) -> list:
    with engine.connect() as connection:
        return connection.execute(select(runs.c.id).where(
            runs.c.kind == "p2p_poll", runs.c.status == "ok",
            runs.c.started_at > datetime.fromtimestamp(since, UTC))).all()
