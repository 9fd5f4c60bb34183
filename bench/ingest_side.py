"""One side of bench/ingest.py's stream table, in a process of its own: p2pdash or the baseline.

    .venv/bin/python bench/ingest_side.py {p2pdash,baseline} --database-url URL
        --rest-url URL --ws-url URL --symbols 1000 [--seconds 20]

Runs against a fake exchange already up (bench/ingest.py starts a fresh one per side) and
a fresh database, so the CPU and memory it reports are its own. It connects, SUBSCRIBEs
every stream, waits 2 s for the steady state, then measures for `--seconds`; afterwards it
stops reading, writes what it holds and prints one JSON line:

- fake sent frames/s, fake CPU: GET /fake/stats at the window's two ends (the fake runs
  only this side's connections); received frames/s: data frames this process counted in;
- lag, every event: for each kline and 24h ticker event with its event time E in the
  window, the commit that first stored it or a newer version of its row, minus E (an
  event p2pdash's writer replaced in its buffer by a newer one for the same key is stored
  when that one commits); book tickers carry no event time and are not in the lag;
- lag, newest per key: the same over only the last event of each (table, symbol, second
  of E): the value a reader sees once that second is over;
- CPU s per million frames: this process's user + system CPU (getrusage, all threads) in
  the window per million frames received; server CPU: the same for the PostgreSQL
  backends connected to this side's database (psutil);
- peak RSS: this process's maximum resident set (ru_maxrss), start-up included;
- rows lost: rows the frames received should have stored that are not in the database
  once the side has written what it held. p2pdash should store one row per distinct key
  of its records (the last book ticker of a receive second, a 24h ticker per event second,
  a candle per minute), the baseline one row per data frame; lost = that count minus
  count(*) of candles + book_tickers + tickers_24h. Frames cannot be lost on the way over
  TCP without a reconnect ("sessions" beyond one per connection): a side that falls behind
  slows the fake down instead (fake sent below the rate asked for) and shows as lag;
- unread at the end: frames the fake had sent on this side's connections by the window's
  end that the side had not yet read (cumulative counts of both, from the first
  connection: the fake serves this side alone): its backlog in the sockets, never parsed.
  The fake is asked first, so frames sent during that request make it up to a few hundred
  too low (even below zero) when the side keeps up.
"""

from __future__ import annotations

import argparse
import bisect
import json
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import requests
from sqlalchemy import Engine, text

from app.config import IngestSettings
from db.engine import make_engine
from ingest.binance_ws import KINDS, SpotStream, StreamOptions
from ingest.runs import Run
from ingest.spot_records import Record
from ingest.writer import Writer

STEADY_SECONDS = 2.0
# candles_all: the closed candles and each series' open one (in candles_live, migration 0011).
TABLES = ("candles_all", "book_tickers", "tickers_24h")
# (table, symbol, event ms, commit epoch s or None if never stored)
StoredEvent = tuple[str, str, int, float | None]


def symbol_names(count: int) -> list[str]:
    """The benchmark's symbols (the fake simulates any name)."""
    return [f"SYM{n:04d}USDT" for n in range(count)]


class Side(Protocol):
    """What the harness needs of an ingestion under test."""

    def start(self) -> None: ...
    def subscribed(self) -> int: ...
    def received(self) -> int: ...
    def sessions(self) -> tuple[int, int]: ...  # (connections, sessions opened)
    def finish(self) -> None: ...
    def expected_rows(self) -> int: ...
    def stored_events(self) -> Iterable[StoredEvent]: ...


# -- p2pdash -----------------------------------------------------------------------------

class WriteMeter:
    """Every record handed to the writer and every commit of an event, for the lag."""

    def __init__(self) -> None:
        self.keys: set[tuple] = set()
        self.events: list[tuple[tuple, int]] = []
        self.commits: defaultdict[tuple, list[tuple[int, float]]] = defaultdict(list)

    def submitted(self, records: Sequence[Record]) -> None:
        self.keys.update([record.key for record in records])
        self.events += [(record.key, record.event_ms) for record in records if record.event_ms]

    def committed(self, records: Sequence[Record], committed_at: float) -> None:
        commits = self.commits
        for record in records:
            if record.event_ms:
                commits[record.key].append((record.event_ms, committed_at))

    def stored_events(self) -> Iterable[StoredEvent]:
        """Each event with the first commit of its row at its version or a newer one."""
        times = {key: [event_ms for event_ms, _at in commits]
                 for key, commits in self.commits.items()}
        for key, event_ms in self.events:
            commits = self.commits.get(key, [])
            at = bisect.bisect_left(times.get(key, []), event_ms)
            yield key[0], key[1], event_ms, commits[at][1] if at < len(commits) else None


class MeteredWriter(Writer):
    """p2pdash's writer, telling a WriteMeter what it is handed."""

    meter: WriteMeter

    def submit(self, records: Iterable[Record], run: Run | None = None) -> None:
        records = list(records)
        self.meter.submitted(records)
        super().submit(records, run)


