"""Benchmark the rollups: long ranges read from the raw rows and through the rollups, side by side.

    .venv/bin/python bench/rollups.py [--symbols 10] [--days 365] [--markets 20]
                                      [--p2p-days 30] [--calls 7]
    .venv/bin/python bench/views.py --long-ranges    (the same, at the defaults)

Run on demand (not in CI). On its own PostgreSQL + TimescaleDB cluster in a temporary
directory, it generates `--days` of 1m candles for each of `--symbols` symbols and
`--p2p-days` of P2P snapshots (one a minute and side) for each of `--markets` markets with
SQL generate_series, the symbols and markets of bench/views_data.py. Each long-range query
is then timed cold (no app cache; the database's buffers stay warm) `--calls` times for
every symbol or market, "raw" before the rollups exist (candles with rollups off; P2P
history from the snapshots alone), then "rollups" once they are built as the leader does
(db/rollups.py, db/p2p_rollups.py). The P2P history is what the Spread page runs for a
month at 1h (db/views.py p2p_history, uncached). Last, the snapshots older than a day are
cut by retention and the P2P history is timed again, now drawn from the hourly aggregates
only. p50 and p95 are over all calls of all symbols or markets; "rows read" is what
PostgreSQL's own statistics counted for the tables involved (tuples read by sequential
scans plus index entries read by index scans, index-only ones included), for one call on
average.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import P2PMarket
from bench.p2p import fresh_database, scratch_cluster
from bench.views_data import ASSET_IN_USDT, CANDLES, FIAT_PER_USDT, SYMBOLS, Dataset
from db import p2p_rollups, retention, rollups, views
from db.candles import get_candles
from ingest.runs import start_run

TABLES = ("candles", "candle_rollups", "p2p_snapshots", "p2p_hourly")
MONTH = timedelta(days=30)
SNAPSHOTS = text("""
INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, offers,
                           complete, best_price, liquidity)
SELECT :run, :exchange, :asset, :fiat, side, t, 20, true,
       round(CAST(:base * (1 + 0.05 * sin(extract(epoch FROM t) / 86400)) AS numeric), 2)
           * CASE side WHEN 'ask' THEN 1.005 ELSE 1 END,
       round(CAST(50000 + 1000 * sin(extract(epoch FROM t) / 3600) AS numeric), 2)
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz)
                     - interval '1 minute', interval '1 minute') AS t
CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)
""")
Work = Callable[[], Sequence[Any]]


@dataclass(frozen=True)
class Timing:
    """What one query cost, one way, over every symbol or market."""

    items: int
    p50: float
    p95: float
    read: dict[str, int]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def symbol_names(count: int) -> list[str]:
    """The views benchmark's symbols, then made-up ones when more are asked for."""
    names = list(SYMBOLS)[:count]
    return names + [f"BENCH{n}USDT" for n in range(count - len(names))]


READ_SQL = """
SELECT t.schemaname, t.relname, coalesce(t.seq_tup_read, 0) + coalesce(
           (SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0)
FROM pg_stat_user_tables t
"""


def rows_read(engine: Engine) -> dict[str, int]:
    """Tuples read so far per table: by sequential scans, and as index entries by index
    scans (idx_tup_fetch would miss index-only scans, which fetch no heap tuple). A backend
    reports its counts when it has been idle for a second: wait for the pool's to."""
    time.sleep(1.5)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        found = connection.execute(text(
            f"SELECT relname, n FROM ({READ_SQL}) AS t (schemaname, relname, n) "
            "WHERE relname = ANY(:tables)"), {"tables": list(TABLES)}).all()
        # Hypertables count in their chunks (relname _hyper_...): add them to the parent.
        chunks = connection.execute(text(
            f"SELECT h.table_name, sum(s.n) FROM _timescaledb_catalog.chunk c "
            "JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id "
            f"JOIN ({READ_SQL}) AS s (schemaname, relname, n) "
            "     ON s.schemaname = c.schema_name AND s.relname = c.table_name "
            "WHERE h.table_name = ANY(:tables) GROUP BY h.table_name"),
            {"tables": list(TABLES)}).all()
    counts = {name: int(count) for name, count in found}
    for name, count in chunks:
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def measure(engine: Engine, calls: int, works: Sequence[Work]) -> Timing:
    """p50 and p95 of `calls` runs of each of `works` (one per symbol or market), the
    items one run returns, and the rows one run read per table, on average."""
    for work in works:
        work()  # warm the buffers and the plan: both ways get the same chance
    before = rows_read(engine)
    items = max(len(work()) for work in works)
    after = rows_read(engine)
    times = []
    for _ in range(calls):
        for work in works:
            started = time.perf_counter()
            work()
            times.append((time.perf_counter() - started) * 1000)
    read = {name: round((after.get(name, 0) - before.get(name, 0)) / len(works))
            for name in TABLES}
    return Timing(items, statistics.median(times),
                  statistics.quantiles(times, n=20, method="inclusive")[-1],
                  {name: count for name, count in read.items() if count})


def generate_candles(engine: Engine, symbols: list[str], days: int, now: datetime) -> None:
    """`days` of 1m candles of every symbol, a month per statement."""
    for n, symbol in enumerate(symbols):
        cursor = now - timedelta(days=days)
        while cursor < now:
            upto = min(cursor + MONTH, now)
            with engine.begin() as connection:
                connection.execute(CANDLES, {"symbol": symbol, "base": SYMBOLS.get(symbol, 100),
                                             "start": cursor, "stop": upto})
            cursor = upto
        say(f"{days} days of 1m candles of {symbol} ({n + 1}/{len(symbols)})")


