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

from sqlalchemy import Connection, Engine, text

from db.intervals import INTERVALS, divides, from_ms, origin, parse_interval, to_ms
from db.timescale import uses_timescaledb


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
_OF_SOURCE = "exchange = :exchange AND symbol = :symbol AND interval = :source"
_IN_RANGE = "open_time >= :start AND open_time < :end"


def _in_span(n: int) -> str:
    return f"open_time >= :start_{n} AND open_time < :end_{n}"


def _spans_sql(spans: int) -> str:
    """The raw candles of one source over spans [start_n, end_n), the holes the rollups
    leave, as one relation: a range per branch, so each branch reads only its chunks
    (constants a join of the spans would hide from TimescaleDB's chunk exclusion)."""
    return " UNION ALL ".join(f"SELECT * FROM candles_all WHERE {_OF_SOURCE} AND {_in_span(n)}"
                              for n in range(spans))


def _sources_sql(spans: int) -> str:
    """Which candidate intervals have raw candles in any of the spans: a probe of one row
    per candidate and span (scalar subqueries: an EXISTS became a join reading every stored
    row of the range, 15 ms for a month of 1m)."""
    found = " OR ".join(f"(SELECT true FROM candles_all WHERE exchange = :exchange "
                        f"AND symbol = :symbol AND interval = source AND {_in_span(n)} LIMIT 1)"
                        for n in range(spans))
    return f"SELECT source FROM unnest(CAST(:candidates AS text[])) AS source WHERE {found}"


# Every query below yields these columns, in this order (_candle reads them by index).
_COLUMNS = ("open, high, low, close, volume, close_time, quote_volume, trades, "
            "taker_base_volume, taker_quote_volume")


