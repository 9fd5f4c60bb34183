"""Views benchmark: each page's main callbacks, cold and cached, and 50 clients over HTTP.

    .venv/bin/python bench/views.py [--scale 1] [--clients 50] [--seconds 60]
                                    [--data-dir DIR] [--workers 2]
    .venv/bin/python bench/views.py --long-ranges

1. Dataset (bench/views_data.py): generated with SQL generate_series into a TimescaleDB
   cluster of its own under --data-dir (default: the temp dir), and reused by later runs
   (parts that have grown too old are generated again). Scale 1 is the issue's dataset.
2. Callbacks in process: each page's main callbacks POSTed to /_dash-update-component through
   the real route (signed in, CSRF header), p50/p95 in ms: "cold" with the query cache
   emptied before every call (the database's own buffers stay warm), "cached" repeating
   one call within a cache bucket.
3. Load over HTTP (bench/views_load.py): gunicorn on loopback with Redis as the cache; N
   clients, each a real user who signs in through the login form, then refreshes one page
   every 5 s as the browser does (its callbacks with the live tick, the CSRF header, and the
   charts' marks sent back). Bounded by --clients and --seconds. Prints p50/p95/p99 and
   CPU. Alone, at 200 clients and the compose web configuration: bench/views_load.py.

--long-ranges runs bench/rollups.py at its defaults instead (a scratch cluster of its own):
a year of 1d and a month of 1h candles of 10 symbols, and a month of the Spread page's hourly
history of 20 markets, cold p50/p95 and rows read, from the raw rows before the rollups and
through them after, then again once retention has cut the snapshots.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from app import create_app
from app.auth import commands, users
from app.config import Settings, load_settings
from app.server import settled
from bench import rollups, views_data, views_load, views_pages
from bench.views_pages import PAGES, Call, callback_key
from db import cache as query_cache
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from tests.dash_calls import callback_body

SECRET = "bench-secret-key-" + "b" * 32
PASSWORD = "bench-password-1"
DATABASE = "views"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cluster(data_dir: Path) -> EmbeddedPostgres:
    """The benchmark's cluster (it keeps the dataset between runs)."""
    root = data_dir / "pg"
    root.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)
    root.chmod(0o755)
    return EmbeddedPostgres(root, database=DATABASE, settings={
        "shared_buffers": "'1GB'", "max_wal_size": "'8GB'", "maintenance_work_mem": "'512MB'",
        "timescaledb.max_background_workers": "0", "max_connections": "200"})


