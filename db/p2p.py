"""P2P metrics (DESIGN.md section 4) over the latest complete snapshots of a market.

- summary: best ask (lowest) and best bid (highest), spread, spread % of the mid, offer
  counts and liquidity (total available, asset units) per side.
- history: the same per time bucket, from the last complete snapshot in each bucket.
- depth: cumulative available (asset units and fiat) per price level, asks ascending,
  bids descending.
Filters: a fiat amount (min_fiat <= X <= max_fiat), canonical payment method codes
(through payment_methods, so a new mapping applies to stored offers too), merchants only,
a minimum completion rate. Values are Decimals; `jsonable` turns them into strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.config import P2PMarket
from db.schema import p2p_offers, payment_methods
from db.timescale import installed_version

SIDES = ("ask", "bid")
PCT_PLACES = Decimal("0.000001")
MAX_BUCKETS = 5000

LATEST_SQL = text("""
SELECT s.side, l.captured_at
FROM (VALUES ('ask'), ('bid')) AS s (side)
CROSS JOIN LATERAL (
    SELECT captured_at FROM p2p_snapshots
    WHERE exchange = :exchange AND asset = :asset AND fiat = :fiat AND side = s.side
      AND complete
    ORDER BY captured_at DESC LIMIT 1) AS l
""")

# The last complete snapshot of each side in each bucket, with its stored aggregates.
PICK_SQL = """
SELECT DISTINCT ON (side, bucket) side, {bucket} AS bucket, captured_at, best_price,
       liquidity, offers
FROM p2p_snapshots
WHERE exchange = :exchange AND asset = :asset AND fiat = :fiat AND complete
  AND captured_at >= :start AND captured_at < :end
