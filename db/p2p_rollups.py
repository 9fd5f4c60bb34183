"""Hourly P2P aggregates: what each closed hour's complete snapshots said, per market and side.

Every hour is recomputed from its snapshots in one statement (never by blending an old row
with new snapshots), so redoing an hour is idempotent and a late snapshot (a push of an
earlier book) is taken in when its hour is next recomputed. The leader redoes the recent
hours on a timer (ingest/rollups.py) and, the first time, the whole history a month at a
time. History reads these rows for every hour the leader no longer redoes (db/p2p_history.py),
so each refresh starts no later than RECOMPUTED before the end of what was rolled up: every
hour before that end less RECOMPUTED has been computed since it closed and stays as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, text

from db.markets import P2PMarket
from db.schema import p2p_snapshots

HOUR = timedelta(hours=1)
STEP = timedelta(days=30)  # history is rolled up a month at a time (bounded work per statement)
# The hours every refresh redoes (the leader's timer, ingest/rollups.py): late snapshots
# (pushed by a desk's collector catching up) are taken in up to this far back.
RECOMPUTED = timedelta(days=2)
# The end of what is rolled up: every market's hours are rolled up together.
ROLLED_SQL = "SELECT max(bucket) + interval '1 hour' FROM p2p_hourly"

RECOMPUTE_SQL = """
INSERT INTO p2p_hourly (exchange, asset, fiat, side, bucket, snapshots, first_at, last_at,
                        last_price, last_liquidity, last_offers, min_price, max_price,
                        avg_liquidity, computed_at)
SELECT exchange, asset, fiat, side,
       date_bin(interval '1 hour', captured_at, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
       count(*), min(captured_at), max(captured_at),
       (array_agg(best_price ORDER BY captured_at DESC, id DESC))[1],
       (array_agg(liquidity ORDER BY captured_at DESC, id DESC))[1],
       (array_agg(offers ORDER BY captured_at DESC, id DESC))[1],
       min(best_price), max(best_price), avg(liquidity), now()
FROM p2p_snapshots
WHERE complete AND captured_at >= :start AND captured_at < :end{only}
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (exchange, asset, fiat, side, bucket) DO UPDATE SET
    snapshots = excluded.snapshots, first_at = excluded.first_at, last_at = excluded.last_at,
    last_price = excluded.last_price, last_liquidity = excluded.last_liquidity,
    last_offers = excluded.last_offers, min_price = excluded.min_price,
    max_price = excluded.max_price, avg_liquidity = excluded.avg_liquidity,
    computed_at = excluded.computed_at
"""


def floor_hour(moment: datetime) -> datetime:
    """The start of the hour holding `moment`, in UTC."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def recompute(engine: Engine, start: datetime, end: datetime, *,
              now: datetime | None = None) -> int:
    """Recompute every hour overlapping [start, end) that has closed by `now`; return the
    rows written. An hour whose snapshots are all gone keeps its row."""
    closed = floor_hour(now or datetime.now(UTC))
    last = floor_hour(end) if floor_hour(end) == end else floor_hour(end) + HOUR
    cursor, last = floor_hour(start), min(closed, last)
    written = 0
    while cursor < last:
        upto = min(cursor + STEP, last)
        with engine.begin() as connection:
            written += connection.execute(text(RECOMPUTE_SQL.format(only="")),
                                          {"start": cursor, "end": upto}).rowcount
        cursor = upto
    return written


# One market side's hour, only while an older snapshot of it remains: where retention has
# begun cutting (the oldest left is inside this hour) a recomputed row would miss part of it.
ONE_SIDE = """
  AND exchange = :exchange AND asset = :asset AND fiat = :fiat AND side = :side
  AND EXISTS (SELECT 1 FROM p2p_snapshots
              WHERE exchange = :exchange AND asset = :asset AND fiat = :fiat
                AND side = :side AND captured_at < :start)"""


def recompute_late(engine: Engine, market: P2PMarket, side: str, captured_at: datetime, *,
                   now: datetime | None = None) -> int:
    """Take a snapshot stored after the leader stopped redoing its hour (a push more than
    RECOMPUTED late) into that hour's row; return the rows written (0 when the timer will
    still redo the hour, or when no older snapshot of the side is left)."""
    now = now or datetime.now(UTC)
    start = floor_hour(captured_at)
    if start > floor_hour(now) - RECOMPUTED:  # the timer redoes it (the edge hour too)
        return 0
    with engine.begin() as connection:
        return connection.execute(text(RECOMPUTE_SQL.format(only=ONE_SIDE)), {
            "start": start, "end": start + HOUR, "exchange": market.exchange,
            "asset": market.asset, "fiat": market.fiat, "side": side}).rowcount


def refresh(engine: Engine, *, recent: timedelta = RECOMPUTED,
            now: datetime | None = None) -> int:
    """Recompute the last `recent` hours (from `recent` before the end of what is rolled up
    when that is earlier: the leader was away), or every hour since the oldest snapshot the
    first time (no hourly rows yet); return the rows written."""
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        rolled = connection.scalar(text(ROLLED_SQL))
        oldest = None if rolled else connection.scalar(select(func.min(
            p2p_snapshots.c.captured_at)))
    start = min(now, rolled) - recent if rolled else oldest
    return 0 if start is None else recompute(engine, start, now, now=now)
