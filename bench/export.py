"""Export benchmark: the export API's rows/s and web worker memory beside a raw COPY.

    .venv/bin/python bench/export.py [--small] [--data-dir DIR] [--symbols 10] [--markets 3]

Run on demand (not in CI). One run, one table:
1. Dataset: bench/views_data.py's, generated into (or reused from) the views benchmark's own
   cluster under --data-dir (by default the one bench/views.py keeps, so either benchmark
   reuses what the other generated; --small keeps its tiny dataset in a directory of its
   own, so it never replaces the full one).
2. Baseline: `COPY (SELECT ...) TO STDOUT` through psycopg to /dev/null, no app code: the
   stored rows as they are ("plain"), and the export's own SELECT (ISO times, booleans as
   text, payment names) run the same raw way, to tell the SQL's cost from the app's.
3. The export API over HTTP: GET /api/v1/export/{dataset} with an `export` API key of an
   analyst, against the app as `p2pdash run` serves it on loopback (app/server.py),
   read by curl (so the client's chunk decoding costs no Python time), as CSV and Parquet:
   1m candles (one request per symbol, a whole symbol each, summed), 4h candles (the same
   symbols), P2P offers (one request per market, summed). Rows are counted in what arrived
   (CSV lines, Parquet metadata) and checked against the baseline's.
4. Memory: the web process's VmRSS (/proc/<pid>/status) sampled every 50 ms while a case runs;
   the table shows the peak minus the RSS just before the case's first request (after a
   small warm-up export of the same dataset and format).

Aims, printed beside the figures: CSV at least 0.8x the plain raw COPY's rows/s, and the
worker's RSS growth under 50 MB for a ~5M-row export.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import pyarrow.parquet as pq
import requests
from sqlalchemy import Engine, make_url, text

from app.auth import commands, users
from app.config import P2PMarket
from bench import views_data
from bench.views import GENERATORS, bench_settings, cluster, cluster_url, dataset_size, say
from bench.views import print_table as print_rows
from db.embedded import free_port
from db.engine import make_engine
from db.export import parse_request
from db.export_stream import _compiled
from db.intervals import bucket_start_ms, from_ms, to_ms

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
USER = "bench-export"
PASSWORD = "bench-password-1"
SAMPLE_SECONDS = 0.05
AIM_RATIO = 0.8
AIM_RSS_MB = 50
BLOCK = 1 << 20

SMALL = views_data.Dataset(symbols=3, candle_days=3, markets=12, p2p_days=1, adverts=5,
                           ticker_hours=2)

PLAIN_CANDLES = """
    SELECT * FROM candles WHERE exchange = 'binance' AND symbol = %(symbol)s
      AND interval = '1m' AND open_time >= %(start)s AND open_time < %(end)s
    ORDER BY open_time"""
# db/candles.py's TimescaleDB aggregation, written out (buckets from the epoch).
PLAIN_4H = """
    SELECT time_bucket(interval '4 hours', open_time, timestamptz '1970-01-01 00:00+00')
             AS bucket, first(open, open_time) AS open, max(high) AS high, min(low) AS low,
           last(close, open_time) AS close, sum(volume) AS volume,
           last(close_time, open_time) AS close_time, sum(quote_volume) AS quote_volume,
           sum(trades) AS trades, sum(taker_base_volume) AS taker_base_volume,
           sum(taker_quote_volume) AS taker_quote_volume, bool_and(is_closed) AS is_closed
    FROM candles WHERE exchange = 'binance' AND symbol = %(symbol)s AND interval = '1m'
      AND open_time >= %(start)s AND open_time < %(end)s
    GROUP BY 1 ORDER BY 1"""
PLAIN_OFFERS = """
    SELECT * FROM p2p_offers WHERE exchange = %(exchange)s AND asset = %(asset)s
      AND fiat = %(fiat)s AND captured_at >= %(start)s AND captured_at < %(end)s
    ORDER BY captured_at, side, rank"""


@dataclass(frozen=True)
class Request:
    """One export request: its API parameters and the baseline's query parameters."""

    args: dict[str, str]
    params: dict[str, Any]


