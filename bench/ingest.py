"""Ingestion benchmark: frame parsing, the writer beside binary COPY, and p2pdash's stream
beside a minimal baseline end to end.

    .venv/bin/python bench/ingest.py [--seconds 20] [--symbols 1000] [--rate 10000 ...]
        [--pairs 1] [--rows 100000] [--rounds 5] [--sections parse write stream fake]

Starts its own PostgreSQL + TimescaleDB (db.embedded.EmbeddedPostgres in a temporary
directory, default settings, fsync on) and, per run of a stream side, a fresh fake exchange
in a process of its own (`python -m ingest.fake --rate R`, or flat out), then prints:

1. parse: frames/s turned into records by ingest.spot_records (one thread, no I/O);
2. write: bench/write_path.write_table, rows/s into candles and book_tickers in 5000-row
   transactions by binary COPY of rows with new keys (the baseline), text COPY, and the
   writer's own write step (append what is newer than its series, merge the rest), each
   with its ratio to binary COPY (median of --rounds; the issue asks >= 0.8);
3. stream, one table per --rate: p2pdash's ingestion (SpotStream + Writer, default INGEST_*
   settings) and the minimal baseline (bench/ingest_baseline.py: the same connections and
   SUBSCRIBEs, orjson, every frame a row by binary COPY committed every 0.1 s, no
   coalescing, no idempotency, primary keys replaced by plain indexes), each in a process
   of its own (bench/ingest_side.py, which defines every column: fake sent and received
   frames/s, lag p50/p99 over every kline and 24h ticker event and over the newest event
   per (table, symbol, second), CPU s per million frames of the process and of its
   PostgreSQL backends, peak RSS, rows lost), against a fake of its own and a fresh
   database of the same cluster, one side after the other (--pairs > 1: ABBA...), so
   neither competes with the other for the machine's cores. "/ baseline" is the CPU per
   frame over the baseline's of the same pair; "machine CPU" is the whole machine's use
   during the window (100 % = every core: other work on a shared machine shows there);
   the line after each table checks the issue's aims;
4. fake: the fake alone, flat out, to a minimal client that only reads and counts frames
   (no parsing): frames/s sent and read, and the fake process's CPU (100 % = one core), so
   that the stream table is known to measure the clients, not the fake.

--symbols goes up to 3,000 (more than one connection: 341 symbols each); --rate takes
frames/s in all, or "max" for flat out.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import requests
import websocket
from sqlalchemy import Engine, make_url, text

from bench.ingest_baseline import drop_unique_keys
from bench.ingest_side import symbol_names
from bench.write_path import write_table
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from ingest.binance_ws import connection_groups, stream_names
from ingest.fake.frames import MarketFrames
from ingest.fake.market import SimulatedMarket
from ingest.spot_records import BookTickerSampler, decode_frame, parse_event, parse_frame

BATCH = 5000  # rows a transaction in the write table (bench/write_path.py's)
WRITE_WAYS = ("binary COPY", "text COPY", "writer")
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
    """Frames/s of parse_frame on every frame, and of the stream's own way: book tickers
    held per symbol and second (10 frames a symbol a second), only each second's last
    converted."""
    frames = [frame.encode() for frame in sample_frames(60_000, symbols)]
    gc.collect()
    started = time.perf_counter()
    for frame in frames:
        parse_frame(frame, 1.7e9)
    every = len(frames) / (time.perf_counter() - started)
    per_second = 10 * len(symbols)
    sampler = BookTickerSampler(symbols)
    gc.collect()
    started = time.perf_counter()
    for n, frame in enumerate(frames):
        second = 1_700_000_000 + n // per_second
        if second != sampler.second:
            sampler.take()
            sampler.second = second
        if not sampler.hold(frame):
            parse_event(decode_frame(frame), second)
    sampler.take()
    held = len(frames) / (time.perf_counter() - started)
    return [{"what": "parse_frame on every frame (orjson + Decimal)",
             "frames/s": f"{every:,.0f}"},
            {"what": "the stream's way (book tickers held, a second's last converted)",
             "frames/s": f"{held:,.0f}"}]


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


SIDES = ("baseline", "p2pdash")
SIDE_RUNNER = Path(__file__).resolve().parent / "ingest_side.py"
AIMS = {  # (symbols, frames/s): the lag p99 (ms) to stay under
    (3000, 30_000): 1000.0, (1000, 10_000): 300.0}
CPU_AIM = 1.2  # p2pdash's CPU per frame at most this times the baseline's


@contextmanager
def side_database(admin: Engine, name: str, template: str) -> Iterator[str]:
    """A fresh database copied from the migrated template, dropped after."""
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run_side(side: str, database_url: str, fake: FakeProcess, symbols: int,
             seconds: float, *, profile: Path | None = None) -> dict:
    """One side in a process of its own (bench/ingest_side.py); its numbers. With
    `profile`, the side runs under py-spy, which writes its GIL-holding samples as
    collapsed stacks to `profile`/<side>-<symbols>.txt (the numbers then carry py-spy's
    sampling cost, on both sides alike)."""
    if side == "baseline":
        engine = make_engine(database_url)
        drop_unique_keys(engine)
        engine.dispose()
    command = [sys.executable, str(SIDE_RUNNER), side, "--database-url", database_url,
               "--rest-url", fake.urls["BINANCE_REST_URL"],
               "--ws-url", fake.urls["BINANCE_WS_URL"], "--symbols", str(symbols),
               "--seconds", str(seconds)]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        command = [str(py_spy), "record", "--gil", "--format", "raw", "--rate", "200",
                   "--output", str(profile / f"{side}-{symbols}.txt"), "--", *command]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True,
                          timeout=seconds + 300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def stream_case(admin: Engine, template: str, symbols: Sequence[str], rate: int | None,
                *, seconds: float, pairs: int, profile: Path | None = None) -> list[dict]:
    """Both sides, one after the other, each with a fresh fake and a fresh database; with
    more than one pair, in the order ABBA..., so a busy spell of the machine falls on both."""
    rows = []
    for pair in range(pairs):
        results = {}
        for side in SIDES if pair % 2 == 0 else SIDES[::-1]:
            with side_database(admin, f"ingest_{side}", template) as url, \
                    fake_exchange(symbols, rate) as fake:
                results[side] = run_side(side, url, fake, len(symbols), seconds,
                                         profile=profile)
        baseline_cpu = results["baseline"]["CPU s/M frames"]
        label = f" #{pair + 1}" if pairs > 1 else ""
        rows += [_stream_row(results[side], baseline_cpu, label) for side in SIDES]
    return rows


def _stream_row(result: dict, baseline_cpu: float, label: str) -> dict:
    ms = lambda v: "-" if v is None else f"{v:,.0f} ms"  # noqa: E731
    return {"side": result["side"] + label,
            "fake sent frames/s": f"{result['fake sent frames/s']:,.0f}",
            "received frames/s": f"{result['received frames/s']:,.0f}",
            "lag p50": ms(result["lag p50"]), "lag p99": ms(result["lag p99"]),
            "newest/key p50": ms(result["newest lag p50"]),
            "newest/key p99": ms(result["newest lag p99"]),
            "CPU s/M frames": f"{result['CPU s/M frames']:.1f}",
            "/ baseline": f"{result['CPU s/M frames'] / baseline_cpu:.2f}",
            "server CPU s/M": f"{result['server CPU s/M frames']:.1f}",
            "peak RSS MB": f"{result['peak RSS MB']:.0f}",
            "rows lost": f"{result['rows lost']:,} of {result['rows expected']:,}",
            "unread at end": f"{result['unread at the end']:,}",
            "sessions": f"{result['sessions']}/{result['connections']}",
            "fake CPU": f"{result['fake CPU %']:.0f} %",
            "machine CPU": f"{result['machine CPU %']:.0f} %"}


def aims_met(rows: list[dict], symbols: int, rate: int | None) -> str:
    """The issue's aims for this case, each met or missed."""
    number = lambda text: float(text.split()[0].replace(",", ""))  # noqa: E731
    ours = [row for row in rows if row["side"].startswith("p2pdash")]
    ratio = max(float(row["/ baseline"]) for row in ours)
    verdicts = [f"CPU {ratio:.2f}x baseline (aim <= {CPU_AIM}x): "
                f"{'met' if ratio <= CPU_AIM else 'MISSED'}"]
    lost = max(int(number(row["rows lost"])) for row in ours)
    verdicts.append(f"rows lost {lost}: {'met' if lost == 0 else 'MISSED'}")
    aim = AIMS.get((symbols, rate))
    if aim is not None:
        p99 = max(number(row["lag p99"]) if row["lag p99"] != "-" else float("inf")
                  for row in ours)
        verdicts.append(f"lag p99 {p99:,.0f} ms (aim < {aim:,.0f} ms): "
                        f"{'met' if p99 < aim else 'MISSED'}")
    return "aims (p2pdash, worst of its rows): " + "; ".join(verdicts)


