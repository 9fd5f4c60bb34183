"""Candle rollups: 1h and 1d candles kept by the leader, so long ranges read few rows and
outlive the raw candles' retention.

Each closed bucket is recomputed from the raw candles it covers, by the same aggregation
the charts use (db/candles.py with rollups off: first open, highest high, lowest low, last
close, sums), never by blending an old rollup with new rows; so a rolled-up day equals
Binance's own daily candle whenever the raw candles do. Recomputing is idempotent: the
leader redoes the recent buckets on a timer (gap repair may still fill them), and a
backfill redoes the range it wrote. A rollup row says how many 1m candles made it
(`minutes`), so a query knows whether it answers a bucket exactly.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert

from db.candles import ROLLUP_INTERVALS, Candle, aligned_range, get_candles
from db.intervals import INTERVALS, MINUTE_MS
from db.schema import candle_rollups, candles

STEP = timedelta(days=30)  # history is rolled up a month at a time (bounded memory)


def _row(exchange: str, symbol: str, interval: str, candle: Candle, minutes: int) -> dict:
    values = asdict(candle)
    values.pop("is_closed")
    return {**values, "exchange": exchange, "symbol": symbol, "interval": interval,
            "minutes": minutes}


def _minutes(candle: Candle, interval: str) -> int:
    """The bucket's minutes when raw candles filled it; 0 when they did not, so a query
    prefers the raw candles while they exist and draws the rollup as unclosed after."""
    return INTERVALS[interval] // MINUTE_MS if candle.is_closed else 0


def _store(connection: Connection, rows: list[dict]) -> int:
    if not rows:
        return 0
    statement = insert(candle_rollups).values(rows)
    changed = {name: statement.excluded[name] for name in rows[0]
               if name not in ("exchange", "symbol", "interval", "open_time")}
    connection.execute(statement.on_conflict_do_update(
        index_elements=["exchange", "symbol", "interval", "open_time"],
        set_={**changed, "computed_at": func.now()}))
    return len(rows)


def recompute(engine: Engine, symbol: str, start: datetime, end: datetime, *,
              exchange: str = "binance", now: datetime | None = None) -> int:
    """Recompute the rollups of the buckets overlapping [start, end) that have closed by
    `now`; return how many rows were written."""
    now = now or datetime.now(UTC)
    written = 0
    for interval in ROLLUP_INTERVALS:
        first, last = aligned_range(interval, start, min(end, now))
        cursor = first
        while cursor < last:
            upto = min(cursor + STEP, last)
            with engine.begin() as connection:
                found = get_candles(connection, symbol, interval, cursor, upto,
                                    exchange=exchange, rollups=False)
                closed = [candle for candle in found
                          if candle.open_time + timedelta(milliseconds=INTERVALS[interval])
                          <= now and candle.open_time < upto]
                written += _store(connection, [
                    _row(exchange, symbol, interval, candle, _minutes(candle, interval))
                    for candle in closed])
            cursor = upto
    return written


def refresh(engine: Engine, symbol: str, *, recent: timedelta, exchange: str = "binance",
            now: datetime | None = None) -> int:
    """Recompute the last `recent` of a symbol's rollups, or its whole history the first
    time (when it has no rollups yet); return the rows written."""
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        rolled = connection.scalar(select(func.max(candle_rollups.c.open_time)).where(
            candle_rollups.c.exchange == exchange, candle_rollups.c.symbol == symbol))
        oldest = None if rolled else connection.scalar(
            select(candles.c.open_time).where(candles.c.exchange == exchange,
                                              candles.c.symbol == symbol)
            .order_by(candles.c.open_time).limit(1))
    start = now - recent if rolled else oldest
    return 0 if start is None else recompute(engine, symbol, start, now, exchange=exchange,
                                             now=now)