class P2pdashSide:
    """SpotStream + Writer with the default INGEST_* settings, as the app runs them."""

    def __init__(self, engine: Engine, ws_url: str, symbols: Sequence[str]) -> None:
        self.meter = WriteMeter()
        self.writer = MeteredWriter.from_settings(engine, IngestSettings(),
                                                  observe=self.meter.committed)
        self.writer.meter = self.meter
        self.stream = SpotStream(ws_url, symbols, self.writer, engine,
                                 StreamOptions(silence_seconds=30))

    def start(self) -> None:
        self.writer.start()
        self.stream.start()

    def subscribed(self) -> int:
        return sum(c.stats.subscribed for c in self.stream.connections)

    def received(self) -> int:
        return sum(c.stats.frames for c in self.stream.connections)

    def sessions(self) -> tuple[int, int]:
        return (len(self.stream.connections),
                sum(c.stats.sessions for c in self.stream.connections))

    def finish(self) -> None:
        self.stream.stop()
        self.writer.wait_idle(120)
        self.writer.stop()

    def expected_rows(self) -> int:
        return len(self.meter.keys)

    def stored_events(self) -> Iterable[StoredEvent]:
        return self.meter.stored_events()


# -- the measurement -----------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """Counters at one end of the window."""

    at: float
    fake: dict
    received: int
    cpu: float
    server_cpu: dict[int, float]

    @classmethod
    def take(cls, side: Side, rest_url: str, engine: Engine) -> Reading:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(time.time(), requests.get(rest_url + "/fake/stats", timeout=10).json(),
                   side.received(), usage.ru_utime + usage.ru_stime, backend_cpu(engine))


def backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database."""
    with engine.connect() as connection:
        pids = connection.execute(text("SELECT pid FROM pg_stat_activity "
                                       "WHERE datname = current_database()")).scalars()
        seconds = {}
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            seconds[pid] = times.user + times.system
    return seconds


def percentile(values: list[float], share: float) -> float | None:
    """The `share` quantile of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def lags(events: Iterable[StoredEvent], start: float, end: float) -> dict:
    """Lag p50/p99 (ms) of every event with E in [start, end), and of the newest per key."""
    every, newest, unstored = [], {}, 0
    low, high = start * 1000, end * 1000
    for table, symbol, event_ms, stored_at in events:
        if not low <= event_ms < high:
            continue
        if stored_at is None:
            unstored += 1
            continue
        every.append(stored_at - event_ms / 1000)
        group = (table, symbol, event_ms // 1000)
        if group not in newest or event_ms >= newest[group][0]:
            newest[group] = (event_ms, stored_at)
    last = [stored_at - event_ms / 1000 for event_ms, stored_at in newest.values()]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {"events": len(every), "events never stored": unstored,
            "lag p50": ms(percentile(every, 0.5)), "lag p99": ms(percentile(every, 0.99)),
            "newest lag p50": ms(percentile(last, 0.5)),
            "newest lag p99": ms(percentile(last, 0.99))}


def stored_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                   for table in TABLES)


def wait_subscribed(side: Side, streams: int, timeout: float = 90.0) -> None:
    """Wait until the exchange has acknowledged every stream on every connection."""
    deadline = time.monotonic() + timeout
    while side.subscribed() < streams:
        if time.monotonic() > deadline:
            raise TimeoutError(f"subscribed to {side.subscribed()} of {streams} streams "
                               f"in {timeout} s")
        time.sleep(0.1)


def measure(side: Side, engine: Engine, rest_url: str, symbols: int, seconds: float) -> dict:
    """Run the side through the window and return its numbers."""
    side.start()
    wait_subscribed(side, symbols * len(KINDS))
    time.sleep(STEADY_SECONDS)
    psutil.cpu_percent()
    before = Reading.take(side, rest_url, engine)
    time.sleep(seconds)
    after = Reading.take(side, rest_url, engine)
    machine = psutil.cpu_percent()
    side.finish()
    elapsed, frames = after.at - before.at, after.received - before.received
    fake_seconds = after.fake["at"] - before.fake["at"]
    sent = sum(after.fake["frames"].get(k, 0) - before.fake["frames"].get(k, 0)
               for k in KINDS)
    server = sum(cpu - before.server_cpu.get(pid, 0.0) for pid, cpu in after.server_cpu.items())
    expected, stored = side.expected_rows(), stored_rows(engine)
    connections, sessions = side.sessions()
    unread = sum(after.fake["frames"].get(k, 0) for k in KINDS) - after.received
    per_million = 1e6 / max(1, frames)
    return {"fake sent frames/s": sent / fake_seconds, "received frames/s": frames / elapsed,
            **lags(side.stored_events(), before.at, after.at),
            "CPU s/M frames": (after.cpu - before.cpu) * per_million,
            "server CPU s/M frames": server * per_million,
            "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows expected": expected, "rows stored": stored, "rows lost": expected - stored,
            "unread at the end": unread,
            "fake CPU %": 100 * (after.fake["cpu_seconds"] - before.fake["cpu_seconds"])
            / fake_seconds,
            "machine CPU %": machine, "connections": connections, "sessions": sessions}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["p2pdash", "baseline"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--symbols", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    engine = make_engine(args.database_url)
    symbols = symbol_names(args.symbols)
    if args.side == "p2pdash":
        side: Side = P2pdashSide(engine, args.ws_url, symbols)
    else:
        from bench.ingest_baseline import BaselineSide

        side = BaselineSide(args.database_url, args.ws_url, symbols)
    result = measure(side, engine, args.rest_url, len(symbols), args.seconds)
    engine.dispose()
    print(json.dumps({"side": args.side, **result}), flush=True)


if __name__ == "__main__":
    main()
