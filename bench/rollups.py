"""Benchmark the rollups: long ranges read from them against the raw rows, side by side.

    .venv/bin/python bench/rollups.py [--days 365] [--p2p-days 30] [--calls 7]

Run on demand (not in CI). On its own PostgreSQL + TimescaleDB cluster in a temporary
directory, it generates `--days` of 1m candles of one symbol and `--p2p-days` of P2P
snapshots (one a minute and side, one market) with SQL, builds the rollups as the leader
does (db/rollups.py, db/p2p_rollups.py), then times each long-range query both ways in the
same run: through the rollups, and from the raw rows (candles with rollups off; P2P
history while the snapshots are still there). "rows read" is what PostgreSQL's own
statistics counted for the tables involved (tuples fetched by index and read by scans).
Last, the snapshots older than a day are cut by retention and the P2P history is timed
again, now drawn from the hourly aggregates only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.p2p import fresh_database, scratch_cluster
from bench.views_data import CANDLES
from db import p2p_rollups, retention, rollups
from db.candles import get_candles
from db.p2p_history import history
from ingest.runs import start_run

SYMBOL = "BTCUSDT"
TABLES = ("candles", "candle_rollups", "p2p_snapshots", "p2p_hourly")
SNAPSHOTS = text("""
INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, offers,
                           complete, best_price, liquidity)
SELECT :run, 'binance', 'USDT', 'ARS', side, t, 20, true,
       round(CAST(1000 * (1 + 0.05 * sin(extract(epoch FROM t) / 86400)) AS numeric), 2)
           + CASE side WHEN 'ask' THEN 5 ELSE 0 END,
       round(CAST(50000 + 1000 * sin(extract(epoch FROM t) / 3600) AS numeric), 2)
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz)
                     - interval '1 minute', interval '1 minute') AS t
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
""")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rows_read(engine: Engine) -> dict[str, int]:
    """Tuples read so far per table, by index fetches and sequential scans. A backend
    reports its counts when it has been idle for a second: wait for the pool's to."""
    time.sleep(1.5)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        found = connection.execute(text(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables WHERE relname = ANY(:tables)"),
            {"tables": list(TABLES)}).all()
    # Hypertables count in their chunks (relname _hyper_...): add them to the parent.
    with engine.connect() as connection:
        chunks = connection.execute(text(
            "SELECT h.table_name, sum(coalesce(s.seq_tup_read, 0) + "
            "       coalesce(s.idx_tup_fetch, 0)) "
            "FROM _timescaledb_catalog.chunk c "
            "JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id "
            "JOIN pg_stat_user_tables s ON s.schemaname = c.schema_name "
            "     AND s.relname = c.table_name "
            "WHERE h.table_name = ANY(:tables) GROUP BY h.table_name"),
            {"tables": list(TABLES)}).all()
    counts = {name: int(count) for name, count in found}
    for name, count in chunks:
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def measure(engine: Engine, calls: int, work: Callable[[], Any]) -> dict[str, Any]:
    """p50 and best of `calls` runs of `work`, and the rows one run read per table."""
    work()  # warm the buffers and the plan: both ways get the same chance
    before = rows_read(engine)
    result = work()
    after = rows_read(engine)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    read = {name: after.get(name, 0) - before.get(name, 0) for name in TABLES}
    return {"p50": statistics.median(times), "best": min(times), "items": len(result),
            "read": {name: count for name, count in read.items() if count}}


def generate(engine: Engine, days: int, p2p_days: int, now: datetime) -> None:
    start = now - timedelta(days=days)
    cursor = start
    while cursor < now:
        upto = min(cursor + timedelta(days=30), now)
        with engine.begin() as connection:
            connection.execute(CANDLES, {"symbol": SYMBOL, "base": 60000, "start": cursor,
                                         "stop": upto})
        cursor = upto
    say(f"{days} days of 1m candles of {SYMBOL}")
    with start_run(engine, "binance_p2p", "p2p_poll", "USDT/ARS") as run:
        run_id = run.id
    with engine.begin() as connection:
        connection.execute(SNAPSHOTS, {"run": run_id, "start": now - timedelta(days=p2p_days),
                                       "stop": now})
        connection.execute(text("ANALYZE"))
    say(f"{p2p_days} days of P2P snapshots (one a minute and side)")


def report(rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    header = f"{'query':<34} {'source':<34} {'items':>6} {'p50 ms':>9} {'best ms':>9}  rows read"
    print("\n" + header)
    for query, source, found in rows:
        read = ", ".join(f"{name} {count:,}" for name, count in found["read"].items()) or "-"
        print(f"{query:<34} {source:<34} {found['items']:>6} {found['p50']:>9.1f} "
              f"{found['best']:>9.1f}  {read}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--p2p-days", type=int, default=30)
    parser.add_argument("--calls", type=int, default=7)
    args = parser.parse_args()
    cluster, root = scratch_cluster()
    try:
        engine = fresh_database(cluster, "rollups")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        generate(engine, args.days, args.p2p_days, now)
        started = time.perf_counter()
        written = rollups.recompute(engine, SYMBOL, now - timedelta(days=args.days), now)
        say(f"candle rollups: {written:,} rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        written = p2p_rollups.recompute(engine, now - timedelta(days=args.p2p_days), now)
        say(f"P2P hourly rollups: {written:,} rows in {time.perf_counter() - started:.1f} s")
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))

        year = (now - timedelta(days=args.days), now)
        month = (now - timedelta(days=min(30, args.days)), now)
        rows = []
        for label, interval, (first, last) in ((f"{args.days} days of 1d candles", "1d", year),
                                               ("30 days of 1h candles", "1h", month)):
            for source, use in (("rollups", True), ("raw 1m candles", False)):
                found = measure(engine, args.calls, lambda i=interval, a=first, b=last, u=use:
                                get_candles(engine, SYMBOL, i, a, b, rollups=u))
                rows.append((label, source, found))
        hours = now.replace(minute=0)
        window = {"start": hours - timedelta(days=args.p2p_days), "end": hours,
                  "width": timedelta(hours=1)}
        label = f"{args.p2p_days} days of hourly P2P history"
        rows.append((label, "snapshots (one probe per bucket)", measure(
            engine, args.calls, lambda: history(engine, "binance", "USDT", "ARS", **window))))
        cut, = retention.apply(engine, {"p2p_snapshots": 1}, now=now)
        say(f"retention cut {cut.rows:,} snapshots older than {cut.cutoff.isoformat()}")
        rows.append((label, "hourly rollups (snapshots cut)", measure(
            engine, args.calls, lambda: history(engine, "binance", "USDT", "ARS", **window))))
        report(rows)
        engine.dispose()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
