"""Ingestion benchmark: frame parsing, the writer beside raw COPY, and stream lag end to end.

    .venv/bin/python bench/ingest.py [--seconds 10] [--symbols 50] [--rows 100000]
        [--rate 1000 10000 max] [--sections parse write stream fake]

Starts its own PostgreSQL + TimescaleDB (db.embedded.EmbeddedPostgres in a temporary
directory, default settings, fsync on) and the fake exchange in a separate process
(`python -m ingest.fake --rate R`, or flat out), then prints up to four tables:

1. parse: frames/s turned into records by ingest.spot_records (one thread, no I/O);
2. write: rows/s of the writer path (COPY into a staging table + INSERT ... ON CONFLICT, in
   5000-row transactions) beside raw COPY into the same table, in the same run; also the
   merge as it was before this branch (a staging table created and dropped per batch);
3. stream: the real stream thread and writer against the fake sending 1k and 10k frames/s
   and as fast as it can: frames/s received and parsed, rows/s written, and the lag from the
   fake's event time (E) to the commit of the row, p50/p99 (klines and 24h tickers carry E;
   book tickers have no event time, so they are not in the lag figures). Rows written are
   fewer than records because the writer keeps only the newest record per key (a candle's
   last update, the last book ticker of a second) before writing. "fake sent" is what the
   fake counted out (GET /fake/stats) in the same window as "received", what p2pdash's
   connections counted in; "rows lost" are rows the writer dropped (its buffer full);
4. fake: the fake alone, flat out, to a minimal client that only reads and counts frames
   (no parsing): frames/s sent and read, and the fake process's CPU (100 % = one core), so
   that the stream table is known to measure p2pdash, not the fake.

--symbols goes up to 3,000 (more than one connection: 341 symbols each); --rate takes
frames/s in all, or "max" for flat out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import requests
import websocket
from sqlalchemy import Engine, text

from app.config import IngestSettings
from db.bulk import copy_merge
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from ingest.binance_ws import SpotStream, StreamOptions, connection_groups, stream_names
from ingest.fake.frames import MarketFrames, combined, kline_event
from ingest.fake.market import SimulatedMarket
from ingest.spot_records import Record, parse_frame
from ingest.writer import MERGES, Writer

BATCH = 5000
MAX_SYMBOLS = 3000
KINDS = ("bookTicker", "kline_1m", "ticker")


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
    kinds = ["kline_1m", "ticker", *["bookTicker"] * 18]
    return [frames.frame(symbols[n % len(symbols)], kinds[n % 20], now + n)
            for n in range(count)]


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


@dataclass(frozen=True)
class FakeProcess:
    """The fake exchange's settings and a reading of its counters."""

    urls: dict[str, str]

    def stats(self) -> dict:
        """Frames sent so far by kind, and the process's CPU seconds (GET /fake/stats)."""
        return requests.get(self.urls["BINANCE_REST_URL"] + "/fake/stats", timeout=10).json()


@dataclass(frozen=True)
class FakeReading:
    """What the fake sent and the CPU it used between two readings."""

    frames_per_second: float
    cpu_percent: float

    @classmethod
    def between(cls, before: dict, after: dict) -> FakeReading:
        seconds = after["at"] - before["at"]
        sent = sum(after["frames"].get(k, 0) - before["frames"].get(k, 0) for k in KINDS)
        return cls(sent / seconds, 100 * (after["cpu_seconds"] - before["cpu_seconds"])
                   / seconds)


@contextmanager
def fake_exchange(symbols: Sequence[str], rate: int | None) -> Iterator[FakeProcess]:
    """The fake in its own process, sending about `rate` frames/s (None: flat out, 18 book
    tickers to a kline and a 24h ticker)."""
    command = [sys.executable, "-m", "ingest.fake", "--symbols", ",".join(symbols)]
    command += (["--unthrottled", "--book-ticker-hz", "18", "--kline-hz", "1",
                 "--ticker-hz", "1"] if rate is None else ["--rate", str(rate)])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        yield FakeProcess(json.loads(process.stdout.readline()))
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
    with fake_exchange(symbols, rate) as fake:
        stream = SpotStream(fake.urls["BINANCE_WS_URL"], symbols, writer, engine,
                            StreamOptions(silence_seconds=30)).start()
        _wait_subscribed(stream, len(symbols) * 3)
        time.sleep(2)  # steady state after the subscriptions
        received = lambda: sum(c.stats.frames for c in stream.connections)  # noqa: E731
        before = (fake.stats(), received(), writer.stats.submitted, writer.stats.written,
                  writer.stats.dropped)
        meter.recording, started = True, time.monotonic()
        time.sleep(seconds)
        meter.recording = False
        after = (fake.stats(), received(), writer.stats.submitted, writer.stats.written,
                 writer.stats.dropped)
        elapsed = time.monotonic() - started
        stream.stop()
    writer.stop()
    sent = FakeReading.between(before[0], after[0])
    frames, records, rows, lost = (b - a for a, b in zip(before[1:], after[1:], strict=True))
    return {"fake sends": f"{rate:,} frames/s" if rate else "flat out",
            "fake sent frames/s": f"{sent.frames_per_second:,.0f}",
            "p2pdash received frames/s": f"{frames / elapsed:,.0f}",
            "records/s to writer": f"{records / elapsed:,.0f}",
            "rows/s written": f"{rows / elapsed:,.0f}", "rows lost": lost,
            "lag p50": f"{meter.percentile(0.5) * 1000:.0f} ms",
            "lag p99": f"{meter.percentile(0.99) * 1000:.0f} ms",
            "fake CPU": f"{sent.cpu_percent:.0f} %",
            "connections": len(stream.connections),
            "sessions": sum(c.stats.sessions for c in stream.connections)}


