"""Candles at any interval: the real 1h BTCUSDT candles rebuild Binance's real 1d ones exactly."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from db.bulk import copy_merge
from db.candles import get_candles
from db.candles_api import CandleParamError, candles_csv, candles_response, parse_time
from db.engine import make_engine
from db.intervals import EPOCH, to_ms
from ingest.spot_records import kline_record_from_row
from ingest.writer import MERGES
from tests.spot_support import BINANCE, KLINES

NOW_MS = 2**62


@pytest.fixture
def engine(each_server_engine):
    """TimescaleDB and plain PostgreSQL (tests/conftest.py)."""
    return each_server_engine


def csv_rows(name: str) -> list[list[str]]:
    with (KLINES / name).open() as handle:
        return list(csv.reader(handle))[1:]


def store(engine, symbol: str, interval: str, rows) -> None:
    """Store archive/REST rows through the same parser and merge as the backfill."""
    spec = MERGES["candles"]
    records = [kline_record_from_row(symbol, interval, row, NOW_MS).row for row in rows]
    with engine.begin() as connection:
        copy_merge(connection, spec.table, records, key=spec.key, update=spec.update)


def as_archive_row(candle) -> list[str]:
    """A candle in the 1d archive file's layout (open_time as a date)."""
    text = candles_csv([candle]).splitlines()[1].split(",")
    return [candle.open_time.date().isoformat(), *text[1:6],
            str(to_ms(candle.close_time)), *text[7:]]


def test_real_1h_candles_aggregate_to_the_real_1d_candles_exactly(engine):
    store(engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))
    days = get_candles(engine, "BTCUSDT", "1d", datetime(2022, 1, 1, tzinfo=UTC),
                       datetime(2022, 2, 1, tzinfo=UTC))
    expected = [row[:11] for row in csv_rows("BTCUSDT-1d-2020-2025.csv")
                if row[0].startswith("2022-01-")]
    assert len(expected) == 31
    assert [as_archive_row(day) for day in days] == expected
    assert days[0].open == Decimal("46216.93") and all(day.is_closed for day in days)


def daily(first: str, last: str) -> list[list[str]]:
    return [row for row in csv_rows("BTCUSDT-1d-2020-2025.csv") if first <= row[0] <= last]


def with_epoch_open(row: list[str]) -> list[str]:
    opened = datetime.combine(date.fromisoformat(row[0]), datetime.min.time(), UTC)
    return [str(to_ms(opened)), *row[1:]]


def test_weeks_start_on_monday_and_sum_their_days(engine):
    days = daily("2021-12-27", "2022-01-16")
    store(engine, "BTCUSDT", "1d", [with_epoch_open(row) for row in days])
    weeks = get_candles(engine, "BTCUSDT", "1w", datetime(2022, 1, 1, tzinfo=UTC),
                        datetime(2022, 1, 10, tzinfo=UTC))
    assert [w.open_time.date() for w in weeks] == [date(2021, 12, 27), date(2022, 1, 3)]
    first = days[:7]
    assert weeks[0].open == Decimal(first[0][1]) and weeks[0].close == Decimal(first[-1][4])
    assert weeks[0].high == max(Decimal(row[2]) for row in first)
    assert weeks[0].volume == sum(Decimal(row[5]) for row in first)
    assert weeks[0].trades == sum(int(row[8]) for row in first)
    assert to_ms(weeks[0].close_time) == int(first[-1][6])


def test_three_day_buckets_align_on_the_epoch(engine):
    store(engine, "BTCUSDT", "1d", [with_epoch_open(row) for row in
                                    daily("2022-01-01", "2022-01-31")])
    buckets = get_candles(engine, "BTCUSDT", "3d", datetime(2022, 1, 1, tzinfo=UTC),
                          datetime(2022, 2, 1, tzinfo=UTC))
    assert all((b.open_time - EPOCH).days % 3 == 0 for b in buckets)
    assert [b.open_time.day for b in buckets] == list(range(1, 32, 3))
    assert buckets[0].trades == sum(int(row[8]) for row in daily("2022-01-01", "2022-01-03"))
    # Only 31 January of the last bucket (31 Jan - 2 Feb) is stored: it is not complete.
    assert buckets[0].is_closed and not buckets[-1].is_closed


