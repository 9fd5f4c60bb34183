"""Ingestion benchmark: frame parsing, the writer beside raw COPY, and stream lag end to end.

    .venv/bin/python bench/ingest.py [--seconds 10] [--symbols 50] [--rows 100000]

Starts its own PostgreSQL + TimescaleDB (db.embedded.EmbeddedPostgres in a temporary
directory, default settings, fsync on) and the fake exchange in a separate process, then
prints three tables:

1. parse: frames/s turned into records by ingest.spot_records (one thread, no I/O);
2. write: rows/s of the writer path (COPY into a staging table + INSERT ... ON CONFLICT, in
   5000-row transactions) beside raw COPY into the same table, in the same run; also the
   merge as it was before this branch (a staging table created and dropped per batch);
3. stream: the real stream thread and writer against the fake sending 1k and 10k frames/s
   and as fast as it can: frames/s received and parsed, rows/s written, and the lag from the
   fake's event time (E) to the commit of the row, p50/p99 (klines and 24h tickers carry E;
   book tickers have no event time, so they are not in the lag figures). Rows written are
   fewer than records because the writer keeps only the newest record per key (a candle's
   last update, the last book ticker of a second) before writing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, text

from app.config import IngestSettings
from db.bulk import copy_merge
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from ingest.binance_ws import SpotStream, StreamOptions
from ingest.fake.frames import MarketFrames, combined, kline_event
from ingest.fake.market import SimulatedMarket
from ingest.spot_records import Record, parse_frame
from ingest.writer import MERGES, Writer

BATCH = 5000


@contextmanager
def temporary_database() -> Iterator[str]:
    """A migrated TimescaleDB database in a throw-away cluster."""
    root = Path(tempfile.mkdtemp(prefix="p2pdash-bench-"))
    root.chmod(0o755)
    cluster = EmbeddedPostgres(root, settings={"timescaledb.max_background_workers": "0"})
    try:
        url = cluster.ensure_running()
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        cluster.stop(force=True)
        shutil.rmtree(root, ignore_errors=True)


def sample_frames(count: int, symbols: Sequence[str]) -> list[str]:
    """Simulated frames in Binance's mix: 18 book tickers to a kline and a 24h ticker."""
    frames = MarketFrames(SimulatedMarket())
    now = int(time.time() * 1000)
    result = []
    for n in range(count):
        symbol, kind, at = symbols[n % len(symbols)], n % 20, now + n
        if kind == 0:
            candle = frames.market.live_candle(symbol, at)
            data = kline_event(symbol, candle, False, at)
        elif kind == 1:
            data = frames.ticker(symbol, at)
        else:
            data = frames.book_ticker(symbol, at)
        result.append(combined(f"{symbol.lower()}@x", data))
    return result


def parse_benchmark(symbols: Sequence[str]) -> list[dict]:
    frames = sample_frames(60_000, symbols)
    started = time.perf_counter()
    for frame in frames:
        parse_frame(frame, 1.7e9)
    rate = len(frames) / (time.perf_counter() - started)
    return [{"what": "parse_frame (orjson + Decimal)", "frames/s": f"{rate:,.0f}"}]


def distinct_records(table: str, count: int, symbols: Sequence[str]) -> list[Record]:
    """Rows with distinct keys, built by the same parser as the stream's."""
    frames = MarketFrames(SimulatedMarket())
    start = 1_600_000_000_000
    records = []
    for n in range(count):
        symbol = symbols[n % len(symbols)]
        minute = start // 60_000 + n // len(symbols)
        if table == "candles":
            candle = frames.market.candle(symbol, minute)
            frame = combined("x@kline_1m", kline_event(symbol, candle, True, minute * 60_000))
            records.append(parse_frame(frame, 0).records[0])
        else:
            data = frames.book_ticker(symbol, minute * 60_000)
            records.append(parse_frame(combined("x@bookTicker", data), minute * 60.0).records[0])
    return records


def truncate(engine: Engine, table: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {table}"))


def raw_copy(engine: Engine, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def merge_as_before(engine: Engine, table: str, rows: list[dict]) -> None:
    """The merge before this branch: a staging table per batch, always de-duplicated."""
    spec, columns = MERGES[table], list(rows[0])
    cols, keys = ", ".join(columns), ", ".join(spec.key)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.update)
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute(f"CREATE TEMP TABLE stage_old (LIKE {table} INCLUDING DEFAULTS, "
                       "_seq bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP")
        with cursor.copy(f"COPY stage_old ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        cursor.execute(f"INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} "
                       f"FROM stage_old ORDER BY {keys}, _seq DESC "
                       f"ON CONFLICT ({keys}) DO UPDATE SET {sets}")


def timed_batches(engine: Engine, table: str, records: list[Record],
                  write: Callable[[list[Record]], None]) -> float:
    """Rows/s of `write` over the records in BATCH-row pieces, on an emptied table."""
    truncate(engine, table)
    started = time.perf_counter()
    for first in range(0, len(records), BATCH):
        write(records[first:first + BATCH])
    return len(records) / (time.perf_counter() - started)


