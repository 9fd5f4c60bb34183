"""Hourly P2P aggregates: what each closed hour's complete snapshots said, per market and side.

Every hour is recomputed from its snapshots in one statement (never by blending an old row
with new snapshots), so redoing an hour is idempotent and a late snapshot (a push of an
earlier book) is taken in when its hour is next recomputed. The leader redoes the recent
hours on a timer (ingest/rollups.py) and, the first time, the whole history a month at a
time. History reads these rows only where the snapshots are gone (db/p2p_history.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, text

from db.schema import p2p_hourly, p2p_snapshots

HOUR = timedelta(hours=1)
STEP = timedelta(days=30)  # history is rolled up a month at a time (bounded work per statement)

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
WHERE complete AND captured_at >= :start AND captured_at < :end
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
            written += connection.execute(text(RECOMPUTE_SQL),
                                          {"start": cursor, "end": upto}).rowcount
        cursor = upto
    return written


def refresh(engine: Engine, *, recent: timedelta, now: datetime | None = None) -> int:
    """Recompute the last `recent` hours, or every hour since the oldest snapshot the first
    time (no hourly rows yet); return the rows written."""
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        rolled = connection.scalar(select(func.max(p2p_hourly.c.bucket)))
        oldest = None if rolled else connection.scalar(select(func.min(
            p2p_snapshots.c.captured_at)))
    start = now - recent if rolled else oldest
    return 0 if start is None else recompute(engine, start, now, now=now)
