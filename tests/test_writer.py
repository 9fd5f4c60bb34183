"""The batching writer: batches, keeps the newest row per key, survives a database outage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.schema import book_tickers, candles, ingest_errors
from ingest.runs import Run
from ingest.spot_records import Record, book_ticker_record, kline_record
from ingest.writer import Writer
from tests.spot_support import database_down, wait_until

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def writer(engine):
    writer = Writer(engine, flush_seconds=0.05, batch_rows=500, retry_base=0.05, retry_max=0.2)
    yield writer.start()
    writer.stop()


def ticker(symbol: str, bid: str, second: int = 0) -> Record:
    event = {"u": 1, "s": symbol, "b": bid, "B": "1.5", "a": str(Decimal(bid) + 1), "A": "2"}
    return book_ticker_record(event, T0.timestamp() + second + 0.25)


def candle(minute: int, close: str, closed: bool) -> Record:
    start = int((T0 + timedelta(minutes=minute)).timestamp() * 1000)
    return kline_record({"t": start, "T": start + 59_999, "s": "BTCUSDT", "i": "1m",
                         "o": "100", "h": "110", "l": "90", "c": close, "v": "3", "n": 7,
                         "x": closed, "q": "300", "V": "1", "Q": "100"})


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def stored_minutes(engine) -> list[int]:
    with engine.connect() as connection:
        times = connection.scalars(select(candles.c.open_time).order_by(candles.c.open_time))
        return [int((t - T0).total_seconds()) // 60 for t in times]


def test_many_records_go_in_few_batches_and_the_newest_per_second_wins(engine, writer):
    records = [ticker(f"SYM{i % 10}", str(100 + n)) for n, i in enumerate(range(1000))]
    writer.submit(records)
    assert writer.wait_idle(20)
    with engine.connect() as connection:
        bids = dict(connection.execute(select(book_tickers.c.symbol, book_tickers.c.bid)).all())
    assert bids == {f"SYM{i}": Decimal(100 + 990 + i) for i in range(10)}
    assert writer.stats.coalesced == 990
    assert writer.stats.batches <= 3


def test_a_live_candle_updates_until_it_closes_and_then_stays(engine, writer):
    for close, closed in (("101", False), ("102", False), ("103", True)):
        writer.submit([candle(0, close, closed)])
        assert writer.wait_idle(20)
    writer.submit([candle(0, "99", False)])  # a late live update after the close
    assert writer.wait_idle(20)
    with engine.connect() as connection:
        row = connection.execute(select(candles)).mappings().one()
    assert (row["close"], row["is_closed"]) == (Decimal("103"), True)
    assert writer.stats.skipped == 1


def test_rows_wait_out_an_outage_within_the_bound(engine, database_url, pg_cluster):
    writer = Writer(engine, flush_seconds=0.05, max_pending_rows=50, retry_base=0.05,
                    retry_max=0.2).start()
    try:
        with database_down(pg_cluster, database_url):
            writer.submit([candle(minute, "101", True) for minute in range(40)])
            wait_until(lambda: writer.stats.failures >= 2, message="failed write attempts")
            writer.submit([candle(0, "105", True)])  # newer record for a waiting key
        assert writer.wait_idle(20)
    finally:
        writer.stop()
    assert count(engine, candles) == 40 and writer.stats.dropped == 0
    with engine.connect() as connection:
        first = connection.scalar(select(candles.c.close).order_by(candles.c.open_time))
    assert first == Decimal("105")


def test_beyond_the_bound_the_oldest_rows_are_dropped_counted_and_logged(engine, database_url,
                                                                         pg_cluster, caplog):
    run = Run(engine, "binance_spot_ws", "ws_session")
    writer = Writer(engine, flush_seconds=0.05, max_pending_rows=20, retry_base=0.05,
                    retry_max=0.2).start()
    try:
        with caplog.at_level(logging.ERROR, "ingest.writer"), \
                database_down(pg_cluster, database_url):
            writer.submit([candle(minute, "101", True) for minute in range(30)], run)
            wait_until(lambda: writer.stats.failures >= 1, message="a failed write")
        assert writer.wait_idle(20)
    finally:
        writer.stop()
    assert writer.stats.dropped == 10 and stored_minutes(engine) == list(range(10, 30))
    assert "dropping the oldest rows" in caplog.text
    with engine.connect() as connection:
        message = connection.scalar(select(ingest_errors.c.message)
                                    .where(ingest_errors.c.run_id == run.id))
    assert message.startswith("writer dropped 10 rows")


def test_a_row_the_database_refuses_is_isolated_and_the_rest_written(engine, writer):
    run = Run(engine, "binance_spot_ws", "ws_session")
    bad = candle(5, "101", True)
    bad.row["open"] = None  # violates NOT NULL: only the database can tell
    writer.submit([candle(minute, "101", True) for minute in range(5)] + [bad], run)
    assert writer.wait_idle(20)
    assert count(engine, candles) == 5 and writer.stats.rejected == 1
    run.finish()
    with engine.connect() as connection:
        message = connection.scalar(select(ingest_errors.c.message))
    assert "database refused a candles row" in message and "open" in message
    assert run.counts.rejected == 1 and run.counts.inserted == 5
