"""P2P history: the summary metrics per time bucket, from each bucket's last complete snapshot.

Buckets are aligned by time_bucket on TimescaleDB and by date_bin (same origin) on plain
PostgreSQL. The last snapshot of each side and bucket is found by one index probe per
bucket, so the cost follows the number of buckets, not the rows stored; unfiltered values
come from the snapshot's stored aggregates. Filters need the offers: for narrow buckets
(about one snapshot each) one range scan is cheapest, for wide ones a probe per chosen
snapshot (measured in bench/p2p.py).

Buckets of whole hours read the hourly aggregates (db/p2p_rollups.py) wherever they answer
exactly: each hour's row carries its last snapshot, so the last one of a wider bucket is the
latest of its hours, and the rows outlive the snapshots (RETENTION_P2P_SNAPSHOTS_DAYS). Only
the buckets the aggregates may not hold are probed: one that starts mid-hour, the hours the
leader still recomputes (a late snapshot may not be in yet), and those not rolled up. Where
both answer a bucket, the later snapshot wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Text, bindparam, func, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY

from db.markets import P2PMarket
from db.p2p_query import (
    MARKETS_SQL,
    NO_FILTER,
    OfferFilter,
    SideStats,
    markets_params,
    metrics,
    offer_conditions,
    reading,
    stat_columns,
)
from db.p2p_rollups import RECOMPUTED, floor_hour
from db.schema import p2p_offers
from db.timescale import uses_timescaledb

MAX_BUCKETS = 5000
# Buckets up to this wide hold a handful of snapshots (polls are a minute apart by default):
# scanning their offers beats probing each chosen snapshot.
SCAN_WIDTH = timedelta(minutes=5)

PICK_SQL = """
SELECT m.exchange, m.asset, m.fiat, s.side, b.bucket, l.captured_at, l.best_price, l.liquidity,
       l.offers
FROM {markets}
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
CROSS JOIN generate_series({first}, CAST(:end AS timestamptz) - interval '1 microsecond',
                           CAST(:width AS interval)) AS b (bucket)
CROSS JOIN LATERAL (
    SELECT captured_at, best_price, liquidity, offers FROM p2p_snapshots
    WHERE exchange = m.exchange AND asset = m.asset AND fiat = m.fiat AND side = s.side
      AND complete AND captured_at >= greatest(b.bucket, CAST(:start AS timestamptz))
      AND captured_at < least(b.bucket + CAST(:width AS interval), CAST(:end AS timestamptz))
    ORDER BY captured_at DESC LIMIT 1) AS l
""".replace("{markets}", MARKETS_SQL)
# Only the buckets overlapping [start, head) or [tail, end) (see _probed_edges).
PICK_EDGES_SQL = PICK_SQL + """
WHERE greatest(b.bucket, CAST(:start AS timestamptz)) < CAST(:head AS timestamptz)
   OR least(b.bucket + CAST(:width AS interval), CAST(:end AS timestamptz))
      > CAST(:tail AS timestamptz)
"""
TIMESCALE_FIRST = "time_bucket(CAST(:width AS interval), CAST(:start AS timestamptz))"
# time_bucket's default origin is Monday 2000-01-03: date_bin from it gives the same buckets.
PLAIN_FIRST = ("date_bin(CAST(:width AS interval), CAST(:start AS timestamptz), "
               "TIMESTAMPTZ '2000-01-03 00:00:00+00')")
Picks = dict[tuple[str, datetime], SideStats]
HOUR = timedelta(hours=1)
# The whole hours of the range. Those before :tail are final; later ones may still miss a
# late snapshot, which the probes of their buckets find (the later snapshot wins).
ROLLUP_SQL = """
SELECT m.exchange, m.asset, m.fiat, s.side, {bucket} AS bucket, h.last_at, h.last_price,
       h.last_liquidity, h.last_offers
FROM {markets}
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
JOIN p2p_hourly h ON h.exchange = m.exchange AND h.asset = m.asset AND h.fiat = m.fiat
                 AND h.side = s.side
WHERE h.bucket >= CAST(:start AS timestamptz)
  AND h.bucket + interval '1 hour' <= CAST(:end AS timestamptz)
""".replace("{markets}", MARKETS_SQL)
# The end of what is rolled up, read from the markets' own rows (an index probe each; the
# global max(bucket) would read the whole table). A market's may lag the global end (no
# recent snapshots), which only probes more buckets; a market without rows is left out:
# every market's hours are rolled up together, so it had no snapshots there.
ROLLED_SQL = """
SELECT min(r.rolled) FROM {markets}
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
CROSS JOIN LATERAL (
    SELECT max(bucket) + interval '1 hour' AS rolled FROM p2p_hourly
    WHERE exchange = m.exchange AND asset = m.asset AND fiat = m.fiat AND side = s.side) AS r