def _wait_subscribed(stream: SpotStream, streams: int, timeout: float = 60.0) -> None:
    """Wait until the exchange has acknowledged every stream on every connection."""
    deadline = time.monotonic() + timeout
    while sum(c.stats.subscribed for c in stream.connections) < streams:
        if time.monotonic() > deadline:
            raise TimeoutError(f"subscribed to fewer than {streams} streams in {timeout} s")
        time.sleep(0.1)


class FrameCounter(threading.Thread):
    """A minimal client: one connection that subscribes, then only reads and counts frames
    (by their headers: nothing is decoded or parsed)."""

    def __init__(self, ws_url: str, streams: Sequence[str]) -> None:
        super().__init__(name="frame-counter", daemon=True)
        self.ws_url, self.streams = ws_url, list(streams)
        self.frames = 0
        self.subscribed = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        ws = websocket.create_connection(self.ws_url + "/stream", timeout=30)
        buffer = bytearray()
        for first in range(0, len(self.streams), 200):  # under 5 messages/s, as p2pdash
            ws.send(orjson.dumps({"method": "SUBSCRIBE", "id": first,
                                  "params": self.streams[first:first + 200]}).decode())
            self._read(ws, buffer, time.monotonic() + 0.25)  # a full socket blocks the fake
        self.subscribed.set()
        self._read(ws, buffer, None)
        ws.sock.close()

    def _read(self, ws: websocket.WebSocket, buffer: bytearray, until: float | None) -> None:
        """Count the frames that arrive until `until` (until stopped, when None)."""
        ws.sock.settimeout(0.05 if until is not None else 30)
        position = 0
        while not self.stopping.is_set() and (until is None or time.monotonic() < until):
            try:
                data = ws.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                break
            buffer += data
            count, position = count_frames(buffer, position)
            self.frames += count
            del buffer[:position]
            position = 0


def count_frames(buffer: bytearray, position: int) -> tuple[int, int]:
    """Complete unmasked frames in buffer[position:], and where the next one starts."""
    count, size = 0, len(buffer)
    while position + 2 <= size:
        length, header = buffer[position + 1] & 0x7F, 2
        if length >= 126:
            header = 4 if length == 126 else 10
            if position + header > size:
                break
            length = int.from_bytes(buffer[position + 2:position + header], "big")
        if position + header + length > size:
            break
        position += header + length
        count += 1
    return count, position


def fake_benchmark(symbols: Sequence[str], seconds: float) -> dict:
    """The fake alone, flat out, to clients that only count frames."""
    with fake_exchange(symbols, None) as fake:
        counters = [FrameCounter(fake.urls["BINANCE_WS_URL"], stream_names(group))
                    for group in connection_groups(list(symbols))]
        for counter in counters:
            counter.start()
        for counter in counters:
            counter.subscribed.wait(60)
        time.sleep(2)
        before, read_before = fake.stats(), sum(c.frames for c in counters)
        time.sleep(seconds)
        after, read_after = fake.stats(), sum(c.frames for c in counters)
        for counter in counters:
            counter.stopping.set()
    sent, elapsed = FakeReading.between(before, after), after["at"] - before["at"]
    return {"symbols": len(symbols), "connections": len(counters), "fake sends": "flat out",
            "fake sent frames/s": f"{sent.frames_per_second:,.0f}",
            "client read frames/s": f"{(read_after - read_before) / elapsed:,.0f}",
            "fake CPU": f"{sent.cpu_percent:.0f} %"}


def print_table(title: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    print(f"\n{title}")
    print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))


def _symbol_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= MAX_SYMBOLS:
        raise argparse.ArgumentTypeError(f"--symbols is 1 to {MAX_SYMBOLS}; got {count}")
    return count


def _rate(text: str) -> int | None:
    return None if text == "max" else int(text)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=_symbol_count, default=50)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rate", type=_rate, nargs="+", default=[1_000, 10_000, None],
                        help='frames/s the fake sends in the stream table, or "max"')
    parser.add_argument("--sections", nargs="+", default=["parse", "write", "stream", "fake"],
                        choices=["parse", "write", "stream", "fake"])
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    symbols = [f"SYM{n:04d}USDT" for n in range(args.symbols)]
    if "parse" in args.sections:
        print_table("parse", parse_benchmark(symbols))
    if "write" in args.sections or "stream" in args.sections:
        with temporary_database() as url:
            engine = make_engine(url)
            if "write" in args.sections:
                print_table("write (rows/s, 5000-row transactions)",
                            write_benchmark(engine, args.rows, symbols))
            if "stream" in args.sections:
                print_table(f"stream ({len(symbols)} symbols, default writer settings)",
                            [stream_benchmark(engine, symbols, rate, args.seconds)
                             for rate in args.rate])
            engine.dispose()
    if "fake" in args.sections:
        print_table("fake alone (flat out, to clients that only count frames)",
                    [fake_benchmark(symbols, args.seconds)])


if __name__ == "__main__":
    main()
