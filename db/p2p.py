"""P2P metrics (DESIGN.md section 4) over the latest complete snapshots of a market.

- summary: best ask (lowest) and best bid (highest), spread, spread % of the mid, offer
  counts and liquidity (total available, asset units) per side.
- history (db/p2p_history.py): the same per time bucket.
- depth: cumulative available (asset units and fiat) per price level, asks ascending,
  bids descending.
Filters: a fiat amount (min_fiat <= X <= max_fiat), canonical payment method codes
(through payment_methods, so a new mapping applies to stored offers too), merchants only,
a minimum completion rate. Values are Decimals; `jsonable` turns them into strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, text

from db.markets import P2PMarket
from db.p2p_history import histories, history
from db.p2p_query import (
    MARKETS_SQL,
    NO_FILTER,
    OfferFilter,
    SideStats,
    latest_snapshots,
    markets_params,
    metrics,
    offer_conditions,
    reading,
    stat_columns,
)
from db.schema import p2p_offers

__all__ = [
    "NO_FILTER",
    "OfferFilter",
    "depth",
    "histories",
    "history",
    "jsonable",
    "summaries",
    "summary",
]


def _stats_at(connection: Connection, market: P2PMarket, snapshots: Mapping[str, datetime],
              filters: OfferFilter) -> dict[str, SideStats]:
    """Per-side stats of the offers of the given snapshots that pass the filters."""
    if not snapshots:
        return {}
    o = p2p_offers.c
    times = snapshots.values()
    statement = (
        select(o.side, *stat_columns())
        .where(*offer_conditions(market, filters),
               o.captured_at.between(min(times), max(times)),
               or_(*(and_(o.side == side, o.captured_at == at) for side, at in snapshots.items())))
        .group_by(o.side))
    return {side: SideStats.of(side, *values) for side, *values in connection.execute(statement)}


def summary(engine: Engine, exchange: str, asset: str, fiat: str,
            filters: OfferFilter = NO_FILTER) -> dict[str, Any]:
    """The market now: metrics of the latest complete snapshot of each side."""
    market = P2PMarket(exchange, asset, fiat)
    with reading(engine) as connection:
        snapshots = latest_snapshots(connection, market)
        stats = _stats_at(connection, market, snapshots, filters)
    return _summary_row(market, max(snapshots.values(), default=None), stats)


def _summary_row(market: P2PMarket, captured_at: datetime | None,
                 stats: Mapping[str, SideStats]) -> dict[str, Any]:
    return {"exchange": market.exchange, "asset": market.asset, "fiat": market.fiat,
            "captured_at": captured_at,
            **metrics(stats.get("ask", SideStats()), stats.get("bid", SideStats()))}


SUMMARIES_SQL = text(f"""
SELECT m.exchange, m.asset, m.fiat, s.side, l.captured_at, l.best_price, l.offers, l.liquidity
FROM {MARKETS_SQL}
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
CROSS JOIN LATERAL (
    SELECT captured_at, best_price, offers, liquidity FROM p2p_snapshots
    WHERE exchange = m.exchange AND asset = m.asset AND fiat = m.fiat AND side = s.side
      AND complete
    ORDER BY captured_at DESC LIMIT 1) AS l
""")


def summaries(engine: Engine, markets: Sequence[P2PMarket]) -> dict[P2PMarket, dict[str, Any]]:
    """The unfiltered summary of several markets in one query, from the aggregates stored
    with each latest complete snapshot (the same numbers `summary` counts from the offers)."""
    sides: dict[P2PMarket, dict[str, Any]] = {market: {} for market in markets}
    with reading(engine) as connection:
        rows = connection.execute(SUMMARIES_SQL, markets_params(markets)).all()
    for row in rows:
        sides[P2PMarket(row.exchange, row.asset, row.fiat)][row.side] = row
    out = {}
    for market, found in sides.items():
        stats = {side: SideStats(row.best_price, row.offers,
                                 row.liquidity if row.offers else None)
                 for side, row in found.items()}
        latest = max((row.captured_at for row in found.values()), default=None)
        out[market] = _summary_row(market, latest, stats)
    return out


def _levels(connection: Connection, market: P2PMarket, side: str, captured_at: datetime,
            filters: OfferFilter) -> list[dict[str, Any]]:
    o = p2p_offers.c
    price_order = o.price.asc() if side == "ask" else o.price.desc()
    statement = (select(o.price, func.coalesce(func.sum(o.available), 0), func.count())
                 .where(*offer_conditions(market, filters), o.side == side,
                        o.captured_at == captured_at)
                 .group_by(o.price).order_by(price_order))
    levels, cum_available, cum_fiat = [], Decimal(0), Decimal(0)
    for price, available, offers in connection.execute(statement):
        cum_available += available
        cum_fiat += price * available
        levels.append({"price": price, "available": available, "offers": offers,
                       "cum_available": cum_available, "cum_fiat": cum_fiat})
    return levels


def depth(engine: Engine, exchange: str, asset: str, fiat: str,
          filters: OfferFilter = NO_FILTER, *, at: datetime | None = None) -> dict[str, Any]:
    """Cumulative depth per price level of the latest complete snapshot of each side
    (the latest at or before `at`, when given)."""
    market = P2PMarket(exchange, asset, fiat)
    with reading(engine) as connection:
        snapshots = latest_snapshots(connection, market, at)
        books = {side: _levels(connection, market, side, at, filters)
                 for side, at in snapshots.items()}
    return {"exchange": exchange, "asset": asset, "fiat": fiat,
            "captured_at": max(snapshots.values(), default=None),
            "asks": books.get("ask", []), "bids": books.get("bid", [])}


def jsonable(value: Any) -> Any:
    """Decimals as strings (never floats), times as ISO 8601, recursively."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value
