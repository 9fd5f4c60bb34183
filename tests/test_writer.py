"""The batching writer: batches, keeps the newest row per key, survives a database outage."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.bulk import copy_merge, copy_rows
from db.schema import book_tickers, candles, candles_all, candles_live, ingest_errors
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


def bids_by_second(engine) -> dict[int, Decimal]:
    with engine.connect() as connection:
        rows = connection.execute(select(book_tickers.c.ts, book_tickers.c.bid)).all()
    return {int((ts - T0).total_seconds()): bid for ts, bid in rows}


@pytest.fixture
def appended(monkeypatch) -> list[int]:
    """The number of rows of each COPY the writer makes straight into a table."""
    sizes: list[int] = []

    def spy(connection, table, rows):
        sizes.append(len(rows))
        return copy_rows(connection, table, rows)

    monkeypatch.setattr("ingest.writer.copy_rows", spy)
    return sizes


def test_keys_newer_than_the_written_ones_are_appended(engine, writer, appended):
    run = Run(engine, "binance_spot_ws", "ws_session")
    writer.submit([ticker("BTCUSDT", "100", 0), ticker("ETHUSDT", "10", 0)], run)
    assert writer.wait_idle(20)  # series not written yet: merged, nothing appended
    writer.submit([ticker("BTCUSDT", "101", 1), ticker("ETHUSDT", "11", 0),
                   ticker("XRPUSDT", "1", 0)], run)
    assert writer.wait_idle(20)
    run.finish()
    assert [size for size in appended if size] == [1]  # only BTCUSDT's second 1 is new
    assert (writer.stats.inserted, writer.stats.updated) == (4, 1)
    assert run.counts.inserted == 4
    assert bids_by_second(engine)[1] == Decimal("101") and count(engine, book_tickers) == 4


def test_a_key_another_process_wrote_falls_back_to_the_merge(engine, writer, appended):
    writer.submit([ticker("BTCUSDT", "100", 0)])
    assert writer.wait_idle(20)
    with engine.begin() as connection:  # e.g. a leader that has not quite stopped yet
        copy_merge(connection, book_tickers, [ticker("BTCUSDT", "500", 1).row],
                   key=("exchange", "symbol", "ts"))
    writer.submit([ticker("BTCUSDT", "200", 1), ticker("BTCUSDT", "300", 2)])
    assert writer.wait_idle(20)
    assert [size for size in appended if size] == [2]  # tried, refused, merged instead
    assert bids_by_second(engine) == {0: Decimal("100"), 1: Decimal("200"),
                                      2: Decimal("300")}
    assert (writer.stats.inserted, writer.stats.updated, writer.stats.rejected) == (2, 1, 0)
    writer.submit([ticker("BTCUSDT", "400", 3)])  # written after the merge: new again
    assert writer.wait_idle(20)
    assert [size for size in appended if size] == [2, 1]
    assert bids_by_second(engine)[3] == Decimal("400")


def test_a_bad_row_among_appended_ones_is_isolated(engine, writer, appended):
    writer.submit([candle(0, "101", True)])
    assert writer.wait_idle(20)
    bad = candle(3, "101", True)
    bad.row["open"] = None
    writer.submit([candle(1, "101", True), candle(2, "101", True), bad])
    assert writer.wait_idle(20)
    assert max(appended) == 3
    assert stored_minutes(engine) == [0, 1, 2] and writer.stats.rejected == 1
    assert writer.stats.inserted == 3


def live_and_all(engine) -> tuple[list[tuple], list[tuple]]:
    """(minute, close, closed) of candles_live, and of candles_all, oldest first."""
    def rows(table):
        with engine.connect() as connection:
            found = connection.execute(select(table.c.open_time, table.c.close,
                                              table.c.is_closed).order_by(table.c.open_time))
            return [(int((t - T0).total_seconds()) // 60, str(c), x) for t, c, x in found]
    return rows(candles_live), rows(candles_all)


def test_the_open_candle_lives_apart_and_readers_see_it_beside_the_closed_ones(engine, writer):
    writer.submit([candle(0, "101", False)])
    assert writer.wait_idle(20)
    writer.submit([candle(0, "102", False)])
    assert writer.wait_idle(20)
    assert stored_minutes(engine) == [] and count(engine, candles_live) == 1
    assert live_and_all(engine) == ([(0, "102", False)], [(0, "102", False)])
    # The close and the next minute's first frame in one batch: the closed row goes to
    # candles; the live row moves on, and the minute it held is closed there already.
    writer.submit([candle(0, "103", True), candle(1, "95", False)])
    assert writer.wait_idle(20)
    assert stored_minutes(engine) == [0]
    assert live_and_all(engine) == ([(1, "95", False)], [(0, "103", True), (1, "95", False)])


def test_an_open_candle_whose_close_never_came_is_retired_into_candles(engine, writer):
    writer.submit([candle(0, "101", False)])
    assert writer.wait_idle(20)
    writer.submit([candle(2, "93", False)])  # reconnected two minutes on
    assert writer.wait_idle(20)
    assert live_and_all(engine) == ([(2, "93", False)],
                                    [(0, "101", False), (2, "93", False)])
    assert stored_minutes(engine) == [0], "kept, open, for the gap repairer to complete"


def test_two_minutes_of_one_series_in_a_batch_leave_the_later_one_live(engine, writer):
    writer.submit([candle(5, "105", False), candle(4, "104", False)])
    assert writer.wait_idle(20)
    assert live_and_all(engine)[0] == [(5, "105", False)]
    writer.submit([candle(4, "99", False)])  # a late frame of an earlier minute
    assert writer.wait_idle(20)
    assert live_and_all(engine)[0] == [(5, "105", False)]
    assert writer.stats.skipped == 2 and writer.stats.inserted == 1


def test_a_failed_batch_that_moved_the_live_row_on_still_retires_it(engine, writer):
    writer.submit([candle(0, "101", False)])
    assert writer.wait_idle(20)
    bad = candle(5, "101", True)
    bad.row["open"] = None  # refused mid-transaction: the batch is split and written again
    writer.submit([candle(2, "93", False), bad])  # moves on, no close
    assert writer.wait_idle(20)
    assert writer.stats.rejected == 1
    assert live_and_all(engine) == ([(2, "93", False)],
                                    [(0, "101", False), (2, "93", False)])


def test_a_live_row_left_behind_its_close_is_not_shown_twice(engine, writer):
    with engine.begin() as connection:  # e.g. the gap repairer stored the close first
        copy_merge(connection, candles, [candle(0, "103", True).row],
                   key=("exchange", "symbol", "interval", "open_time"))
    writer.submit([candle(0, "101", False)])  # this writer has not written the series
    assert writer.wait_idle(20)
    assert live_and_all(engine) == ([(0, "101", False)], [(0, "103", True)])


def test_a_row_waits_for_the_deadline_of_the_oldest_row_not_a_fixed_tick(engine):
    batches: list[list[int]] = []
    writer = Writer(engine, flush_seconds=1.0, observe=lambda records, _at: batches.append(
        [int((r.row["ts"] - T0).total_seconds()) for r in records])).start()
    try:
        time.sleep(0.8)  # an idle writer: the first row starts the clock, not the thread
        writer.submit([ticker("BTCUSDT", "100", 0)])
        time.sleep(0.4)
        writer.submit([ticker("BTCUSDT", "101", 1)])
        wait_until(lambda: batches, timeout=5, message="a batch")
        assert writer.wait_idle(5)
    finally:
        writer.stop()
    assert batches == [[0, 1]]