def _aggregate_sql(flavour: str, table: str = "candles", spans: int = 1) -> str:
    """Buckets of `width` from one stored interval of `table` (rollups over [start, end),
    raw candles over `spans` spans); `stored` counts minutes for rollups (which know how
    many 1m candles made them) and rows for raw candles."""
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
        FROM {f"candle_rollups WHERE {_OF_SOURCE} AND {_IN_RANGE}"
              if table == "candle_rollups" else f"({_spans_sql(spans)}) AS candles"}
        GROUP BY 1 ORDER BY 1"""


# A rollup of the asked interval is its candle: no aggregation needed.
_ROLLUP_ROWS = text(f"""
    SELECT open_time AS bucket, {_COLUMNS}, true AS all_closed, minutes AS stored
    FROM candle_rollups
    WHERE {_OF_SOURCE} AND {_IN_RANGE}
    ORDER BY open_time""")


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
        with bind.connect() as connection:  # our own transaction: rolled back on close
            return _query(connection, where, interval, rollups, owned=True)
    return _query(bind, where, interval, rollups, owned=False)


Best = dict[datetime, tuple[int, tuple]]  # bucket -> (milliseconds covered, row)


def _query(connection: Connection, where: dict[str, object], interval: str, rollups: bool,
           *, owned: bool) -> list[Candle]:
    flavour = "timescale" if uses_timescaledb(connection) else "plain"
    best = _from_rollups(connection, flavour, where, interval) if rollups else {}
    spans = _uncovered(best, interval, where["start"], where["end"])
    if spans:
        best = _from_raw(connection, flavour, where, interval, best, spans=spans,
                         owned=owned)
    full = INTERVALS[interval]
    return [_candle(best[bucket][1], best[bucket][0] == full) for bucket in sorted(best)]


ROLLUP_INTERVALS = ("1d", "1h")  # kept in candle_rollups by db/rollups.py, coarsest first


def _from_rollups(connection: Connection, flavour: str, where: dict[str, object],
                  interval: str) -> Best:
    """Buckets from the coarsest rollup that divides `interval` and has rows here: its
    rows as they are when it is the asked interval, aggregated when coarser."""
    for source in ROLLUP_INTERVALS:
        if not divides(interval, source):
            continue
        statement = _ROLLUP_ROWS if source == interval else text(
            _aggregate_sql(flavour, "candle_rollups"))
        rows = connection.execute(statement, {
            **where, "source": source, "width": _width(interval),
            "origin": origin(interval)}).all()
        if rows:
            return {row[0]: (row[STORED] * INTERVALS["1m"], tuple(row)) for row in rows}
    return {}


def _width(interval: str) -> str:
    return f"{INTERVALS[interval] // 1000} seconds"


MAX_SPANS = 8  # more holes than this in the rollups: one raw query over all of them
ALL_CLOSED, STORED = 11, 12  # positions in a query's row: bucket, the _COLUMNS, these


def _uncovered(best: Best, interval: str, start: datetime,
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
        if found is None or found[0] != full or not found[1][ALL_CLOSED]:
            if spans and spans[-1][1] == bucket:
                spans[-1] = (spans[-1][0], bucket + length)
            else:
                spans.append((bucket, bucket + length))
        bucket += length
    if len(spans) > MAX_SPANS:
        return [(spans[0][0], spans[-1][1])]
    return [(first, min(last, end)) for first, last in spans]


def _span_params(spans: list[tuple[datetime, datetime]]) -> dict[str, datetime]:
    params = {}
    for n, (first, last) in enumerate(spans):
        params[f"start_{n}"], params[f"end_{n}"] = first, last
    return params


def _from_raw(connection: Connection, flavour: str, where: dict[str, object], interval: str,
              rolled: Best, *, spans: list[tuple[datetime, datetime]], owned: bool) -> Best:
    """Add buckets from raw candles over `spans`, which win over a rollup that covers no
    more."""
    where = {**where, **_span_params(spans)}
    sources = list(connection.scalars(text(_sources_sql(len(spans))), {
        **where, "candidates": source_intervals(interval)}))
    if not sources:
        return rolled
    sql = text(_aggregate_sql(flavour, spans=len(spans)))
    # TimescaleDB's ordered chunk scan of one range already yields rows in bucket order,
    # but the planner cannot count the buckets and sorts every stored row instead: a month
    # of 1m at 30m took ~120 ms that way, ~55 ms streamed (bench/views.py). Several spans
    # (the edges of a rolled-up range: few rows) need their sort: with sorting "off" its
    # penalty cost would set JIT compiling them (~370 ms). In our own transaction the
    # setting ends with it; in a caller's it is reset after. JIT goes off with it: the open
    # candle's branch of candles_all (at most a row) still needs its sort, whose penalty cost
    # would otherwise set JIT compiling every such query (~500 ms, bench/views_load.py).
    streamed = flavour == "timescale" and len(spans) == 1
    if streamed:
        connection.execute(text("SET LOCAL enable_sort = off"))
        connection.execute(text("SET LOCAL jit = off"))
    try:
        best: Best = {}
        for source in sorted(sources, key=INTERVALS.__getitem__):  # finest first: wins ties
            for row in connection.execute(sql, {**where, "source": source,
                                                "width": _width(interval),
                                                "origin": origin(interval)}):
                coverage = row[STORED] * INTERVALS[source]
                if row[0] not in best or coverage > best[row[0]][0]:
                    best[row[0]] = (coverage, tuple(row))
    finally:
        if streamed and not owned:
            connection.execute(text("RESET enable_sort"))
            connection.execute(text("RESET jit"))
    merged = dict(rolled)
    for bucket, (coverage, row) in best.items():
        if bucket not in merged or coverage >= merged[bucket][0]:
            merged[bucket] = (coverage, row)
    return merged


def _candle(row: tuple, complete: bool) -> Candle:
    """A candle is closed when every stored part is closed and the parts fill the bucket."""
    (bucket, open_, high, low, close, volume, close_time, quote_volume, trades, taker_base,
     taker_quote, all_closed, _stored) = row
    return Candle(bucket, open_, high, low, close, volume, close_time, quote_volume,
                  int(trades), taker_base, taker_quote, bool(all_closed) and complete)
