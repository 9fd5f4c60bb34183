"""Retention benchmark: drop a day of book tickers while the stream keeps writing.

    .venv/bin/python bench/retention.py [--symbols 1000] [--every 10] [--window 10] [--plain]

On its own cluster in a temporary directory (PostgreSQL + TimescaleDB, fsync on; `--plain`:
plain PostgreSQL, where retention is the batched DELETE), generates one UTC day of book
tickers for `--symbols` symbols with SQL generate_series, wholly older than the
book_tickers retention cutoff (RETENTION_DEFAULTS: 14 days), one row per symbol every
`--every` seconds. A real day is `--every 1` (86.4 M rows at 1,000 symbols); the default
of 10 (8.64 M) keeps generation to minutes on a small machine. drop_chunks costs about the
same whatever the chunk holds; the DELETE path scales with the rows. The table says which
spacing was used.

Then it runs the real SpotStream and Writer against the fake exchange (its own process,
Binance's cadence) for all the symbols, and measures the lag from the fake's event time to
the commit of the row (klines and 24h tickers carry one; book tickers do not), p50/p99,
in three windows: a quiet one before, the one while ingest.retention.run_retention (what
the leader's schedule calls: db.retention.apply) drops the day in a thread, plus a second
for the batches held back to commit, and a quiet one after. Prints rows and chunks
dropped, the drop's seconds, the lag per window (with the minute turns in it: 1,000
closing klines at once are a burst of their own) and the rows lost (written by the stream
but not in the tables, or dropped by the writer's buffer: 0 expected). Aim: p99 < 1 s in
every window. At the defaults a run takes about 3-6 minutes, mostly generating; `--plain`
as long again plus the DELETE (about 40 s for 8.64 M rows on 2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, text

from app.config import RETENTION_DEFAULTS, IngestSettings
from bench.ingest import print_table
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from db.retention import Dropped
from ingest.binance_ws import SpotStream, StreamOptions
from ingest.retention import run_retention
from ingest.spot_records import Record
from ingest.writer import Writer

KEEP_DAYS = RETENTION_DEFAULTS["book_tickers"]
WARMUP_SECONDS = 15.0  # connect, subscribe 3,000 streams (800 a second), steady state
SETTLE_SECONDS = 1.0  # after the drop, for the batches it held back to commit

GENERATE_HOUR = """
INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty)
SELECT 'binance', 'SYM' || lpad(n::text, 4, '0') || 'USDT', t,
       100 + n + (extract(epoch FROM t)::bigint % 1000) / 1000.0, 1 + n % 7,
       100.01 + n + (extract(epoch FROM t)::bigint % 1000) / 1000.0, 2 + n % 5
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz),
                     make_interval(secs => :every)) AS t
