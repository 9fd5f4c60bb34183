"""Helpers for the views' tests: real spot data from the fake exchange, query counting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, func, select

from app.config import P2PMarket
from db.schema import book_tickers, candles, tickers_24h
from ingest.binance_rest import BinanceRest, KlinesRequest, backfill_klines
from ingest.fake.server import FakeExchange
from ingest.p2p_http import ExchangeClient
from ingest.p2p_normalise import SIDES
from ingest.p2p_poll import CONNECTORS, Poll, poll_market
from ingest.runs import Run
from ingest.service import IngestService
from tests.spot_support import wait_until

# Quick ingestion: a short leader retry and flush, 3 hours of gap repair on start.
QUICK_INGEST = {"INGEST_LEADER_RETRY_SECONDS": "0.2", "INGEST_FLUSH_SECONDS": "0.1",
                "SPOT_GAP_HORIZON_MINUTES": "180", "SPOT_RECONNECT_BASE_SECONDS": "0.05"}


# Asked once per pooled connection, not per question (db/candles.py, db/p2p_query.py): which
# connection a caller gets must not change how many queries its question cost.
CONNECTION_PROBES = ("SELECT extversion FROM pg_extension",)


@dataclass
class QueryCount:
    """SQL statements an engine ran (while listening)."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """The statements, less the per-connection probes."""
        return sum(not statement.startswith(CONNECTION_PROBES)
                   for statement in self.statements)


@contextmanager
def counting(engine: Engine) -> Iterator[QueryCount]:
    """Count the statements `engine` sends to the database inside the block."""
    seen = QueryCount()

    def note(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def backfill(engine: Engine, fake: FakeExchange, symbol: str, hours: float, *,
             interval: str = "1m", ago: timedelta = timedelta(0)) -> dict:
    """Store `hours` of closed candles ending `ago` through the real REST backfill."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - ago
    request = KlinesRequest(symbol, interval, end - timedelta(hours=hours), end)
    return backfill_klines(engine, BinanceRest(fake.rest_url), request)


def count_rows(engine: Engine, table, symbol: str | None = None) -> int:
    """Rows in a spot table (of one symbol)."""
    query = select(func.count()).select_from(table)
    if symbol:
        query = query.where(table.c.symbol == symbol)
    with engine.connect() as connection:
        return connection.scalar(query)


@contextmanager
def spot_ingest(settings, symbols: tuple[str, ...]) -> Iterator[IngestService]:
    """Run the real ingestion service (stream, writer, gap repair) until the block ends,
    after the first book tickers, 24h tickers and repaired candles of every symbol landed."""
    service = IngestService(settings).start()
    try:
        for symbol in symbols:
            for table, least in ((book_tickers, 1), (tickers_24h, 1), (candles, 60)):
                wait_until(lambda t=table, s=symbol, n=least:
                           count_rows(service.engine, t, s) >= n,
                           timeout=30, message=f"{table.name} of {symbol}")
        yield service
    finally:
        service.stop()


class SimClock:
    """The simulated P2P market's clock: wall time, or a moment the test sets."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


class _PastPoll(Poll):
    """A poll whose snapshots are stamped `when` (a poll stamps when its book arrived)."""

    def __init__(self, settings, engine: Engine, market: P2PMarket, run: Run, client, *,
                 when: datetime) -> None:
        super().__init__(settings, engine, market, run, client)
        self.when = when

    def store(self, side: str, adverts: list, complete: bool) -> None:
        self.client.answered_at = self.when
        super().store(side, adverts, complete)


def poll_at(settings, engine: Engine, market: P2PMarket, when: datetime,
            clock: SimClock) -> str:
    """Poll a market through the real connector, normaliser and store, as if at `when`
    (the simulated books are the ones of that moment); return the run's status."""
    connector = CONNECTORS[market.exchange]
    run = Run(engine, connector.SOURCE, "p2p_poll", str(market),
              {"depth": settings.p2p_depth, "page_rows": settings.p2p_page_rows})
    clock.at = when.timestamp()
    try:
        with ExchangeClient.for_settings(settings, market.exchange) as client:
            poll = _PastPoll(settings, engine, market, run, client, when=when)
            for side in SIDES:
                poll.side(side)
    finally:
        clock.at = None
    return run.finish()


def p2p_history(settings, engine: Engine, clock: SimClock, *, minutes: int,
                every: int = 2) -> None:
    """Polls of every configured market every `every` minutes over the last `minutes`,
    then one real poll now (poll_market, at the wall clock)."""
    now = datetime.now(UTC)
    for back in range(minutes, 0, -every):
        for market in settings.p2p_markets:
            poll_at(settings, engine, market, now - timedelta(minutes=back), clock)
    for market in settings.p2p_markets:
        assert poll_market(settings, engine, market).status == "ok"