""".replace("{markets}", MARKETS_SQL)
TIMESCALE_BUCKET = "time_bucket(CAST(:width AS interval), h.bucket)"
PLAIN_BUCKET = "date_bin(CAST(:width AS interval), h.bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00')"


@dataclass(frozen=True)
class Window:
    """A history range [start, end) cut into buckets of `width`."""

    start: datetime
    end: datetime
    width: timedelta

    def check(self) -> None:
        """Refuse an empty range, a non-positive width, or too many buckets."""
        if self.width <= timedelta(0) or self.end <= self.start:
            raise ValueError("history needs start < end and a positive bucket width")
        buckets = (self.end - self.start) / self.width
        if buckets > MAX_BUCKETS:
            raise ValueError(f"history of {buckets:.0f} buckets; at most {MAX_BUCKETS}: "
                             "choose a wider bucket or a shorter range")


def _picked(connection: Connection, markets: Sequence[P2PMarket], window: Window) -> list[Any]:
    """The last complete snapshot of each market, side and bucket (with its aggregates)."""
    timescale = uses_timescaledb(connection)
    params = {**markets_params(markets), "start": window.start, "end": window.end,
              "width": window.width}
    edges = _probed_edges(connection, window, params)
    head, tail = edges or (window.start, window.start)
    params = {**params, "head": head, "tail": tail}
    picked = connection.execute(text(PICK_EDGES_SQL.format(
        first=TIMESCALE_FIRST if timescale else PLAIN_FIRST)), params).all()
    if edges is None:
        return picked
    rolled = connection.execute(text(ROLLUP_SQL.format(
        bucket=TIMESCALE_BUCKET if timescale else PLAIN_BUCKET)), params).all()
    return _latest(picked, rolled) if rolled else picked


def _probed_edges(connection: Connection, window: Window, params: dict[str, Any]
                  ) -> tuple[datetime, datetime] | None:
    """Where the snapshots must answer, [start, head) and [tail, end): the whole hours of
    [head, tail) are final in the aggregates. None: no aggregates answer (buckets not of
    whole hours, or nothing rolled up yet), so every bucket is probed."""
    if window.width % HOUR:
        return None
    rolled = connection.scalar(text(ROLLED_SQL), params)
    if rolled is None:
        return None
    head = floor_hour(window.start)
    head = head + HOUR if head < window.start else head
    tail = min(rolled - RECOMPUTED, floor_hour(window.end))
    return head, max(tail, window.start)


def _latest(*sources: Sequence[Any]) -> list[Any]:
    """Per market, side and bucket, the row of the latest snapshot among all sources."""
    kept: dict[tuple, Any] = {}
    for rows in sources:
        for row in rows:
            key = (row[0], row[1], row[2], row[3], row[4])
            found = kept.get(key)
            if found is None or row[5] > found[5]:
                kept[key] = row
    return list(kept.values())


def _scanned(connection: Connection, market: P2PMarket, window: Window,
             filters: OfferFilter) -> Picks:
    """Filtered stats of every snapshot in the window, in one range scan."""
    o = p2p_offers.c
    statement = (select(o.side, o.captured_at, *stat_columns())
                 .where(*offer_conditions(market, filters), o.captured_at >= window.start,
                        o.captured_at < window.end)
                 .group_by(o.side, o.captured_at))
    return {(side, at): SideStats.of(side, *values)
            for side, at, *values in connection.execute(statement)}


def _probed(connection: Connection, market: P2PMarket, picked: Sequence[Any],
            filters: OfferFilter) -> Picks:
    """Filtered stats of the chosen snapshots only, one index probe each."""
    o = p2p_offers.c
    chosen = func.unnest(
        bindparam("sides", [row.side for row in picked], type_=ARRAY(Text)),
        bindparam("times", [row.captured_at for row in picked],
                  type_=ARRAY(DateTime(timezone=True))),
    ).table_valued("side", "at").render_derived()
    stats = (select(*stat_columns())
             .where(*offer_conditions(market, filters), o.side == chosen.c.side,
                    o.captured_at == chosen.c.at)
             .lateral())
    statement = select(chosen.c.side, chosen.c.at, *stats.c).select_from(chosen).join(stats,
                                                                                      true())
    return {(side, at): SideStats.of(side, *values)
            for side, at, *values in connection.execute(statement)}


def history(engine: Engine, exchange: str, asset: str, fiat: str, *, start: datetime,
            end: datetime, width: timedelta, filters: OfferFilter = NO_FILTER) -> list[dict]:
    """Metrics per bucket of `width` in [start, end), from each bucket's last snapshot."""
    window = Window(start, end, width)
    window.check()
    market = P2PMarket(exchange, asset, fiat)
    with reading(engine) as connection:
        picked = _picked(connection, [market], window)
        filtered: Picks | None = None
        if filters.active and picked:
            filtered = (_scanned(connection, market, window, filters) if width <= SCAN_WIDTH
                        else _probed(connection, market, picked, filters))
    return _buckets(market, picked, filtered)


def histories(engine: Engine, markets: Sequence[P2PMarket], *, start: datetime,
              end: datetime, width: timedelta) -> dict[P2PMarket, list[dict]]:
    """Unfiltered history of several markets in one query (the overview's sparklines)."""
    window = Window(start, end, width)
    window.check()
    with reading(engine) as connection:
        picked = _picked(connection, markets, window)
    by_market: dict[P2PMarket, list[Any]] = {market: [] for market in markets}
    for row in picked:
        by_market[P2PMarket(row.exchange, row.asset, row.fiat)].append(row)
    return {market: _buckets(market, rows, None) for market, rows in by_market.items()}


def _buckets(market: P2PMarket, picked: Sequence[Any], filtered: Picks | None) -> list[dict]:
    # One pass over plain tuples: a day of 1m buckets is 2,880 picked rows.
    buckets: dict[datetime, list[Any]] = {}  # bucket -> [captured_at, ask, bid]
    empty = SideStats()
    for _exchange, _asset, _fiat, side, bucket, captured_at, best, liquidity, offers in picked:
        stats = (SideStats(best, offers, liquidity) if filtered is None
                 else filtered.get((side, captured_at), empty))
        entry = buckets.get(bucket)
        if entry is None:
            entry = buckets[bucket] = [captured_at, empty, empty]
        elif captured_at > entry[0]:
            entry[0] = captured_at
        entry[1 if side == "ask" else 2] = stats
    return [{"exchange": market.exchange, "asset": market.asset, "fiat": market.fiat,
             "bucket": bucket, "captured_at": captured_at, **metrics(ask, bid)}
            for bucket, (captured_at, ask, bid) in sorted(buckets.items())]
