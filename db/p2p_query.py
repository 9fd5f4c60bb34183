"""Building blocks of the P2P metrics: filters, per-side stats, the latest snapshots.

Shared by db/p2p.py (summary, depth) and db/p2p_history.py (history).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    bindparam,
    func,
    or_,
    select,
    text,
)

from db.markets import P2PMarket
from db.schema import p2p_offers, payment_methods

PCT_PLACES = Decimal("0.000001")

LATEST_SQL = text("""
SELECT s.side, l.captured_at
FROM (VALUES ('ask'), ('bid')) AS s (side)
CROSS JOIN LATERAL (
    SELECT captured_at FROM p2p_snapshots
    WHERE exchange = :exchange AND asset = :asset AND fiat = :fiat AND side = s.side
      AND complete AND (CAST(:at AS timestamptz) IS NULL OR captured_at <= :at)
    ORDER BY captured_at DESC LIMIT 1) AS l
""").bindparams(bindparam("at", type_=DateTime(timezone=True)))


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


class SideStats(NamedTuple):
    """One side of a snapshot: best price, offer count, total available (a NamedTuple: a
    history builds thousands, and a frozen dataclass costs several times as much each)."""

    best: Decimal | None = None
    offers: int = 0
    liquidity: Decimal | None = None

    @classmethod
    def of(cls, side: str, low: Decimal | None, high: Decimal | None, count: int,
           liquidity: Decimal | None) -> SideStats:
        """Stats from min/max price: the best ask is the lowest, the best bid the highest."""
        return cls(low if side == "ask" else high, count, liquidity if count else None)


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


def stat_columns() -> list[Any]:
    """min price, max price, count, total available: the aggregates of SideStats.of."""
    o = p2p_offers.c
    return [func.min(o.price), func.max(o.price), func.count(), func.sum(o.available)]


def market_params(market: P2PMarket) -> dict[str, str]:
    return {"exchange": market.exchange, "asset": market.asset, "fiat": market.fiat}


# Several markets as rows m (exchange, asset, fiat), from the arrays of markets_params.
MARKETS_SQL = """unnest(CAST(:exchanges AS text[]), CAST(:assets AS text[]),
       CAST(:fiats AS text[])) AS m (exchange, asset, fiat)"""


def markets_params(markets: Sequence[P2PMarket]) -> dict[str, list[str]]:
    """The :exchanges, :assets and :fiats arrays of MARKETS_SQL."""
    return {"exchanges": [market.exchange for market in markets],
            "assets": [market.asset for market in markets],
            "fiats": [market.fiat for market in markets]}


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for metric queries, with JIT off for its transaction.

    These queries touch a few rows through many chunks; PostgreSQL's cost model calls for
    JIT compilation there, which takes seconds and saves nothing.
    """
    with engine.connect() as connection:
        connection.execute(text("SET LOCAL jit = off"))
        yield connection


def latest_snapshots(connection: Connection, market: P2PMarket,
                     at: datetime | None = None) -> dict[str, datetime]:
    """Capture time of the latest complete snapshot of each side (at or before `at`)."""
    rows = connection.execute(LATEST_SQL, {**market_params(market), "at": at})
    return {side: captured_at for side, captured_at in rows}
