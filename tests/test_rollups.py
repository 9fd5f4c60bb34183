"""Candle rollups equal the aggregation of their raw rows (TimescaleDB and plain
PostgreSQL), follow late data, equal Binance's own daily candles, and outlive the raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from sqlalchemy import text

from db import rollups
from db.candles import get_candles
from tests.spot_support import BINANCE
from tests.test_candles import as_archive_row, csv_rows, store

LATER = datetime(2026, 1, 1, tzinfo=UTC)
JANUARY = (datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 2, 1, tzinfo=UTC))


@pytest.fixture
def engine(each_server_engine):
    """TimescaleDB and plain PostgreSQL (tests/conftest.py)."""
    return each_server_engine


def _rolled(engine, interval: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM candle_rollups WHERE interval = :i"),
                                 {"i": interval})


def _forget_raw(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM candles"))


def test_real_1h_candles_roll_up_to_the_real_1d_candles_and_outlive_them(engine):
    store(engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))
    rollups.recompute(engine, "BTCUSDT", *JANUARY, now=LATER)
    assert (_rolled(engine, "1h"), _rolled(engine, "1d")) == (31 * 24, 31)
    expected = [row[:11] for row in csv_rows("BTCUSDT-1d-2020-2025.csv")
                if row[0].startswith("2022-01-")]
    _forget_raw(engine)  # as retention would: the rollups alone answer now
    days = get_candles(engine, "BTCUSDT", "1d", *JANUARY)
    assert [as_archive_row(day) for day in days] == expected
    assert all(day.is_closed for day in days)
    weeks = get_candles(engine, "BTCUSDT", "1w", *JANUARY)
    assert weeks[1].volume == sum(day.volume for day in days[2:9]), "1w sums the rolled days"


def minutes(engine):
    rows = orjson.loads((BINANCE / "klines_rest_1.json").read_bytes())
    store(engine, "BTCUSDT", "1m", rows)
    return rows, datetime.fromtimestamp(rows[0][0] / 1000, UTC)


def test_a_rollup_equals_its_raw_rows_and_is_recomputed_after_late_data(engine):
    rows, start = minutes(engine)
    end = start + timedelta(minutes=len(rows))
    rollups.recompute(engine, "BTCUSDT", start, end, now=LATER)
    raw = get_candles(engine, "BTCUSDT", "1h", start, end, rollups=False)
    assert get_candles(engine, "BTCUSDT", "1h", start, end) == raw
    hour = raw[-1]  # the capture's last hour (it starts mid-hour)
    with engine.begin() as connection:  # a late correction, as gap repair or backfill brings
        connection.execute(text(
            "UPDATE candles SET high = high + 1000, volume = volume + 5 "
            "WHERE open_time = :at AND interval = '1m'"), {"at": hour.open_time})
    rollups.recompute(engine, "BTCUSDT", hour.open_time, hour.open_time + timedelta(hours=1),
                      now=LATER)
    again = get_candles(engine, "BTCUSDT", "1h", hour.open_time,
                        hour.open_time + timedelta(hours=1))[0]
    assert again == get_candles(engine, "BTCUSDT", "1h", hour.open_time,
                                hour.open_time + timedelta(hours=1), rollups=False)[0]
    assert again.volume == hour.volume + 5 and again.high >= hour.high


def test_an_open_or_unfilled_bucket_is_answered_from_raw_candles(engine):
    rows, start = minutes(engine)
    end = start + timedelta(minutes=len(rows))
    now = start + timedelta(minutes=len(rows) // 2)  # the leader rolled up mid-way
    rollups.recompute(engine, "BTCUSDT", start, end, now=now)
    with engine.connect() as connection:
        stored = connection.execute(text(
            "SELECT open_time, minutes FROM candle_rollups WHERE interval = '1h' "
            "ORDER BY open_time")).all()
    assert all(at + timedelta(hours=1) <= now for at, _minutes in stored), "closed only"
    assert get_candles(engine, "BTCUSDT", "1h", start, end) == \
        get_candles(engine, "BTCUSDT", "1h", start, end, rollups=False)
    first = get_candles(engine, "BTCUSDT", "1h", start, end)[0]
    if not first.is_closed:  # the capture starts mid-hour: that bucket was rolled up unfilled
        assert stored[0].minutes == 0


def test_refresh_rolls_up_a_new_symbols_whole_history_then_only_recent_buckets(engine):
    store(engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))
    assert rollups.refresh(engine, "BTCUSDT", recent=timedelta(days=2), now=LATER) == 31 * 25
    assert rollups.refresh(engine, "BTCUSDT", recent=timedelta(days=2), now=LATER) == 0
    assert rollups.refresh(engine, "ETHUSDT", recent=timedelta(days=2), now=LATER) == 0
    assert get_candles(engine, "BTCUSDT", "1d", *JANUARY)[0].open == Decimal("46216.93")


@pytest.mark.parametrize("interval", ["1d", "4h"])
def test_a_range_reads_rollups_where_they_answer(engine, interval):
    store(engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))
    before = get_candles(engine, "BTCUSDT", interval, *JANUARY)
    rollups.recompute(engine, "BTCUSDT", *JANUARY, now=LATER)
    assert get_candles(engine, "BTCUSDT", interval, *JANUARY) == before


def test_raw_candles_are_read_only_for_the_buckets_the_rollups_do_not_hold_whole():
    """A range that starts inside the data and ends in the open bucket: raw candles for
    those two buckets, not for the whole range between them (a year of 1d read 1,051,412
    raw rows that way, against 2,884, in bench/rollups.py)."""
    from db.candles import ALL_CLOSED, _uncovered

    def row(closed: bool) -> tuple:  # a query's row: only its all_closed matters here
        return (None,) * ALL_CLOSED + (closed, None)

    day = timedelta(days=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    whole = row(True)
    full = 86_400_000
    best = {start + n * day: (full, whole) for n in range(1, 9)}
    best[start] = (full // 2, whole)  # the data starts mid-day
    best[start + 5 * day] = (full, row(False))  # a late fix pending
    assert _uncovered(best, "1d", start, start + 10 * day) == [
        (start, start + day), (start + 5 * day, start + 6 * day),
        (start + 9 * day, start + 10 * day)]  # the last day has no rollup: still open
    assert _uncovered({}, "1d", start, start + 10 * day) == [(start, start + 10 * day)]
    holes = {start + n * day: (full, whole) for n in range(0, 40, 2)}
    assert _uncovered(holes, "1d", start, start + 40 * day) == [(start + day, start + 40 * day)]
