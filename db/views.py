"""What the pages read: the query functions of db/, memoized per arguments and time bucket.

Windows are given relative to now ("the last 86,400 seconds"), and `now` is the end of the
current cache bucket, so every screen asking within one bucket gets the same rows from one
query. Rows come back as columns of plain floats and epoch milliseconds, ready for the
figure builders and cheap to pickle into Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from db import spot
from db.cache import memoized
from db.candles import get_candles
from db.intervals import INTERVALS, to_ms

LIVE_SECONDS = 5
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades")
TICKER_FIELDS = ("last", "open", "high", "low", "change_pct", "volume", "quote_volume",
                 "trades")


def number(value: Decimal | int | float | None) -> float | None:
    """A stored number as a float for charts (None stays None)."""
    return None if value is None else float(value)


def epoch_ms(moment: datetime | None) -> int | None:
    """An aware datetime as epoch milliseconds (None stays None)."""
    return None if moment is None else to_ms(moment)


def columns(rows: Iterable[Mapping[str, Any]], time_key: str,
            fields: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as columns: "t" (epoch ms of `time_key`) and one float list per field."""
    out: dict[str, list[Any]] = {"t": [], **{name: [] for name in fields}}
    for row in rows:
        out["t"].append(epoch_ms(row[time_key]))
        for name in fields:
            out[name].append(number(row[name]))
    return out


@memoized(LIVE_SECONDS)
def candles(engine: Engine, symbol: str, interval: str, span_seconds: int, *,
            now: datetime) -> dict[str, list[Any]]:
    """Candles of `interval` over the last `span_seconds`, as columns."""
    rows = get_candles(engine, symbol, interval, now - timedelta(seconds=span_seconds), now)
    out = columns((vars(candle) for candle in rows), "open_time", CANDLE_FIELDS)
    out["closed"] = [candle.is_closed for candle in rows]
    return out


@memoized(LIVE_SECONDS)
def book(engine: Engine, symbol: str, width_seconds: int, span_seconds: int, *,
         now: datetime) -> dict[str, list[Any]]:
    """The last best bid and ask of each bucket over the last `span_seconds`, as columns."""
    rows = spot.book_series(engine, symbol, now - timedelta(seconds=span_seconds), now,
                            timedelta(seconds=width_seconds))
    return columns(rows, "bucket", ("bid", "ask", "bid_qty", "ask_qty"))


@memoized(LIVE_SECONDS)
def tickers(engine: Engine, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """The newest 24h ticker of each symbol, numbers as floats, time as epoch ms."""
    return [{"symbol": row["symbol"], "ts": epoch_ms(row["ts"]),
             **{name: number(row[name]) for name in TICKER_FIELDS}}
            for row in spot.latest_tickers(engine, symbols)]


@memoized(LIVE_SECONDS)
def spot_freshness(engine: Engine, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per symbol, epoch ms of its newest book ticker, 24h ticker and 1m candle."""
    return [{key: epoch_ms(value) if key != "symbol" else value for key, value in row.items()}
            for row in spot.latest_times(engine, symbols)]


def interval_seconds(interval: str) -> int:
    """The length of a candle interval in seconds."""
    return INTERVALS[interval] // 1000
