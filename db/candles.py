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
from datetime import datetime, timedelta
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


def _aggregate_sql(flavour: str, table: str = "candles") -> str:
    """Buckets of `width` from one stored interval of `table`; `stored` counts minutes for
    rollups (which know how many 1m candles made them) and rows for raw candles."""
    bucket, first_open, last_close, last_close_time = _AGGREGATES[flavour]
    stored, closed = (("sum(minutes)", "true") if table == "candle_rollups"
                      else ("count(*)", "bool_and(is_closed)"))
    return f"""
        SELECT {bucket} AS bucket, {first_open} AS open, max(high) AS high, min(low) AS low,
               {last_close} AS close, sum(volume) AS volume, {last_close_time} AS close_time,
               sum(quote_volume) AS quote_volume, sum(trades) AS trades,
               sum(taker_base_volume) AS taker_base_volume,
               sum(taker_quote_volume) AS taker_quote_volume,
               {closed} AS all_closed, {stored} AS stored
        FROM {table}
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
                end: datetime, *, exchange: str = "binance", rollups: bool = True
                ) -> list[Candle]:
    """Candles of `interval` for the buckets that overlap [start, end), oldest first:
    closed buckets from the rollups where they answer exactly, the rest from raw candles
    (`rollups=False`: raw candles only, which is what the rollups are made from)."""
    parse_interval(interval)
    start, end = aligned_range(interval, start, end)
    where = {"exchange": exchange, "symbol": symbol, "start": start, "end": end}
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return _query(connection, where, interval, rollups)
    return _query(bind, where, interval, rollups)


def _query(connection: Connection, where: dict[str, object], interval: str,
           rollups: bool) -> list[Candle]:
    flavour = "timescale" if installed_version(connection) else "plain"
    best = _from_rollups(connection, flavour, where, interval) if rollups else {}
    for first, last in _uncovered(best, interval, where["start"], where["end"]):
        best = _from_raw(connection, flavour, {**where, "start": first, "end": last},
                         interval, best)
    return [_candle(best[bucket][1], interval, best[bucket][0]) for bucket in sorted(best)]


ROLLUP_INTERVALS = ("1d", "1h")  # kept in candle_rollups by db/rollups.py, coarsest first
_ROLLUP_SOURCE = text("""
    SELECT 1 FROM candle_rollups WHERE exchange = :exchange AND symbol = :symbol
      AND interval = :source AND open_time >= :start AND open_time < :end LIMIT 1""")


def _from_rollups(connection: Connection, flavour: str, where: dict[str, object],
                  interval: str) -> dict[datetime, tuple[int, Row]]:
    """Buckets built from the coarsest rollup that divides `interval` and has rows here."""
    width = f"{INTERVALS[interval] // 1000} seconds"
    for source in ROLLUP_INTERVALS:
        if not divides(interval, source):
            continue
        if connection.scalar(_ROLLUP_SOURCE, {**where, "source": source}) is None:
            continue
        rows = connection.execute(text(_aggregate_sql(flavour, "candle_rollups")), {
            **where, "source": source, "width": width, "origin": origin(interval)}).all()
        return {row.bucket: (row.stored * INTERVALS["1m"], row) for row in rows}
    return {}


MAX_SPANS = 8  # more holes than this in the rollups: one raw query over all of them


def _uncovered(best: dict[datetime, tuple[int, Row]], interval: str, start: datetime,
               end: datetime) -> list[tuple[datetime, datetime]]:
    """The runs of buckets in [start, end) that `best` does not hold whole and closed: as a
    rule the range's first bucket (data starting inside it) and its last (still open), so
    the raw candles are read for those two, not for the whole range between them."""
    if not best:
        return [(start, end)]
    length = timedelta(milliseconds=INTERVALS[interval])
    full = INTERVALS[interval]
    spans: list[tuple[datetime, datetime]] = []
    bucket = start
    while bucket < end:
        found = best.get(bucket)
        if found is None or found[0] != full or not found[1].all_closed:
            if spans and spans[-1][1] == bucket:
                spans[-1] = (spans[-1][0], bucket + length)
            else:
                spans.append((bucket, bucket + length))
        bucket += length
    if len(spans) > MAX_SPANS:
        return [(spans[0][0], spans[-1][1])]
    return [(first, min(last, end)) for first, last in spans]


def _from_raw(connection: Connection, flavour: str, where: dict[str, object], interval: str,
              best: dict[datetime, tuple[int, Row]]) -> dict[datetime, tuple[int, Row]]:
    """Add buckets from raw candles, which win over a rollup that covers no more."""
    sources = list(connection.scalars(_SOURCES, {**where,
                                                 "candidates": source_intervals(interval)}))
    sql = text(_aggregate_sql(flavour))
    width = f"{INTERVALS[interval] // 1000} seconds"
    rolled = dict(best)
    best = {}
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
    for bucket, (coverage, row) in best.items():
        if bucket not in rolled or coverage >= rolled[bucket][0]:
            rolled[bucket] = (coverage, row)
    return rolled


def _candle(row: Row, interval: str, coverage: int) -> Candle:
    """A candle is closed when every stored part is closed and the parts fill the bucket."""
    complete = coverage == INTERVALS[interval]
    return Candle(open_time=row.bucket, open=row.open, high=row.high, low=row.low,
                  close=row.close, volume=row.volume, close_time=row.close_time,
                  quote_volume=row.quote_volume, trades=int(row.trades),
                  taker_base_volume=row.taker_base_volume,
                  taker_quote_volume=row.taker_quote_volume,
                  is_closed=bool(row.all_closed) and complete)