def generate_snapshots(engine: Engine, markets: list[P2PMarket], days: int,
                       now: datetime) -> None:
    """`days` of snapshots of every market, one a minute and side."""
    for market in markets:
        with start_run(engine, f"{market.exchange}_p2p", "p2p_poll", str(market)) as run:
            run_id = run.id
        with engine.begin() as connection:
            connection.execute(SNAPSHOTS, {
                "run": run_id, "exchange": market.exchange, "asset": market.asset,
                "fiat": market.fiat, "start": now - timedelta(days=days), "stop": now,
                "base": FIAT_PER_USDT[market.fiat] * ASSET_IN_USDT[market.asset]})
    say(f"{days} days of P2P snapshots of {len(markets)} markets (one a minute and side)")


def build_rollups(engine: Engine, symbols: list[str], args: argparse.Namespace,
                  now: datetime) -> None:
    """The candle and P2P rollups of the whole dataset, as the leader's first refresh."""
    started = time.perf_counter()
    written = sum(rollups.recompute(engine, symbol, now - timedelta(days=args.days), now)
                  for symbol in symbols)
    say(f"candle rollups: {written:,} rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    written = p2p_rollups.recompute(engine, now - timedelta(days=args.p2p_days), now)
    say(f"P2P hourly rollups: {written:,} rows in {time.perf_counter() - started:.1f} s")
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def candle_queries(engine: Engine, symbols: list[str], args: argparse.Namespace,
                   now: datetime) -> dict[str, Callable[[bool], list[Work]]]:
    """Per query label, the calls (one per symbol) with rollups on or off."""
    year, month = timedelta(days=args.days), timedelta(days=min(30, args.days))

    def calls(interval: str, span: timedelta) -> Callable[[bool], list[Work]]:
        return lambda use: [lambda s=symbol: get_candles(engine, s, interval, now - span, now,
                                                         rollups=use) for symbol in symbols]

    return {f"{args.days} days of 1d candles": calls("1d", year),
            f"{min(30, args.days)} days of 1h candles": calls("1h", month)}


def spread_calls(engine: Engine, markets: list[P2PMarket], days: int,
                 now: datetime) -> list[Work]:
    """The Spread page's history of every market over `days` at 1h, as it runs uncached."""
    span = days * 86400
    return [lambda m=str(market): views.p2p_history.uncached(engine, m, 3600, span, now=now)["t"]
            for market in markets]


def report(rows: list[tuple[str, Timing | None, Timing]]) -> None:
    """One line per query: the raw rows and the rollups side by side."""
    header = (f"{'query':<44} {'items':>5} {'raw p50':>9} {'raw p95':>9} {'rollup p50':>10} "
              f"{'rollup p95':>10}  rows read: raw | rollups")
    print("\n" + header)
    for query, raw, rolled in rows:
        if raw is None:
            raw_cells, raw_read = f"{'-':>9} {'-':>9}", "(snapshots gone)"
        else:
            raw_cells, raw_read = f"{raw.p50:>9.1f} {raw.p95:>9.1f}", _read(raw)
        items = str(rolled.items) if raw is None or raw.items == rolled.items \
            else f"{raw.items}/{rolled.items}"
        print(f"{query:<44} {items:>5} {raw_cells} {rolled.p50:>10.1f} {rolled.p95:>10.1f}  "
              f"{raw_read} | {_read(rolled)}")


def _read(timing: Timing) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in timing.read.items()) or "-"


def run(engine: Engine, args: argparse.Namespace) -> None:
    """Generate, time raw, build the rollups, time through them, cut, time again; report."""
    symbols = symbol_names(args.symbols)
    markets = Dataset(markets=args.markets).p2p_markets()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    started = time.perf_counter()
    generate_candles(engine, symbols, args.days, now)
    generate_snapshots(engine, markets, args.p2p_days, now)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    say(f"dataset generated in {time.perf_counter() - started:.0f} s")
    candle_calls = candle_queries(engine, symbols, args, now)
    spread = spread_calls(engine, markets, args.p2p_days, now)
    spread_label = f"{args.p2p_days} days of hourly P2P history"
    raw = {label: measure(engine, args.calls, calls(False))
           for label, calls in candle_calls.items()}
    raw[spread_label] = measure(engine, args.calls, spread)
    say("raw rows timed")
    build_rollups(engine, symbols, args, now)
    rows: list[tuple[str, Timing | None, Timing]] = [
        (label, raw[label], measure(engine, args.calls, calls(True)))
        for label, calls in candle_calls.items()]
    rows.append((spread_label, raw[spread_label], measure(engine, args.calls, spread)))
    cut, = retention.apply(engine, {"p2p_snapshots": 1}, now=now)
    say(f"retention cut {cut.rows:,} snapshots older than {cut.cutoff.isoformat()}")
    rows.append((f"{spread_label}, snapshots cut", None, measure(engine, args.calls, spread)))
    report(rows)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark on a scratch cluster, removed afterwards."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=10, help="symbols of 1m candles")
    parser.add_argument("--days", type=int, default=365, help="days of candles")
    parser.add_argument("--markets", type=int, default=20, help="P2P markets")
    parser.add_argument("--p2p-days", type=int, default=30, help="days of P2P snapshots")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per symbol/market")
    args = parser.parse_args(argv)
    cluster, root = scratch_cluster()
    try:
        engine = fresh_database(cluster, "rollups")
        run(engine, args)
        engine.dispose()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