CROSS JOIN generate_series(0, :symbols - 1) AS n
"""
# Where each table of the stream keeps its time: rows at or after the old day's end are live.
LIVE_TIME = {"book_tickers": "ts", "tickers_24h": "ts", "candles": "open_time"}


@contextmanager
def scratch_database(plain: bool) -> Iterator[Engine]:
    """A migrated database in a throw-away cluster (TimescaleDB unless `plain`)."""
    root = Path(tempfile.mkdtemp(prefix="p2pdash-retention-"))
    root.chmod(0o755)
    settings = {"max_wal_size": "'4GB'", "shared_buffers": "'1GB'"}
    if not plain:  # the leader's job runs retention, not TimescaleDB's own scheduler
        settings["timescaledb.max_background_workers"] = "0"
    cluster = EmbeddedPostgres(root, timescaledb=not plain, settings=settings)
    try:
        engine = make_engine(cluster.ensure_running())
        upgrade(engine)
        yield engine
        engine.dispose()
    except Exception:
        print(f"server log ends:\n{_tail(cluster.log_file)}", file=sys.stderr)
        raise
    finally:
        cluster.stop(force=True)
        shutil.rmtree(root, ignore_errors=True)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) \
        if path.exists() else "(no server log)"


def old_day(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day (one book_tickers chunk) that ends at or before the retention cutoff."""
    cutoff = now - timedelta(days=KEEP_DAYS)
    end = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def generate_day(engine: Engine, symbols: int, start: datetime, every: int) -> int:
    """Fill the day from `start` an hour per transaction; analyse it, as autovacuum would
    have long before retention reaches it. Return the rows written."""
    rows = 0
    for hour in range(24):
        first = start + timedelta(hours=hour)
        with engine.begin() as connection:
            rows += connection.execute(text(GENERATE_HOUR), {
                "start": first, "stop": first + timedelta(hours=1, seconds=-every),
                "every": every, "symbols": symbols}).rowcount
        if hour % 6 == 5:
            print(f"  generated {hour + 1:2d}/24 hours, {rows:,} rows", file=sys.stderr,
                  flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE book_tickers"))
    return rows


class CommitLags:
    """(commit time, commit time minus event time) of every written row carrying an event."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    def observe(self, records: Sequence[Record], committed_at: float) -> None:
        self.samples += [(committed_at, committed_at - r.event_ms / 1000)
                         for r in records if r.event_ms]

    def window(self, name: str, start: tuple[float, int], end: tuple[float, int]) -> dict:
        """The lag figures of the rows committed between two marks (time, frames so far)."""
        (began, frames_then), (ended, frames_now) = start, end
        lags = sorted(lag for at, lag in self.samples if began <= at < ended)
        return {"window": name, "seconds": f"{ended - began:.1f}",
                "frames/s in": f"{(frames_now - frames_then) / (ended - began):,.0f}",
                "rows timed": f"{len(lags):,}",
                "lag p50": _ms(_percentile(lags, 0.5)), "lag p99": _ms(_percentile(lags, 0.99)),
                "lag max": _ms(lags[-1] if lags else 0.0),
                "p99 < 1 s": "yes" if _percentile(lags, 0.99) < 1 else "NO",
                # 1,000 closing klines and new candles at once: a burst the writer feels
                "minute turns": int(ended // 60 - began // 60)}


def _percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def rows_between(engine: Engine, table: str, column: str, start: datetime,
                 end: datetime | None = None) -> int:
    """Rows of `table` whose `column` is in [start, end) (no end: from start on)."""
    condition = f"{column} >= :start" + (f" AND {column} < :end" if end else "")
    with engine.connect() as connection:
        return connection.scalar(text(f"SELECT count(*) FROM {table} WHERE {condition}"),
                                 {"start": start, "end": end})


@dataclass(frozen=True)
class DropRun:
    """What one drop under ingestion gave: lag per window, what went, how long, rows lost."""

    windows: list[dict]
    dropped: Dropped
    seconds: float
    lost: int


def drop_while_ingesting(engine: Engine, symbols: Sequence[str], window: float) -> DropRun:
    """Stream into the database and drop the old day midway."""
    lags = CommitLags()
    writer = Writer.from_settings(engine, IngestSettings(), observe=lags.observe).start()
    with binance_cadence_fake(symbols) as urls:
        stream = SpotStream(urls["BINANCE_WS_URL"], symbols, writer, engine,
                            StreamOptions(silence_seconds=30)).start()
        time.sleep(WARMUP_SECONDS)
        marks = [_mark(stream)]
        time.sleep(window)
        with ThreadPoolExecutor(1, thread_name_prefix="retention") as pool:
            marks.append(_mark(stream))
            job = pool.submit(run_retention, engine, {"book_tickers": KEEP_DAYS})
            while not job.done():
                time.sleep(0.01)
            drop_seconds = time.time() - marks[-1][0]
            dropped = job.result()[0]
        time.sleep(SETTLE_SECONDS)
        marks.append(_mark(stream))
        time.sleep(window)
        marks.append(_mark(stream))
        stream.stop()
    writer.wait_idle(60)
    writer.stop()
    windows = [lags.window(name, start, end)
               for name, start, end in zip(("before", "during drop (+1 s)", "after"),
                                           marks, marks[1:], strict=False)]
    live = sum(rows_between(engine, table, column, dropped.cutoff)
               for table, column in LIVE_TIME.items())
    lost = writer.stats.inserted - live + writer.stats.dropped + writer.stats.rejected
    return DropRun(windows, dropped, drop_seconds, lost)


def _mark(stream: SpotStream) -> tuple[float, int]:
    """Now, and the frames the stream has received so far."""
    return time.time(), sum(connection.stats.frames for connection in stream.connections)


@contextmanager
def binance_cadence_fake(symbols: Sequence[str]) -> Iterator[dict]:
    """The fake exchange in its own process at its default cadence, Binance's (4 book
    tickers, 0.5 klines, 1 ticker a symbol a second): bench/ingest.py's fake_exchange
    sets a total rate with far fewer klines and tickers, the rows that carry event times."""
    command = [sys.executable, "-m", "ingest.fake", "--symbols", ",".join(symbols)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(10)


def summary(args: argparse.Namespace, generated: int, generate_seconds: float,
            run: DropRun, left: int) -> list[dict]:
    """The drop's figures as one table row."""
    return [{"path": "plain PG, batched DELETE" if args.plain else "TimescaleDB drop_chunks",
             "symbols": f"{args.symbols:,}", "row every": f"{args.every} s",
             "rows in the day": f"{generated:,}", "generated in": f"{generate_seconds:,.0f} s",
             "chunks dropped": len(run.dropped.chunks), "rows dropped": f"{run.dropped.rows:,}",
             "drop seconds": f"{run.seconds:.2f}", "rows left in the day": f"{left:,}",
             "rows lost": f"{run.lost:,}"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10,
                        help="seconds between a symbol's rows in the old day (1: a real day)")
    parser.add_argument("--window", type=float, default=10.0,
                        help="seconds of the quiet windows before and after the drop")
    parser.add_argument("--plain", action="store_true",
                        help="plain PostgreSQL: retention by batched DELETE")
    args = parser.parse_args()
    symbols = [f"SYM{n:04d}USDT" for n in range(args.symbols)]
    with scratch_database(args.plain) as engine:
        start, end = old_day(datetime.now(UTC))
        began = time.perf_counter()
        generated = generate_day(engine, args.symbols, start, args.every)
        generate_seconds = time.perf_counter() - began
        run = drop_while_ingesting(engine, symbols, args.window)
        left = rows_between(engine, "book_tickers", "ts", start, end)
    print_table(f"retention of one day of book tickers ({start:%Y-%m-%d}, cutoff "
                f"{run.dropped.cutoff:%Y-%m-%d %H:%M} UTC)",
                summary(args, generated, generate_seconds, run, left))
    print_table(f"ingest lag, event time to commit ({args.symbols:,} symbols at Binance's "
                f"cadence, default writer settings)", run.windows)


if __name__ == "__main__":
    main()
