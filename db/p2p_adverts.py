"""P2P adverts for the views: the top adverts of the latest snapshot, the payment methods in
it, advertiser counts per time bucket, and the run that brought a snapshot.

Built on db/p2p_query's building blocks (the one definition of the filters and of "the
latest complete snapshot") and db/p2p_history's bucket picks (each bucket's last complete
snapshot), so these lists agree with the metrics of db/p2p.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select, text

from db.markets import P2PMarket
from db.p2p_history import PICK_SQL, PLAIN_FIRST, TIMESCALE_FIRST, Window
from db.p2p_query import (
    NO_FILTER,
    OfferFilter,
    latest_snapshots,
    markets_params,
    offer_conditions,
    reading,
)
from db.schema import p2p_offers, p2p_snapshots, payment_methods, runs
from db.timescale import uses_timescaledb

ADVERT_FIELDS = ("side", "rank", "price", "available", "min_fiat", "max_fiat",
                 "payment_methods", "is_merchant", "advertiser_id", "advertiser_name",
                 "month_finish_rate", "month_orders", "offer_id", "run_id", "captured_at")
RUN_FIELDS = ("id", "source", "kind", "market", "started_at", "finished_at", "status",
              "received", "inserted", "duplicates", "rejected")


def top_adverts(engine: Engine, market: P2PMarket,
                filters: OfferFilter = NO_FILTER) -> list[dict[str, Any]]:
    """The adverts of the latest complete snapshot of each side that pass the filters,
    asks cheapest first, then bids dearest first."""
    o = p2p_offers.c
    with reading(engine) as connection:
        snapshots = latest_snapshots(connection, market)
        if not snapshots:
            return []
        statement = (
            select(*(o[name] for name in ADVERT_FIELDS))
            .where(*offer_conditions(market, filters),
                   or_(*(and_(o.side == side, o.captured_at == at)
                         for side, at in snapshots.items())))
            .order_by(o.side, case((o.side == "ask", o.price), else_=-o.price), o.rank))
        return [dict(row) for row in connection.execute(statement).mappings()]


def method_names(engine: Engine, exchange: str) -> dict[str, str]:
    """An exchange's payment method identifiers and what to call them (canonical code,
    else the exchange's name, else the identifier)."""
    pm = payment_methods.c
    with engine.connect() as connection:
        rows = connection.execute(select(pm.identifier, pm.canonical, pm.name)
                                  .where(pm.exchange == exchange))
        return {identifier: canonical or name or identifier
                for identifier, canonical, name in rows}


def methods_present(engine: Engine, market: P2PMarket) -> list[str]:
    """Canonical payment methods offered in the latest complete snapshot, by name."""
    o, pm = p2p_offers.c, payment_methods.c
    with reading(engine) as connection:
        snapshots = latest_snapshots(connection, market)
        if not snapshots:
            return []
        offered = (select(func.unnest(o.payment_methods).label("identifier"))
                   .where(*offer_conditions(market, NO_FILTER),
                          or_(*(and_(o.side == side, o.captured_at == at)
                                for side, at in snapshots.items())))
                   .subquery())
        statement = (select(pm.canonical).distinct()
                     .where(pm.exchange == market.exchange, pm.canonical.isnot(None),
                            pm.identifier.in_(select(offered.c.identifier)))
                     .order_by(pm.canonical))
        return list(connection.scalars(statement))


def canonical_methods(engine: Engine, exchanges: tuple[str, ...]) -> list[str]:
    """Every canonical payment method code known for these exchanges."""
    pm = payment_methods.c
    with engine.connect() as connection:
        return list(connection.scalars(
            select(pm.canonical).distinct()
            .where(pm.exchange.in_(exchanges), pm.canonical.isnot(None))
            .order_by(pm.canonical)))


ADVERTISERS_SQL = """
WITH picked AS ({pick})
SELECT p.bucket, count(DISTINCT o.advertiser_id) AS advertisers
FROM picked p
JOIN p2p_offers o ON o.exchange = p.exchange AND o.asset = p.asset AND o.fiat = p.fiat
                 AND o.side = p.side AND o.captured_at = p.captured_at
GROUP BY p.bucket
"""


def advertiser_counts(engine: Engine, market: P2PMarket, *, start: datetime, end: datetime,
                      width: timedelta) -> dict[datetime, int]:
    """Distinct advertisers in each bucket's last complete snapshots (both sides)."""
    window = Window(start, end, width)
    window.check()
    with reading(engine) as connection:
        first = TIMESCALE_FIRST if uses_timescaledb(connection) else PLAIN_FIRST
        sql = text(ADVERTISERS_SQL.format(pick=PICK_SQL.format(first=first)))
        rows = connection.execute(sql, {**markets_params([market]), "start": start,
                                        "end": end, "width": width})
        return {bucket: advertisers for bucket, advertisers in rows}


def snapshot_run(engine: Engine, market: P2PMarket, captured_at: datetime) -> int | None:
    """The run that stored a market's snapshot taken at `captured_at` (to the millisecond)."""
    s = p2p_snapshots.c
    statement = (select(s.run_id)
                 .where(s.exchange == market.exchange, s.asset == market.asset,
                        s.fiat == market.fiat, s.side.in_(("ask", "bid")),
                        s.captured_at >= captured_at,
                        s.captured_at < captured_at + timedelta(milliseconds=1))
                 .limit(1))
    with engine.connect() as connection:
        return connection.scalar(statement)


def run_summary(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """What any signed-in user may know of a run: where, when, how it ended, its counts
    (not its error text or error log, which are the admins')."""
    with engine.connect() as connection:
        row = connection.execute(select(*(runs.c[name] for name in RUN_FIELDS))
                                 .where(runs.c.id == run_id)).mappings().first()
    return dict(row) if row else None