def cluster_url(postgres: EmbeddedPostgres) -> str:
    """Start (or reuse) the benchmark's cluster and its migrated database."""
    url = postgres.ensure_running()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def bench_settings(url: str, data_dir: Path, dataset: views_data.Dataset,
                   redis_url: str | None = None) -> dict[str, str]:
    """The environment of the benchmarked app (no ingestion)."""
    env = {"DATABASE_URL": url, "P2PDASH_DATA_DIR": str(data_dir / "app"),
           "SECRET_KEY": SECRET, "INGEST_ENABLED": "false", "P2PDASH_ENV": "production",
           "P2PDASH_LOG_LEVEL": "WARNING",
           "SPOT_SYMBOLS": ",".join(dataset.symbol_names()),
           "P2P_MARKETS": ",".join(map(str, dataset.p2p_markets())),
           "P2PDASH_LOGIN_MAX_FAILURES": "1000"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def ensure_users(settings: Settings, count: int) -> list[str]:
    """bench-01..bench-N, traders with one password (created once)."""
    engine = make_engine(settings.database_url or "")
    names = [f"bench-{n:02d}" for n in range(1, count + 1)]
    for name in names:
        if users.find(engine, name) is None:
            commands.create_user(engine, "bench", name, PASSWORD, "trader")
    engine.dispose()
    return names


def percentile(samples: list[float], share: float) -> float:
    """The `share` quantile (0-1) of some samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _post(client, dash_app, call: Call, n: int, headers: dict[str, str]) -> float:
    key = callback_key(dash_app.callback_map, call.output)
    body = callback_body(dash_app.callback_map, key, call.values(n), call.changed)
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code not in (200, 204):
        raise RuntimeError(f"{call.label}: {response.status_code} "
                           f"{response.get_data(as_text=True)[:300]}")
    return elapsed


def time_calls(server, headers, client, calls: int) -> list[dict[str, Any]]:
    """p50/p95 of every page's main callbacks, cold (cache emptied) and cached."""
    dash_app = server.extensions["dash"]
    rows = []
    for page, page_calls in PAGES.items():
        for call in page_calls:
            cold, warm = [], []
            for n in range(calls):
                with server.app_context():
                    query_cache.clear()
                cold.append(_post(client, dash_app, call, n, headers))
            _post(client, dash_app, call, 0, headers)
            warm = [_post(client, dash_app, call, 0, headers) for _ in range(calls)]
            rows.append({"page": page, "callback": call.label,
                         "cold_p50": statistics.median(cold), "cold_p95": percentile(cold, .95),
                         "cached_p50": statistics.median(warm),
                         "cached_p95": percentile(warm, .95)})
    return rows


def signed_in_client(server):
    """A test client signed in as bench-01 and the headers a callback POST needs."""
    client = server.test_client()
    token = views_load.csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "username": "bench-01",
                                           "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    client.get("/")
    return client, {"X-CSRFToken": client.get_cookie("_csrf_token").value}


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain text table."""
    print(f"\n{title}")
    widths = [max(len(column), *(len(_cell(row[column])) for row in rows)) for column in columns]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(_cell(row[column]).ljust(width)
                        for column, width in zip(columns, widths, strict=True)))


def _cell(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def dataset_size(url: str) -> list[dict[str, Any]]:
    """Rows per table of the dataset."""
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = [{"table": table, "rows": connection.scalar(
            text(f"SELECT count(*) FROM {table}"))}
            for table in ("candles", "book_tickers", "tickers_24h", "p2p_snapshots",
                          "p2p_offers")]
    engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; stop the cluster afterwards if this run started it."""
    args = parse_args(argv)
    if args.long_ranges:
        rollups.main([])
        return
    postgres = cluster(Path(args.data_dir).absolute())
    try:
        measure(args, postgres)
    finally:
        postgres.stop()  # a cluster that was already running is left as it was


def dataset_for(*, small: bool, scale: float) -> views_data.Dataset:
    """The tiny dataset that checks the benchmark runs, or the issue's at `scale`."""
    if small:
        return views_data.Dataset(symbols=3, candle_days=3, markets=12, p2p_days=1, adverts=5,
                                  ticker_hours=2)
    return views_data.Dataset.scaled(scale)


def measure(args: argparse.Namespace, postgres: EmbeddedPostgres) -> None:
    """Generate or reuse the dataset, time the callbacks, then run the HTTP load."""
    logging.basicConfig(level=logging.WARNING)
    dataset = dataset_for(small=args.small, scale=args.scale)
    views_pages.use(dataset)
    data_dir = Path(args.data_dir).absolute()
    url = cluster_url(postgres)
    engine = make_engine(url)
    views_data.ensure(engine, dataset, say, GENERATORS)
    engine.dispose()
    print_table("dataset", dataset_size(url), ["table", "rows"])
    if args.generate_only:
        return
    env = bench_settings(url, data_dir, dataset)
    settings = load_settings(environ=env, env_file=None)
    ensure_users(settings, max(args.clients, 1))
    server = settled(create_app(settings))  # as app/server.py and wsgi.py serve it
    client, headers = signed_in_client(server)
    rows = time_calls(server, headers, client, args.calls)
    print_table(f"callbacks in process, {args.calls} calls each (ms)", rows,
                ["page", "callback", "cold_p50", "cold_p95", "cached_p50", "cached_p95"])
    server.extensions["p2pdash"].engine.dispose()
    if args.clients:
        load = views_load.run(env, server.extensions["dash"].callback_map,
                              clients=args.clients, seconds=args.seconds,
                              workers=args.workers, period=args.period, password=PASSWORD,
                              say=say, database_pid=views_load.postmaster_pid(postgres.data),
                              warmup=args.warmup)
        views_load.report(load, clients=args.clients, seconds=args.seconds, period=args.period)


GENERATORS: dict[str, Callable] = {"spot": views_data.generate_spot,
                                   "tickers": views_data.generate_tickers,
                                   "p2p": views_data.generate_p2p}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="time spans of the dataset, 1 = the issue's (default)")
    parser.add_argument("--generate-only", action="store_true",
                        help="generate (or check) the dataset, measure nothing")
    parser.add_argument("--long-ranges", action="store_true",
                        help="the long ranges before and after the rollups (bench/rollups.py)")
    parser.add_argument("--small", action="store_true",
                        help="a tiny dataset, to check the benchmark itself runs")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir())
                                                  / "p2pdash-bench-views"),
                        help="where the cluster and its dataset live between runs")
    parser.add_argument("--calls", type=int, default=20, help="calls per callback and mode")
    parser.add_argument("--clients", type=int, default=50, help="HTTP clients (0: skip)")
    parser.add_argument("--seconds", type=int, default=60, help="length of the HTTP load")
    parser.add_argument("--period", type=float, default=5.0, help="refresh period (s)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of refreshing before the measured window (reported apart)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