@dataclass(frozen=True)
class Case:
    """A dataset to export: the requests whose rows are summed, and the plain baseline."""

    label: str
    dataset: str
    requests: list[Request]
    plain_sql: str
    export_sql: bool = True  # the export's SELECT can run raw (not for aggregated candles)


@dataclass
class Measure:
    """What one way of reading a case gave."""

    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rss_mb: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# ---- the baseline: raw COPY through psycopg -----------------------------------------------

def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def raw_copy(dsn: str, statements: list[tuple[str, dict[str, Any]]]) -> Measure:
    """COPY (sql) TO STDOUT (CSV, header) of each statement to /dev/null, one connection.
    PostgreSQL sends a COPY's rows one CopyData message each, and psycopg yields one block
    per message: the blocks less the header are the rows."""
    measure = Measure()
    with psycopg.connect(dsn) as connection, open(os.devnull, "wb") as sink:
        started = time.perf_counter()
        for sql, params in statements:
            blocks = 0
            with connection.cursor() as cursor, cursor.copy(
                    f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
                for block in copy:
                    measure.bytes += sink.write(block)
                    blocks += 1
            measure.rows += max(0, blocks - 1)
        measure.seconds = time.perf_counter() - started
    return measure


def export_statements(engine: Engine, case: Case) -> list[tuple[str, dict[str, Any]]]:
    """The export's own SELECT of each request, as psycopg takes it (only the SQL text and
    its parameters come from the app; the COPY is run raw)."""
    statements = []
    for request in case.requests:
        parsed = parse_request(case.dataset, {**request.args, "format": "csv"}, role="analyst")
        statements.append(_compiled(engine, parsed.query))
    return statements


# ---- the export API over HTTP ----------------------------------------------------------

def rss_kb(pid: int) -> int:
    """A process's resident set (VmRSS) in kB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class PeakRss(threading.Thread):
    """Samples a process's VmRSS every SAMPLE_SECONDS until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.before = rss_kb(pid)
        self.peak = self.before
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, rss_kb(self.pid))
            self.samples += 1

    def stop(self) -> float:
        """Stop sampling; the growth (peak - before) in MB."""
        self.halt.set()
        self.join()
        self.peak = max(self.peak, rss_kb(self.pid))
        return (self.peak - self.before) / 1024


@dataclass(frozen=True)
class Server:
    """The app as served: its base URL, an export key, its pid, a scratch dir."""

    base: str
    key: str
    worker: int
    workdir: Path