def stream_benchmark(url: str, symbols: Sequence[str], rates: Sequence[int | None],
                     seconds: float, pairs: int = 1, *, profile: Path | None = None
                     ) -> None:
    """Print one table per rate: p2pdash and the baseline against the same fake."""
    template = make_url(url).database
    admin = make_engine(make_url(url).set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT")  # a template may have no other connections
    for rate in rates:
        rows = stream_case(admin, template, symbols, rate, seconds=seconds, pairs=pairs,
                           profile=profile)
        sends = f"{rate:,} frames/s" if rate else "flat out"
        print_table(f"stream: {len(symbols)} symbols, the fake sends {sends}, "
                    f"{seconds:g} s window", rows)
        print(aims_met(rows, len(symbols), rate), flush=True)
    admin.dispose()


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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the write table")
    parser.add_argument("--pairs", type=int, default=1,
                        help="baseline + p2pdash runs per stream case (ABBA order)")
    parser.add_argument("--rate", type=_rate, nargs="+", default=[1_000, 10_000, None],
                        help='frames/s the fake sends in the stream table, or "max"')
    parser.add_argument("--sections", nargs="+", default=["parse", "write", "stream", "fake"],
                        choices=["parse", "write", "stream", "fake"])
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run each stream side under py-spy (GIL samples, collapsed "
                             "stacks) into DIR; summarise with bench/profile_summary.py")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    symbols = symbol_names(args.symbols)
    if "parse" in args.sections:
        print_table("parse", parse_benchmark(symbols))
    if "write" in args.sections or "stream" in args.sections:
        with temporary_database() as url:
            if "write" in args.sections:
                print_table(f"write (rows/s, {BATCH}-row transactions, {len(symbols)} book "
                            f"ticker symbols, median of {args.rounds} rounds)",
                            write_table(url, args.rows, len(symbols), args.rounds,
                                        WRITE_WAYS))
            if "stream" in args.sections:
                stream_benchmark(url, symbols, args.rate, args.seconds, args.pairs,
                                 profile=args.profile)
    if "fake" in args.sections:
        print_table("fake alone (flat out, to clients that only count frames)",
                    [fake_benchmark(symbols, args.seconds)])

if __name__ == "__main__":
    main()
