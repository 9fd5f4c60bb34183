"""Candles at any interval, aggregated from the finest stored candles.

A bucket of the asked interval is built from a stored interval that divides it evenly and
aligns with it (1m, or 1h when only 1h was backfilled): first open, highest high, lowest
low, last close, sums of volumes and trades, the last close_time. Where several stored
intervals cover a bucket, the one covering most of it wins, the finer on a tie. TimescaleDB's
time_bucket/first/last do the work when the extension is there; plain PostgreSQL uses
date_bin and ordered array_agg. Buckets start where Binance's do (see db/intervals.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from db.intervals import INTERVALS, divides, from_ms, origin, parse_interval, to_ms
from db.timescale import installed_version


@dataclass(frozen=True)
class Candle:
    """One candle of the asked interval."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: datetime
    quote_volume: Decimal
    trades: int
    taker_base_volume: Decimal
    taker_quote_volume: Decimal
    is_closed: bool


_AGGREGATES = {
    "timescale": ("time_bucket(CAST(:width AS interval), open_time, CAST(:origin AS timestamptz))",
                  "first(open, open_time)", "last(close, open_time)",
                  "last(close_time, open_time)"),
    "plain": ("date_bin(CAST(:width AS interval), open_time, CAST(:origin AS timestamptz))",
              "(array_agg(open ORDER BY open_time))[1]",
              "(array_agg(close ORDER BY open_time DESC))[1]", "max(close_time)"),
}


def _aggregate_sql(flavour: str) -> str:
    bucket, first_open, last_close, last_close_time = _AGGREGATES[flavour]
    return f"""
        SELECT {bucket} AS bucket, {first_open} AS open, max(high) AS high, min(low) AS low,
               {last_close} AS close, sum(volume) AS volume, {last_close_time} AS close_time,
               sum(quote_volume) AS quote_volume, sum(trades) AS trades,
               sum(taker_base_volume) AS taker_base_volume,
               sum(taker_quote_volume) AS taker_quote_volume,
               bool_and(is_closed) AS all_closed, count(*) AS stored
        FROM candles
        WHERE exchange = :exchange AND symbol = :symbol AND interval = :source
          AND open_time >= :start AND open_time < :end
        GROUP BY 1 ORDER BY 1"""


_SOURCES = text("""
    SELECT source FROM unnest(:candidates) AS source
    WHERE EXISTS (SELECT 1 FROM candles WHERE exchange = :exchange AND symbol = :symbol
                  AND interval = source AND open_time >= :start AND open_time < :end)
""").bindparams(bindparam("candidates", type_=ARRAY(Text)))


def source_intervals(interval: str) -> list[str]:
    """Stored intervals that can build `interval`, finest first."""
    return [source for source in INTERVALS if divides(interval, source)]


def aligned_range(interval: str, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Widen [start, end) to whole buckets of `interval`."""
    length = INTERVALS[interval]
    offset = to_ms(origin(interval))
    first = (to_ms(start) - offset) // length * length + offset
    last = -(-(to_ms(end) - offset) // length) * length + offset
    return from_ms(first), from_ms(last)


def get_candles(bind: Engine | Connection, symbol: str, interval: str, start: datetime,
                end: datetime, *, exchange: str = "binance") -> list[Candle]:
    """Candles of `interval` for the buckets that overlap [start, end), oldest first."""
    parse_interval(interval)
    start, end = aligned_range(interval, start, end)
    where = {"exchange": exchange, "symbol": symbol, "start": start, "end": end}
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return _query(connection, where, interval)
    return _query(bind, where, interval)


def _query(connection: Connection, where: dict[str, object], interval: str) -> list[Candle]:
    sources = list(connection.scalars(_SOURCES, {**where,
                                                 "candidates": source_intervals(interval)}))
    flavour = "timescale" if installed_version(connection) else "plain"
    sql = text(_aggregate_sql(flavour))
    width = f"{INTERVALS[interval] // 1000} seconds"
    best: dict[datetime, tuple[int, Row]] = {}
    if flavour == "timescale":
        # TimescaleDB's ordered chunk scan already yields rows in bucket order, but the
        # planner cannot count the buckets and sorts every stored row instead: a month of
        # 1m at 30m took ~120 ms that way, ~55 ms streamed (bench/views.py).
        connection.execute(text("SET LOCAL enable_sort = off"))
    try:
        for source in sorted(sources, key=INTERVALS.__getitem__):  # finest first: wins ties
            rows = connection.execute(sql, {**where, "source": source, "width": width,
                                            "origin": origin(interval)}).all()
            for row in rows:
                coverage = row.stored * INTERVALS[source]
                if row.bucket not in best or coverage > best[row.bucket][0]:
                    best[row.bucket] = (coverage, row)
    finally:
        if flavour == "timescale":
            connection.execute(text("RESET enable_sort"))
    return [_candle(best[bucket][1], interval, best[bucket][0]) for bucket in sorted(best)]


def _candle(row: Row, interval: str, coverage: int) -> Candle:
    """A candle is closed when every stored part is closed and the parts fill the bucket."""
    complete = coverage == INTERVALS[interval]
    return Candle(open_time=row.bucket, open=row.open, high=row.high, low=row.low,
                  close=row.close, volume=row.volume, close_time=row.close_time,
                  quote_volume=row.quote_volume, trades=int(row.trades),
                  taker_base_volume=row.taker_base_volume,
                  taker_quote_volume=row.taker_quote_volume,
                  is_closed=bool(row.all_closed) and complete)