def write_benchmark(engine: Engine, rows: int, symbols: Sequence[str]) -> list[dict]:
    writer = Writer(engine, flush_seconds=0.01, batch_rows=BATCH, max_pending_rows=10 * BATCH)
    writer.start()

    def through_writer(batch: list[Record]) -> None:
        writer.submit(batch)
        writer.wait_idle(120)

    results = []
    for table in ("candles", "book_tickers"):
        records = distinct_records(table, rows, symbols)
        spec = MERGES[table]
        ways = {
            "raw COPY": lambda b, t=table: raw_copy(engine, t, [r.row for r in b]),
            "writer": through_writer,
            "copy_merge before": lambda b, t=table: merge_as_before(engine, t,
                                                                    [r.row for r in b]),
            "copy_merge now": lambda b, s=spec: _merge_now(engine, s, b),
        }
        rates = dict.fromkeys(ways, 0.0)
        for _round in range(3):  # interleaved, best of three: the machine may be shared
            for name, way in ways.items():
                rates[name] = max(rates[name], timed_batches(engine, table, records, way))
        results.append({"table": table, **{name: f"{rate:,.0f}" for name, rate in
                                           rates.items()},
                        "writer / raw": f"{rates['writer'] / rates['raw COPY']:.2f}"})
    writer.stop()
    return results


def _merge_now(engine: Engine, spec, batch: list[Record]) -> None:
    with engine.begin() as connection:
        copy_merge(connection, spec.table, [r.row for r in batch], key=spec.key,
                   update=spec.update, only_if=spec.only_if, unique_keys=True)


@contextmanager
def fake_exchange(symbols: Sequence[str], rate: int | None) -> Iterator[dict]:
    """The fake in its own process, sending about `rate` frames/s (None: flat out)."""
    per_symbol = (rate or 0) / len(symbols)
    command = [sys.executable, "-m", "ingest.fake", "--symbols", ",".join(symbols)]
    command += (["--unthrottled"] if rate is None else
                ["--book-ticker-hz", f"{per_symbol * 0.9:g}", "--kline-hz",
                 f"{per_symbol * 0.05:g}", "--ticker-hz", f"{per_symbol * 0.05:g}"])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(10)


class LagMeter:
    """Commit time minus event time for every written row that carries one."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False

    def observe(self, records: Sequence[Record], committed_at: float) -> None:
        if self.recording:
            self.lags += [committed_at - r.event_ms / 1000 for r in records if r.event_ms]

    def percentile(self, share: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def stream_benchmark(engine: Engine, symbols: Sequence[str], rate: int | None,
                     seconds: float) -> dict:
    for table in ("candles", "book_tickers", "tickers_24h"):
        truncate(engine, table)
    tuning = IngestSettings()
    meter = LagMeter()
    writer = Writer(engine, flush_seconds=tuning.flush_seconds, batch_rows=tuning.batch_rows,
                    max_pending_rows=tuning.max_pending_rows, observe=meter.observe).start()
    with fake_exchange(symbols, rate) as urls:
        stream = SpotStream(urls["BINANCE_WS_URL"], symbols, writer, engine,
                            StreamOptions(silence_seconds=30)).start()
        time.sleep(3)  # connect, the fake's first 24h windows, steady state
        connection = stream.connections[0]
        before = (connection.stats.frames, writer.stats.submitted, writer.stats.written)
        meter.recording = True
        time.sleep(seconds)
        meter.recording = False
        after = (connection.stats.frames, writer.stats.submitted, writer.stats.written)
        frames, records, rows = (b - a for a, b in zip(before, after, strict=True))
        stream.stop()
    writer.stop()
    return {"fake sends": f"{rate:,} frames/s" if rate else "flat out",
            "frames/s parsed": f"{frames / seconds:,.0f}",
            "records/s to writer": f"{records / seconds:,.0f}",
            "rows/s written": f"{rows / seconds:,.0f}",
            "lag p50": f"{meter.percentile(0.5) * 1000:.0f} ms",
            "lag p99": f"{meter.percentile(0.99) * 1000:.0f} ms",
            "dropped": writer.stats.dropped, "sessions": connection.stats.sessions}


def print_table(title: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    print(f"\n{title}")
    print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    symbols = [f"SYM{n:03d}USDT" for n in range(args.symbols)]
    print_table("parse", parse_benchmark(symbols))
    with temporary_database() as url:
        engine = make_engine(url)
        print_table("write (rows/s, 5000-row transactions)",
                    write_benchmark(engine, args.rows, symbols))
        print_table("stream (one connection, default writer settings)",
                    [stream_benchmark(engine, symbols, rate, args.seconds)
                     for rate in (1_000, 10_000, None)])
        engine.dispose()


if __name__ == "__main__":
    main()
