"""The views' queries on known rows: newest tickers, book tickers per bucket, freshness,
and candles aggregated to the chart's interval (the numbers the hover readout shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from db import spot, views
from db.candles import get_candles
from db.intervals import to_ms
from db.schema import book_tickers, candles, tickers_24h

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(each_server_engine):
    """TimescaleDB and plain PostgreSQL (tests/conftest.py)."""
    return each_server_engine


def book_row(symbol: str, seconds: int, bid: str, ask: str) -> dict:
    return {"exchange": "binance", "symbol": symbol, "ts": T0 + timedelta(seconds=seconds),
            "bid": Decimal(bid), "bid_qty": Decimal(1), "ask": Decimal(ask),
            "ask_qty": Decimal(2)}


def ticker_row(symbol: str, seconds: int, last: str) -> dict:
    return {"exchange": "binance", "symbol": symbol, "ts": T0 + timedelta(seconds=seconds),
            "last": Decimal(last), "open": Decimal(1), "high": Decimal(2), "low": Decimal(0),
            "change_pct": Decimal("1.5"), "volume": Decimal(10), "quote_volume": Decimal(100),
            "trades": 7}


def test_latest_tickers_are_the_newest_per_symbol_in_the_order_asked(engine):
    rows = [ticker_row("BTCUSDT", s, str(100 + s)) for s in (0, 1, 2)]
    rows += [ticker_row("ETHUSDT", s, str(50 + s)) for s in (0, 5)]
    with engine.begin() as connection:
        connection.execute(insert(tickers_24h), rows)
    latest = spot.latest_tickers(engine, ["ETHUSDT", "XRPUSDT", "BTCUSDT"])
    assert [(row["symbol"], row["last"]) for row in latest] == [("ETHUSDT", Decimal(55)),
                                                                 ("BTCUSDT", Decimal(102))]


def test_book_series_keeps_the_last_ticker_of_each_bucket_and_skips_empty_ones(engine):
    rows = [book_row("BTCUSDT", 0, "99", "101"), book_row("BTCUSDT", 30, "98", "100"),
            book_row("BTCUSDT", 59, "97", "99"), book_row("BTCUSDT", 130, "96", "98"),
            book_row("ETHUSDT", 10, "1", "2")]
    with engine.begin() as connection:
        connection.execute(insert(book_tickers), rows)
    series = spot.book_series(engine, "BTCUSDT", T0 + timedelta(seconds=20),
                              T0 + timedelta(minutes=3), timedelta(minutes=1))
    assert [(row["bucket"], row["bid"], row["ask"]) for row in series] == [
        (T0, Decimal(97), Decimal(99)),
        (T0 + timedelta(minutes=2), Decimal(96), Decimal(98))]
    with pytest.raises(ValueError, match="more than"):
        spot.book_series(engine, "BTCUSDT", T0, T0 + timedelta(days=1), timedelta(seconds=1))


def candle_row(symbol: str, minute: int, ohlc: tuple[float, float, float, float],
               volume: float, trades: int) -> dict:
    opened = T0 + timedelta(minutes=minute)
    open_, high, low, close = ohlc
    return {"exchange": "binance", "symbol": symbol, "interval": "1m", "open_time": opened,
            "open": Decimal(str(open_)), "high": Decimal(str(high)), "low": Decimal(str(low)),
            "close": Decimal(str(close)), "volume": Decimal(str(volume)),
            "close_time": opened + timedelta(seconds=59.999), "trades": trades,
            "quote_volume": Decimal(str(volume * close)), "taker_base_volume": Decimal(0),
            "taker_quote_volume": Decimal(0), "is_closed": True}


def test_latest_times_per_symbol_and_source(engine):
    with engine.begin() as connection:
        connection.execute(insert(book_tickers), [book_row("BTCUSDT", 42, "1", "2")])
        connection.execute(insert(candles), [candle_row("BTCUSDT", 3, (1, 1, 1, 1), 1, 1)])
    times = spot.latest_times(engine, ["BTCUSDT", "ETHUSDT"])
    assert times == [
        {"symbol": "BTCUSDT", "book_ticker": T0 + timedelta(seconds=42), "ticker_24h": None,
         "candle_1m": T0 + timedelta(minutes=3)},
        {"symbol": "ETHUSDT", "book_ticker": None, "ticker_24h": None, "candle_1m": None}]


def test_last_closes_per_symbol_and_hour_match_the_hourly_candles(engine):
    minutes = [0, 1, 59, 60, 61, 150, 179]  # three hours: 12h, 13h, 14h (a gap within)
    rows = [candle_row("BTCUSDT", m, (m, m + 1, m - 1, m + 0.5), 1, 1) for m in minutes]
    rows += [candle_row("ETHUSDT", 61, (7, 7, 7, 7.25), 1, 1)]
    with engine.begin() as connection:
        connection.execute(insert(candles), rows)
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(hours=3)
    closes = spot.last_closes(engine, ["BTCUSDT", "XRPUSDT", "ETHUSDT"], start, end,
                              timedelta(hours=1))
    assert closes == {"BTCUSDT": [Decimal("59.5"), Decimal("61.5"), Decimal("179.5")],
                      "XRPUSDT": [], "ETHUSDT": [Decimal("7.25")]}
    hourly = get_candles(engine, "BTCUSDT", "1h", start, end)
    assert [candle.close for candle in hourly] == closes["BTCUSDT"]
    with pytest.raises(ValueError):
        spot.last_closes(engine, ["BTCUSDT"], end, start, timedelta(hours=1))


def test_view_candles_aggregate_minutes_into_the_readout_numbers(tmp_path, database_url):
    from app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, DATABASE_URL=database_url))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 5 + 10)  # two whole 5m buckets, then some
    minutes = [candle_row("BTCUSDT", 0, (10, 12, 9, 11), 1, 2),
               candle_row("BTCUSDT", 1, (11, 15, 10, 14), 2, 3),
               candle_row("BTCUSDT", 4, (14, 14, 8, 9), 0.5, 1)]
    shift = start - T0
    for row in minutes:
        row["open_time"] += shift
        row["close_time"] += shift
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(insert(candles), minutes)
    with app.app_context():
        cols = views.candles("BTCUSDT", "5m", 3600)
    assert cols["t"] == [to_ms(start)]
    assert (cols["open"], cols["high"], cols["low"], cols["close"]) == ([10.0], [15.0], [8.0],
                                                                       [9.0])
    assert cols["volume"] == [3.5] and cols["trades"] == [6.0]
    assert cols["closed"] == [False], "three stored minutes do not fill a 5m candle"
    app.extensions["p2pdash"].engine.dispose()
