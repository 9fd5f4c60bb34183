"""Spot read queries for the views: latest 24h tickers, book tickers over time, data freshness.

Each reads the newest row of a symbol, or the last row of each time bucket, by one probe of
the table's (exchange, symbol, ts) primary key per symbol or bucket, so the cost follows the
number of symbols and buckets, not the rows stored (one-second book tickers are 86,400 rows
a symbol a day). Plain SQL that runs the same on TimescaleDB and on plain PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, Interval, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

MAX_BUCKETS = 5000
_SYMBOLS = bindparam("symbols", type_=ARRAY(Text))

LATEST_TICKERS = text("""
SELECT s.symbol, t.ts, t.last, t.open, t.high, t.low, t.change_pct, t.volume,
       t.quote_volume, t.trades
FROM unnest(:symbols) WITH ORDINALITY AS s (symbol, n)
CROSS JOIN LATERAL (
    SELECT * FROM tickers_24h
    WHERE exchange = :exchange AND symbol = s.symbol
    ORDER BY ts DESC LIMIT 1) AS t
ORDER BY s.n
""").bindparams(_SYMBOLS)

BOOK_SERIES = text("""
SELECT b.bucket, l.ts, l.bid, l.ask, l.bid_qty, l.ask_qty
FROM generate_series(:first, :end - interval '1 microsecond', :width) AS b (bucket)
CROSS JOIN LATERAL (
    SELECT ts, bid, ask, bid_qty, ask_qty FROM book_tickers
    WHERE exchange = :exchange AND symbol = :symbol
      AND ts >= b.bucket AND ts < b.bucket + :width
    ORDER BY ts DESC LIMIT 1) AS l
ORDER BY b.bucket
""").bindparams(bindparam("first", type_=DateTime(timezone=True)),
                bindparam("end", type_=DateTime(timezone=True)),
                bindparam("width", type_=Interval()))

LAST_CLOSES = text("""
SELECT s.symbol, b.bucket, l.close
FROM unnest(:symbols) WITH ORDINALITY AS s (symbol, n)
CROSS JOIN generate_series(:first, :end - interval '1 microsecond', :width) AS b (bucket)
CROSS JOIN LATERAL (
    SELECT close FROM candles_all
    WHERE exchange = :exchange AND symbol = s.symbol AND interval = '1m'
      AND open_time >= b.bucket AND open_time < b.bucket + :width
      AND open_time >= :first AND open_time < :end
    ORDER BY open_time DESC LIMIT 1) AS l
ORDER BY s.n, b.bucket
""").bindparams(_SYMBOLS, bindparam("first", type_=DateTime(timezone=True)),
                bindparam("end", type_=DateTime(timezone=True)),
                bindparam("width", type_=Interval()))

LATEST_TIMES = text("""
SELECT s.symbol,
       (SELECT max(ts) FROM (SELECT ts FROM book_tickers
                             WHERE exchange = :exchange AND symbol = s.symbol
                             ORDER BY ts DESC LIMIT 1) b) AS book_ticker,
       (SELECT max(ts) FROM (SELECT ts FROM tickers_24h
                             WHERE exchange = :exchange AND symbol = s.symbol
                             ORDER BY ts DESC LIMIT 1) t) AS ticker_24h,
       -- The two tables apart, not the view: with no time bound, only a query of the
       -- hypertable alone reads its chunks newest first and stops at the first row.
       (SELECT max(open_time) FROM (
            (SELECT open_time FROM candles
             WHERE exchange = :exchange AND symbol = s.symbol AND interval = '1m'
             ORDER BY open_time DESC LIMIT 1)
            UNION ALL
            SELECT open_time FROM candles_live
            WHERE exchange = :exchange AND symbol = s.symbol AND interval = '1m') c
       ) AS candle_1m
FROM unnest(:symbols) WITH ORDINALITY AS s (symbol, n)
ORDER BY s.n
""").bindparams(_SYMBOLS)


def latest_tickers(engine: Engine, symbols: Sequence[str], *,
                   exchange: str = "binance") -> list[dict[str, Any]]:
    """The newest 24h ticker of each symbol that has one, in the order asked."""
    with engine.connect() as connection:
        rows = connection.execute(LATEST_TICKERS, {"symbols": list(symbols),
                                                   "exchange": exchange})
        return [dict(row) for row in rows.mappings()]


def first_bucket(start: datetime, width: timedelta) -> datetime:
    """The start of the epoch-aligned bucket of `width` that holds `start`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (start - epoch) // width * width


def book_series(engine: Engine, symbol: str, start: datetime, end: datetime,
                width: timedelta, *, exchange: str = "binance") -> list[dict[str, Any]]:
    """The last book ticker (bid, ask and sizes) of each bucket of `width` in [start, end)."""
    if width <= timedelta(0) or end <= start:
        raise ValueError("book_series needs start < end and a positive width")
    if (end - start) / width > MAX_BUCKETS:
        raise ValueError(f"book_series of more than {MAX_BUCKETS} buckets: widen the buckets")
    params = {"first": first_bucket(start, width), "end": end, "width": width,
              "exchange": exchange, "symbol": symbol}
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(BOOK_SERIES, params).mappings()]


def last_closes(engine: Engine, symbols: Sequence[str], start: datetime, end: datetime,
                width: timedelta, *, exchange: str = "binance") -> dict[str, list[Any]]:
    """Per symbol, the close of the last 1m candle of each epoch-aligned bucket of `width`
    over [start, end) (buckets without one left out): a sparkline of many symbols in one
    query. The constant time bounds let TimescaleDB skip all other chunks when planning."""
    if width <= timedelta(0) or end <= start or (end - start) / width > MAX_BUCKETS:
        raise ValueError("last_closes needs start < end and a positive, not too small width")
    params = {"symbols": list(symbols), "first": first_bucket(start, width), "end": end,
              "width": width, "exchange": exchange}
    out: dict[str, list[Any]] = {symbol: [] for symbol in symbols}
    with engine.connect() as connection:
        for symbol, _bucket, close in connection.execute(LAST_CLOSES, params):
            out[symbol].append(close)
    return out


def latest_times(engine: Engine, symbols: Sequence[str], *,
                 exchange: str = "binance") -> list[dict[str, Any]]:
    """For each symbol: its newest book ticker and 24h ticker times, its newest 1m open time."""
    with engine.connect() as connection:
        rows = connection.execute(LATEST_TIMES, {"symbols": list(symbols),
                                                 "exchange": exchange})
        return [dict(row) for row in rows.mappings()]
