"""Benchmark the P2P path: ingest speed against the fake exchange, metrics latency at scale.

1. Ingest: poll 50 simulated markets (Binance, OKX, Bybit) on the local fake exchange with
   the real pollers, four at a time as the scheduler's pool would, and count offers stored
   per second.
2. Metrics: generate 30 days of one-minute snapshots for 20 markets, 20 adverts a side
   (about 35M offers, with SQL generate_series straight into the hypertable), then time
   summary and history (p50/p95) over random markets.

Runs on its own PostgreSQL + TimescaleDB cluster in a temporary directory:
    .venv/bin/python bench/p2p.py [--days 30] [--markets 20] [--calls 200]
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import EXCHANGES, P2PMarket, load_settings
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from db.p2p import OfferFilter, history, summary
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import DEFAULT_FIAT_PER_USD, Simulation
from ingest.p2p_poll import poll_market

FIATS = sorted(DEFAULT_FIAT_PER_USD)
ASSETS = ("USDT", "BTC", "ETH", "USDC")


def scratch_cluster() -> tuple[EmbeddedPostgres, Path]:
    """A fresh cluster in a temporary directory the postgres user can reach."""
    root = Path(tempfile.mkdtemp(prefix="p2pdash-bench-"))
    root.chmod(0o755)
    cluster = EmbeddedPostgres(root, settings={"max_wal_size": "'4GB'",
                                               "maintenance_work_mem": "'512MB'",
                                               "shared_buffers": "'1GB'"})
    cluster.ensure_running()
    return cluster, root


def fresh_database(cluster: EmbeddedPostgres, name: str) -> Engine:
    admin = make_engine(cluster.url("postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(cluster.url(name), pool_size=8)
    upgrade(engine)
    return engine


def markets(count: int) -> list[P2PMarket]:
    """`count` distinct markets spread over the exchanges, assets and fiats."""
    pairs = [(asset, fiat) for asset in ASSETS for fiat in FIATS]
    return [P2PMarket(EXCHANGES[i % 3], *pairs[(i * 7) % len(pairs)]) for i in range(count)]


def bench_ingest(engine: Engine, database_url: str, count: int, rounds: int) -> dict[str, Any]:
    """Poll `count` simulated markets `rounds` times; return offers and polls per second."""
    fake = FakeP2P(simulation=Simulation(period=1.0))
    with serving(fake) as url:
        settings = load_settings(environ={
            "DATABASE_URL": database_url, "P2PDASH_DATA_DIR": tempfile.gettempdir(),
            "BINANCE_P2P_URL": url, "OKX_P2P_URL": url, "BYBIT_P2P_URL": url,
            "P2P_PACING_MS": "0", "P2P_DEPTH": "20"}, env_file=None)
        chosen = markets(count)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda m: poll_market(settings, engine, m),
                                    chosen * rounds))
        elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        offers = connection.scalar(text("SELECT count(*) FROM p2p_offers"))
    failed = sum(result.status != "ok" for result in results)
    return {"polls": len(results), "failed": failed, "offers": offers, "seconds": elapsed}


GENERATE_SNAPSHOTS = """
INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, offers, complete,
                           best_price, liquidity)
SELECT :run, m.exchange, m.asset, m.fiat, s.side, t, :adverts, true,
       round(m.base * (1 + 0.01 * CAST(sin(extract(epoch FROM t) / 86400.0 * 6.2832) AS numeric))
             * (1 + s.sign * 0.002), 2),
       :adverts * 100 + 10 * :adverts * (:adverts - 1) / 2
FROM bench_markets m
CROSS JOIN (VALUES ('ask', 1), ('bid', -1)) AS s (side, sign)
CROSS JOIN generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz),
                           interval '1 minute') AS t
"""

GENERATE_OFFERS = """
INSERT INTO p2p_offers (captured_at, run_id, exchange, asset, fiat, side, offer_id, price,
                        available, min_fiat, max_fiat, advertiser_id, advertiser_name,
                        is_merchant, month_orders, month_finish_rate, rank, payment_methods)
SELECT t, :run, m.exchange, m.asset, m.fiat, s.side,
       (1000000000000000000 + m.id * 1000000 + s.n * 1000 + k)::text,
       round(m.base * (1 + 0.01 * CAST(sin(extract(epoch FROM t) / 86400.0 * 6.2832) AS numeric))
             * (1 + s.sign * (0.002 + k * 0.0005)), 2),
       100 + 10 * k, m.base * 10, m.base * 5000, 'u' || (m.id * 50 + k), 'trader ' || k,
       k % 3 = 0, 100 + k, 0.9 + k * 0.004, k + 1,
       ARRAY[(ARRAY['BANK', 'MercadoPagoNew', 'Wise', 'KaspiBank'])[1 + k % 4]]
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz),
                     interval '1 minute') AS t