ORDER BY side, bucket, captured_at DESC
"""
TIMESCALE_BUCKET = "time_bucket(:width, captured_at)"
# time_bucket's default origin (Monday 2000-01-03), so both give the same buckets.
PLAIN_BUCKET = "date_bin(:width, captured_at, TIMESTAMPTZ '2000-01-03 00:00:00+00')"


@dataclass(frozen=True)
class OfferFilter:
    """Which offers count: a fiat amount, payment method codes, merchants, completion."""

    amount: Decimal | None = None
    payment: tuple[str, ...] = ()
    merchant_only: bool = False
    min_completion: Decimal | None = None

    @property
    def active(self) -> bool:
        return (self.amount is not None or bool(self.payment) or self.merchant_only
                or self.min_completion is not None)


NO_FILTER = OfferFilter()


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


@dataclass(frozen=True)
class SideStats:
    """One side of a snapshot: best price, offer count, total available."""

    best: Decimal | None = None
    offers: int = 0
    liquidity: Decimal | None = None


def metrics(ask: SideStats, bid: SideStats) -> dict[str, Any]:
    """Best prices, spread and spread % of the mid, counts and liquidity of both sides."""
    spread = spread_pct = None
    if ask.best is not None and bid.best is not None:
        spread = ask.best - bid.best
        spread_pct = (spread / ((ask.best + bid.best) / 2) * 100).quantize(PCT_PLACES)
    return {"best_ask": ask.best, "best_bid": bid.best, "spread": spread,
            "spread_pct": spread_pct, "ask_offers": ask.offers, "bid_offers": bid.offers,
            "ask_liquidity": ask.liquidity, "bid_liquidity": bid.liquidity}


def offer_conditions(market: P2PMarket, filters: OfferFilter) -> list[ColumnElement[bool]]:
    """WHERE conditions on p2p_offers for a market and the filters."""
    o = p2p_offers.c
    conditions = [o.exchange == market.exchange, o.asset == market.asset, o.fiat == market.fiat]
    if filters.amount is not None:
        conditions += [func.coalesce(o.min_fiat, 0) <= filters.amount,
                       or_(o.max_fiat.is_(None), o.max_fiat >= filters.amount)]
    if filters.payment:
        identifiers = (select(func.array_agg(payment_methods.c.identifier))
                       .where(payment_methods.c.exchange == market.exchange,
                              payment_methods.c.canonical.in_(filters.payment))
                       .scalar_subquery())
        conditions.append(o.payment_methods.overlap(identifiers))
    if filters.merchant_only:
        conditions.append(o.is_merchant.is_(True))
    if filters.min_completion is not None:
        conditions.append(o.month_finish_rate >= filters.min_completion)
    return conditions


def _side_stats(side: str, low: Decimal, high: Decimal, count: int,
                liquidity: Decimal | None) -> SideStats:
    return SideStats(low if side == "ask" else high, count, liquidity)


def _market_params(market: P2PMarket) -> dict[str, str]:
    return {"exchange": market.exchange, "asset": market.asset, "fiat": market.fiat}


def latest_snapshots(connection: Connection, market: P2PMarket) -> dict[str, datetime]:
    """Capture time of the latest complete snapshot of each side that has one."""
    rows = connection.execute(LATEST_SQL, _market_params(market))
    return {side: captured_at for side, captured_at in rows}


def _stats_at(connection: Connection, market: P2PMarket, snapshots: Mapping[str, datetime],
              filters: OfferFilter) -> dict[str, SideStats]:
    """Per-side stats of the offers of the given snapshots that pass the filters."""
    if not snapshots:
        return {}
    o = p2p_offers.c
    times = snapshots.values()
    statement = (
        select(o.side, func.min(o.price), func.max(o.price), func.count(), func.sum(o.available))
        .where(*offer_conditions(market, filters),
               o.captured_at.between(min(times), max(times)),
               or_(*(and_(o.side == side, o.captured_at == at) for side, at in snapshots.items())))
        .group_by(o.side))
    return {side: _side_stats(side, low, high, count, liquidity)
            for side, low, high, count, liquidity in connection.execute(statement)}


def summary(engine: Engine, exchange: str, asset: str, fiat: str,
            filters: OfferFilter = NO_FILTER) -> dict[str, Any]:
    """The market now: metrics of the latest complete snapshot of each side."""
    market = P2PMarket(exchange, asset, fiat)
    with engine.connect() as connection:
        snapshots = latest_snapshots(connection, market)
        stats = _stats_at(connection, market, snapshots, filters)
    return {"exchange": exchange, "asset": asset, "fiat": fiat,
            "captured_at": max(snapshots.values(), default=None),
            **metrics(stats.get("ask", SideStats()), stats.get("bid", SideStats()))}


def _uses_timescaledb(connection: Connection) -> bool:
    # Cached per pooled connection: the extension does not come and go under a server.
    if "timescaledb" not in connection.info:
        connection.info["timescaledb"] = installed_version(connection) is not None
    return connection.info["timescaledb"]


def _picked(connection: Connection, market: P2PMarket, window: Window) -> list[Any]:
    bucket = TIMESCALE_BUCKET if _uses_timescaledb(connection) else PLAIN_BUCKET
    return list(connection.execute(text(PICK_SQL.format(bucket=bucket)), {
        **_market_params(market), "start": window.start, "end": window.end,
        "width": window.width}))


def _filtered_stats(connection: Connection, market: P2PMarket, picked: Sequence[Any],
                    window: Window, filters: OfferFilter) -> dict[tuple[str, datetime], SideStats]:
    o = p2p_offers.c
    times = sorted({row.captured_at for row in picked})
    statement = (
        select(o.side, o.captured_at, func.min(o.price), func.max(o.price), func.count(),
               func.sum(o.available))
        .where(*offer_conditions(market, filters),
               o.captured_at >= window.start, o.captured_at < window.end,
               o.captured_at == func.any(bindparam("times", times,
                                                   type_=ARRAY(DateTime(timezone=True)))))
        .group_by(o.side, o.captured_at))
    return {(side, at): _side_stats(side, low, high, count, liquidity)
            for side, at, low, high, count, liquidity in connection.execute(statement)}


def history(engine: Engine, exchange: str, asset: str, fiat: str, *, start: datetime,
            end: datetime, width: timedelta, filters: OfferFilter = NO_FILTER) -> list[dict]:
    """Metrics per bucket of `width` in [start, end), from each bucket's last snapshot."""
    window = Window(start, end, width)
    window.check()
    market = P2PMarket(exchange, asset, fiat)
    with engine.connect() as connection:
        picked = _picked(connection, market, window)
        filtered = (_filtered_stats(connection, market, picked, window, filters)
                    if filters.active and picked else None)
    buckets: dict[datetime, dict[str, Any]] = {}
    for row in picked:
        if filtered is None:
            stats = SideStats(row.best_price, row.offers, row.liquidity)
        else:
            stats = filtered.get((row.side, row.captured_at), SideStats())
        entry = buckets.setdefault(row.bucket, {"captured_at": row.captured_at})
        entry[row.side] = stats
        entry["captured_at"] = max(entry["captured_at"], row.captured_at)
    return [{"exchange": exchange, "asset": asset, "fiat": fiat, "bucket": bucket,
             "captured_at": entry["captured_at"],
             **metrics(entry.get("ask", SideStats()), entry.get("bid", SideStats()))}
            for bucket, entry in sorted(buckets.items())]


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
          filters: OfferFilter = NO_FILTER) -> dict[str, Any]:
    """Cumulative depth per price level of the latest complete snapshot of each side."""
    market = P2PMarket(exchange, asset, fiat)
    with engine.connect() as connection:
        snapshots = latest_snapshots(connection, market)
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