def test_minutes_aggregate_to_any_finer_interval(engine):
    rows = orjson.loads((BINANCE / "klines_rest_1.json").read_bytes())
    store(engine, "BTCUSDT", "1m", rows)
    start = datetime.fromtimestamp(rows[0][0] / 1000, UTC)
    fives = get_candles(engine, "BTCUSDT", "5m", start, start + timedelta(hours=1))
    for candle in fives:
        members = [r for r in rows if 0 <= r[0] - to_ms(candle.open_time) < 300_000]
        assert candle.open == Decimal(members[0][1]) and candle.close == Decimal(members[-1][4])
        assert candle.low == min(Decimal(r[3]) for r in members)
        assert candle.quote_volume == sum(Decimal(r[7]) for r in members)
        assert candle.taker_quote_volume == sum(Decimal(r[10]) for r in members)
        assert candle.is_closed == (len(members) == 5)
    assert sum(c.trades for c in fives) == sum(r[8] for r in rows)


def test_the_source_covering_more_of_a_bucket_wins_and_finer_wins_ties(engine):
    hours = csv_rows("BTCUSDT-1h-2022-01.csv")[:24]
    store(engine, "BTCUSDT", "1h", hours)
    first_hour = int(hours[0][0])
    minutes = [[first_hour + 60_000 * i, "50000", "50001", "49999", "50000", "1",
                first_hour + 60_000 * i + 59_999, "50000", 1, "0", "0", "0"] for i in range(60)]
    store(engine, "BTCUSDT", "1m", minutes)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    hour = get_candles(engine, "BTCUSDT", "1h", start, start + timedelta(hours=1))[0]
    day = get_candles(engine, "BTCUSDT", "1d", start, start + timedelta(days=1))[0]
    assert hour.volume == Decimal(60) and hour.trades == 60
    assert day.open == Decimal("46216.93") and day.trades == sum(int(h[8]) for h in hours)


def test_json_and_csv_write_exact_decimals_and_utc_times(database_url):
    engine = make_engine(database_url)
    rows = orjson.loads((BINANCE / "klines_rest_1.json").read_bytes())[:3]
    rows[2] = [*rows[2][:5], "0.00000000", rows[2][6], "0.00000000", 0, "0.00000000",
               "0.00000000", "0"]
    store(engine, "BTCUSDT", "1m", rows)
    body, mimetype = candles_response(engine, {"symbol": "btcusdt", "interval": "1m",
                                               "start": str(rows[0][0]), "limit": "3"})
    document = orjson.loads(body)
    assert mimetype == "application/json" and document["symbol"] == "BTCUSDT"
    assert document["candles"][0] == {
        "open_time": "2020-05-06T04:42:00.000Z", "open": "9033.34000000",
        "high": "9039.99000000", "low": "9032.75000000", "close": "9033.15000000",
        "volume": "31.19296800", "close_time": "2020-05-06T04:42:59.999Z",
        "quote_volume": "281893.08800082", "trades": 282, "taker_base_volume": "6.35810300",
        "taker_quote_volume": "57447.26912415"}
    assert document["candles"][2]["volume"] == "0.00000000"
    text, mimetype = candles_response(engine, {"symbol": "BTCUSDT", "interval": "1m",
                                               "start": "2020-05-06T04:42", "end":
                                               "2020-05-06T04:44Z", "format": "csv"})
    lines = text.splitlines()
    assert mimetype == "text/csv" and lines[0].startswith("open_time,open,high,low,close")
    assert lines[1].split(",")[:2] == ["2020-05-06T04:42:00.000Z", "9033.34000000"]
    assert len(lines) == 3
    engine.dispose()


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
    ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2024-01-02T03:04:05.250Z", datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)),
    ("1704164645000", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
])
def test_times_are_iso_dates_or_date_times_or_epoch_milliseconds(raw, expected):
    assert parse_time("start", raw) == expected


@pytest.mark.parametrize(("args", "field"), [
    ({"symbol": "BTCUSDT", "start": "yesterday"}, "start"),
    ({"symbol": "BTCUSDT", "end": "2024-13-01"}, "end"),
    ({"symbol": "BTCUSDT", "interval": "7m"}, "interval"),
    ({"symbol": "BTC/USDT"}, "symbol"),
    ({"symbol": "BTCUSDT", "limit": "0"}, "limit"),
    ({"symbol": "BTCUSDT", "format": "xml"}, "format"),
    ({"symbol": "BTCUSDT", "start": "2024-01-02", "end": "2024-01-01"}, "end"),
])
def test_a_bad_parameter_is_named(database_url, args, field):
    engine = make_engine(database_url)
    with pytest.raises(CandleParamError) as error:
        candles_response(engine, args)
    assert error.value.field == field and str(error.value).startswith(f"{field}: ")
    engine.dispose()