CROSS JOIN bench_markets m
CROSS JOIN (VALUES ('ask', 1, 1), ('bid', -1, 2)) AS s (side, sign, n)
CROSS JOIN generate_series(0, :adverts - 1) AS k
"""


def generate(engine: Engine, count: int, days: int, adverts: int, end: datetime) -> float:
    """Fill `days` of one-minute snapshots for `count` markets; return the seconds taken."""
    started = time.perf_counter()
    with engine.begin() as connection:
        run = connection.scalar(text("INSERT INTO runs (source, kind, status) VALUES "
                                     "('bench', 'p2p_push', 'ok') RETURNING id"))
        connection.execute(text("CREATE TABLE bench_markets (id int, exchange text, asset "
                                "text, fiat text, base numeric)"))
        for index, market in enumerate(markets(count)):
            base = Decimal(str(DEFAULT_FIAT_PER_USD[market.fiat])) * {
                "BTC": 65000, "ETH": 3200}.get(market.asset, 1)
            connection.execute(text("INSERT INTO bench_markets VALUES (:i, :e, :a, :f, :b)"),
                               {"i": index, "e": market.exchange, "a": market.asset,
                                "f": market.fiat, "b": base})
    for day in range(days):
        start = end - timedelta(days=days - day)
        window = {"run": run, "adverts": adverts, "start": start,
                  "stop": start + timedelta(days=1) - timedelta(minutes=1)}
        with engine.begin() as connection:
            connection.execute(text(GENERATE_SNAPSHOTS), window)
            connection.execute(text(GENERATE_OFFERS), window)
        print(f"  day {day + 1}/{days} generated ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # The visibility map lets history read snapshots from the covering index alone.
        connection.execute(text("VACUUM ANALYZE p2p_snapshots"))
        connection.execute(text("ANALYZE p2p_offers"))
    return time.perf_counter() - started


def timed(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """p50 and p95 of `calls` calls, in milliseconds (after two warm-up calls)."""
    for _ in range(2):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]


def bench_metrics(engine: Engine, count: int, end: datetime, calls: int) -> list[tuple]:
    """Latency rows: (query, p50 ms, p95 ms)."""
    chosen = markets(count)
    rng = random.Random(1)

    def pick() -> tuple[str, str, str]:
        market = rng.choice(chosen)
        return market.exchange, market.asset, market.fiat

    payment = OfferFilter(payment=("bank_transfer",), merchant_only=True)
    cases = [
        ("summary", lambda: summary(engine, *pick())),
        ("summary, payment + merchant filter", lambda: summary(engine, *pick(), payment)),
        ("history 24 h, 1 min buckets", lambda: history(
            engine, *pick(), start=end - timedelta(days=1), end=end, width=timedelta(minutes=1))),
        ("history 7 d, 15 min buckets", lambda: history(
            engine, *pick(), start=end - timedelta(days=7), end=end,
            width=timedelta(minutes=15))),
        ("history 30 d, 1 h buckets", lambda: history(
            engine, *pick(), start=end - timedelta(days=30), end=end, width=timedelta(hours=1))),
        ("history 30 d, 1 h, payment + merchant filter", lambda: history(
            engine, *pick(), start=end - timedelta(days=30), end=end, width=timedelta(hours=1),
            filters=payment)),
    ]
    return [(name, *timed(call, calls)) for name, call in cases]


def main() -> None:
    """Run both benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--markets", type=int, default=20)
    parser.add_argument("--adverts", type=int, default=20)
    parser.add_argument("--ingest-markets", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--keep", action="store_true",
                        help="leave the cluster running (its URL is printed) to explore")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    cluster, root = scratch_cluster()
    try:
        engine = fresh_database(cluster, "bench_ingest")
        ingest = bench_ingest(engine, cluster.url("bench_ingest"), args.ingest_markets,
                              args.rounds)
        engine.dispose()
        engine = fresh_database(cluster, "bench_metrics")
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        seconds = generate(engine, args.markets, args.days, args.adverts, end)
        with engine.connect() as connection:
            rows = connection.scalar(text("SELECT count(*) FROM p2p_offers"))
        latency = bench_metrics(engine, args.markets, end, args.calls)
        engine.dispose()
    finally:
        if args.keep:
            print(f"cluster kept: {cluster.url('bench_metrics')}", file=sys.stderr)
        else:
            cluster.stop(force=True)
            shutil.rmtree(root, ignore_errors=True)
    print_table(args, ingest, rows, seconds, latency)


def print_table(args: argparse.Namespace, ingest: dict[str, Any], rows: int, seconds: float,
                latency: list[tuple]) -> None:
    """The benchmark's results as a plain-text table."""
    rate = ingest["offers"] / ingest["seconds"]
    print(f"\nP2P ingest: {args.ingest_markets} markets x {args.rounds} rounds against the local "
          f"fake exchange, 4 pollers at once")
    print(f"| polls | failed | offers stored | seconds | offers/s | polls/s |\n"
          f"|---|---|---|---|---|---|\n"
          f"| {ingest['polls']} | {ingest['failed']} | {ingest['offers']} | "
          f"{ingest['seconds']:.1f} | {rate:,.0f} | {ingest['polls'] / ingest['seconds']:.1f} |")
    print(f"\nP2P metrics: {args.days} days of 1-minute snapshots, {args.markets} markets, "
          f"{args.adverts} adverts a side = {rows:,} offers (generated in {seconds:.0f} s); "
          f"{args.calls} calls each, random markets")
    print("| query | p50 ms | p95 ms |\n|---|---|---|")
    for name, p50, p95 in latency:
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