def fetch(server: Server, dataset: str, args: dict[str, str], fmt: str
          ) -> tuple[int, int, str]:
    """One export read by curl: (rows, bytes, error or "")."""
    query = urlencode({**args, "format": fmt})
    command = ["curl", "--silent", "--show-error", "--fail", "--no-buffer",
               "--max-time", "1800", "-H", f"X-API-Key: {server.key}",
               f"{server.base}/api/v1/export/{dataset}?{query}"]
    if fmt == "parquet":
        path = server.workdir / "export.parquet"
        done = subprocess.run([*command, "-o", str(path)], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            return 0, 0, f"curl {done.returncode}: {done.stderr.strip()[:200]}"
        size = path.stat().st_size
        rows = pq.read_metadata(path).num_rows
        path.unlink()
        return rows, size, ""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as curl:
        lines = size = 0
        while block := curl.stdout.read(BLOCK):
            lines += block.count(b"\n")
            size += len(block)
        error = curl.stderr.read().decode(errors="replace").strip()
    if curl.returncode:
        return 0, size, f"curl {curl.returncode}: {error[:200]}"
    return max(0, lines - 1), size, ""


def over_http(server: Server, case: Case, fmt: str) -> Measure:
    """Every request of a case in sequence, with the worker's peak RSS growth."""
    warm = case.requests[0].args
    fetch(server, case.dataset, {**warm, "end": str(int(warm["start"]) + 3_600_000)},
          fmt)  # first use of this path in the worker: imports, caches, pool
    measure = Measure()
    sampler = PeakRss(server.worker)
    sampler.start()
    started = time.perf_counter()
    try:
        for request in case.requests:
            rows, size, error = fetch(server, case.dataset, request.args, fmt)
            measure.rows += rows
            measure.bytes += size
            if error:
                measure.errors.append(error)
    finally:
        measure.seconds = time.perf_counter() - started
        measure.rss_mb = sampler.stop()
    return measure


@contextmanager
def served(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The app as `p2pdash run` serves it (app/server.py: waitress, one process, 8
    threads); yields its base URL and the process's pid."""
    port = free_port()
    command = [sys.executable, "-m", "app", "run"]
    process = subprocess.Popen(command, cwd=ROOT, env={
        **os.environ, **env, "P2PDASH_HOST": LOOPBACK, "P2PDASH_PORT": str(port),
        "P2PDASH_THREADS": "8", "P2PDASH_LOG_LEVEL": "WARNING"})
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{base}/login", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def export_key(engine: Engine) -> str:
    """A fresh `export` API key of the analyst USER (created once)."""
    if users.find(engine, USER) is None:
        commands.create_user(engine, "bench", USER, PASSWORD, "analyst")
    _, key = commands.create_key(engine, "bench", USER, f"export bench {time.time():.0f}",
                                 ["export"])
    return key


# ---- the cases ---------------------------------------------------------------------------

def _ms(moment: datetime) -> str:
    return str(to_ms(moment))


def candle_requests(engine: Engine, symbols: list[str], interval: str) -> list[Request]:
    """One request per symbol over all its stored 1m candles (from a bucket's start)."""
    found = []
    with engine.connect() as connection:
        for symbol in symbols:
            first, last = connection.execute(text(
                "SELECT min(open_time), max(open_time) FROM candles WHERE exchange = 'binance' "
                "AND symbol = :s AND interval = '1m'"), {"s": symbol}).one()
            if first is None:
                continue
            end = last + timedelta(minutes=1)
            # From a bucket's start: the export leaves out a first bucket that starts
            # before `start` (db/export_stream.py, _candle_windows), a plain GROUP BY not.
            first = from_ms(bucket_start_ms(to_ms(first), interval))
            found.append(Request({"symbol": symbol, "interval": interval, "start": _ms(first),
                                  "end": _ms(end)},
                                 {"symbol": symbol, "start": first, "end": end}))
    return found


def offer_requests(engine: Engine, markets: list[P2PMarket]) -> list[Request]:
    """One request per market over all its stored offers."""
    found = []
    with engine.connect() as connection:
        for market in markets:
            where = {"e": market.exchange, "a": market.asset, "f": market.fiat}
            first, last = connection.execute(text(
                "SELECT min(captured_at), max(captured_at) FROM p2p_offers WHERE exchange = :e "
                "AND asset = :a AND fiat = :f"), where).one()
            if first is None:
                continue
            end = last + timedelta(seconds=1)
            found.append(Request(
                {"market": f"{market.exchange}:{market.asset}/{market.fiat}",
                 "start": _ms(first), "end": _ms(end)},
                {"exchange": market.exchange, "asset": market.asset, "fiat": market.fiat,
                 "start": first, "end": end}))
    return found


def cases(engine: Engine, dataset: views_data.Dataset, symbols: int, markets: int
          ) -> list[Case]:
    names = dataset.symbol_names()[:symbols]
    chosen = dataset.p2p_markets()[:markets]
    return [
        Case(f"candles 1m, {len(names)} symbols", "candles",
             candle_requests(engine, names, "1m"), PLAIN_CANDLES),
        Case(f"candles 4h, {len(names)} symbols", "candles",
             candle_requests(engine, names, "4h"), PLAIN_4H, export_sql=False),
        Case(f"p2p offers, {len(chosen)} markets", "p2p_offers",
             offer_requests(engine, chosen), PLAIN_OFFERS),
    ]


# ---- the run -----------------------------------------------------------------------------

def row(case: Case, way: str, measure: Measure, baseline: Measure | None, *,
        aims: bool = False) -> dict[str, Any]:
    ratio = measure.rate / baseline.rate if baseline and baseline.rate else None
    verdicts = []
    if aims and ratio is not None and way.startswith("HTTP csv"):
        verdicts.append(f"rate {'ok' if ratio >= AIM_RATIO else 'MISSED'} "
                        f"(aim >= {AIM_RATIO}x)")
    if aims and measure.rss_mb is not None:
        verdicts.append(f"memory {'ok' if measure.rss_mb < AIM_RSS_MB else 'MISSED'} "
                        f"(aim < {AIM_RSS_MB} MB)")
    if baseline and measure.rows != baseline.rows:
        verdicts.append(f"ROWS DIFFER from plain COPY ({baseline.rows:,})")
    verdicts += [f"ERROR {error}" for error in measure.errors[:2]]
    return {"case": case.label, "way": way, "requests": len(case.requests),
            "rows": f"{measure.rows:,}", "MB": f"{measure.bytes / 1e6:,.1f}",
            "seconds": f"{measure.seconds:.2f}", "rows/s": f"{measure.rate:,.0f}",
            "x raw": f"{ratio:.2f}" if ratio is not None else "-",
            "RSS +MB": f"{measure.rss_mb:.1f}" if measure.rss_mb is not None else "-",
            "aims": "; ".join(verdicts)}


def measure_all(args: argparse.Namespace, url: str, dataset: views_data.Dataset,
                data_dir: Path) -> list[dict[str, Any]]:
    dsn = libpq_url(url)
    engine = make_engine(url)
    chosen = cases(engine, dataset, args.symbols, args.markets)
    key = export_key(engine)
    rows: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="p2pdash-bench-export-"))
    env = bench_settings(url, data_dir, dataset)
    try:
        with served(env) as (base, worker):
            server = Server(base, key, worker, workdir)
            say(f"app at {base}, pid {worker}, "
                f"RSS {rss_kb(worker) / 1024:.0f} MB")
            for case in chosen:
                if not case.requests:
                    say(f"{case.label}: no data, skipped")
                    continue
                plain = [(case.plain_sql, request.params) for request in case.requests]
                raw_copy(dsn, plain)  # warm the page cache and shared buffers
                baseline = raw_copy(dsn, plain)
                rows.append(row(case, "raw COPY, plain", baseline, None))
                say(f"{case.label}: raw COPY {baseline.rows:,} rows, {baseline.rate:,.0f}/s")
                if case.export_sql:
                    same = raw_copy(dsn, export_statements(engine, case))
                    rows.append(row(case, "raw COPY, export's SELECT", same, baseline))
                for fmt in ("csv", "parquet"):
                    measure = over_http(server, case, fmt)
                    rows.append(row(case, f"HTTP {fmt}", measure, baseline, aims=True))
                    say(f"{case.label}: HTTP {fmt} {measure.rows:,} rows, "
                        f"{measure.rate:,.0f}/s, RSS +{measure.rss_mb:.1f} MB")
    finally:
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Generate or reuse the dataset, measure, print the table; stop the cluster if this
    run started it."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed (apt-get install curl)")
    dataset = SMALL if args.small else views_data.Dataset()
    data_dir = Path(args.data_dir or Path(tempfile.gettempdir()) / (
        "p2pdash-bench-export-small" if args.small else "p2pdash-bench-views")).absolute()
    postgres = cluster(data_dir)
    try:
        url = cluster_url(postgres)
        engine = make_engine(url)
        views_data.ensure(engine, dataset, say, GENERATORS)
        engine.dispose()
        print_rows("dataset", dataset_size(url), ["table", "rows"])
        rows = measure_all(args, url, dataset, data_dir)
    finally:
        postgres.stop()  # a cluster that was already running is left as it was
    print_rows(f"export throughput ({'small' if args.small else 'full'} dataset; x raw = "
               f"rows/s over the plain raw COPY's; RSS +MB = the web process's peak VmRSS "
               f"growth during the case)", rows,
               ["case", "way", "requests", "rows", "MB", "seconds", "rows/s", "x raw",
                "RSS +MB", "aims"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="a tiny dataset (a minute or two), to check the benchmark runs")
    parser.add_argument("--data-dir", default=None,
                        help="where the cluster and its dataset live between runs (default: "
                             "bench/views.py's, or a small one of its own with --small)")
    parser.add_argument("--symbols", type=int, default=10,
                        help="candle symbols exported, one request each (10: ~5.3M 1m rows)")
    parser.add_argument("--markets", type=int, default=3,
                        help="P2P markets exported, one request each (3: ~5.2M offers)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
