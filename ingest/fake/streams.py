"""The fake Binance combined stream: one session per WebSocket connection, and its senders.

A session listens to the streams of its URL (`/stream?streams=a/b`) and to those it
subscribes by message (bare `/stream`, then SUBSCRIBE: see ingest/fake/ws.py), which its
sender picks up as they change. A simulated session sends kline_1m, bookTicker and 24h
ticker events for its subscribed symbols at Binance's cadence (klines every 2 s plus a
closing frame at each minute boundary, tickers every second, book tickers at a chosen rate)
or, for benchmarks, from one interleaved cycle of its streams in those proportions, paced
at their summed rate or as fast as it can; frames go out in batches, one socket write per
batch, and every session counts what it sent of each kind. A replay session sends
recorded frames for its subscribed streams (those of a stream subscribed late, when it is
subscribed) and then stays open and quiet, as a real stream does when nothing trades.
Every session can be told to go silent (the server still pings), to take extra frames
(malformed ones, serverShutdown), or to drop without a closing handshake.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.server import ServerConnection

from ingest.fake.frames import MarketFrames
from ingest.fake.market import MINUTE_MS, SimClock
from ingest.fake.replay import ReplayFrame
from ingest.fake.ws import Subscriptions

KINDS = ("kline_1m", "bookTicker", "ticker")
BATCH = 256  # frames per socket write at most
# A burst of SUBSCRIBE messages is taken in once, not once per message (a plan of a
# thousand streams takes a while to build).
REPLAN_SECONDS = 0.5


@dataclass
class Cadence:
    """How often a simulated session sends each event, per symbol (Binance's by default)."""

    book_ticker_hz: float = 4.0
    kline_hz: float = 0.5
    ticker_hz: float = 1.0
    unthrottled: bool = False  # as fast as possible, in the proportions of the rates above
    paced: bool = False  # one interleaved cycle at the summed rate, not stream by stream

    def rates(self) -> dict[str, float]:
        return {"kline_1m": self.kline_hz, "bookTicker": self.book_ticker_hz,
                "ticker": self.ticker_hz}

    @classmethod
    def total(cls, rate: float, symbols: int) -> Cadence:
        """About `rate` frames/s over `symbols` symbols: 90 % book tickers, 5 % klines and
        5 % 24h tickers, as on a busy day."""
        per_symbol = rate / max(1, symbols)
        return cls(per_symbol * 0.9, per_symbol * 0.05, per_symbol * 0.05, paced=True)


def parse_streams(path: str) -> list[str] | None:
    """The stream names of a /stream?streams=a/b/c path ([] for a bare /stream), or None for
    any other path."""
    parts = urlsplit(path)
    if parts.path.rstrip("/") != "/stream":
        return None
    names = parse_qs(parts.query).get("streams", [""])[0]
    return [name for name in names.split("/") if name]


class Session:
    """One open stream connection and the switches a test can flip."""

    def __init__(self, connection: ServerConnection, subscriptions: Subscriptions,
                 sent_log: list[tuple[float, str]] | None = None) -> None:
        self.connection = connection
        self.subscriptions = subscriptions
        self.silent = threading.Event()
        self.outbox: deque[str] = deque()
        self.closed = threading.Event()
        self.sent = 0
        self.counts = dict.fromkeys((*KINDS, "other"), 0)  # frames sent, by stream kind
        self.sent_log = sent_log  # (epoch s, frame) of every frame sent, when recording

    def send(self, text: str) -> None:
        self.connection.send(text)
        self.sent += 1
        self.counts["other"] += 1
        if self.sent_log is not None:
            self.sent_log.append((time.time(), text))

    def send_many(self, texts: Sequence[str], kind: str | None = None,
                  kinds: Sequence[str] = ()) -> None:
        """Send these text frames in one socket write, counted as `kind` (or `kinds`, one
        per frame). The frames are framed here (a server's are unmasked and these are
        never compressed) and handed to the connection as data ready to go out."""
        payload = b"".join([_text_frame(text.encode()) for text in texts])
        with self.connection.send_context():
            self.connection.protocol.writes.append(payload)
        self.sent += len(texts)
        if kind is not None:
            self.counts[kind] += len(texts)
        for each in kinds:
            self.counts[each] += 1
        if self.sent_log is not None:
            at = time.time()
            self.sent_log.extend((at, text) for text in texts)

    def flush_outbox(self) -> None:
        """Send frames queued by a scenario (they go out even while the session is silent)."""
        while self.outbox:
            self.send(self.outbox.popleft())

    def drop(self) -> None:
        """Cut the TCP connection with no closing handshake, as a network failure would."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.connection.socket.shutdown(socket.SHUT_RDWR)

    @property
    def streams(self) -> list[str]:
        return self.subscriptions.names()

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set() and self.connection.protocol.state is State.OPEN


def _text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame carrying `payload`."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def subscriptions(streams: Sequence[str]) -> list[tuple[str, str]]:
    """(SYMBOL, kind) for every stream a simulated market can feed."""
    result = []
    for name in streams:
        symbol, _, kind = name.partition("@")
        if kind in KINDS:
            result.append((symbol.upper(), kind))
    return result


class _Schedule:
    """The next due time of every (symbol, kind) at its rate, in a heap."""

    def __init__(self, subscribed: Sequence[tuple[str, str]], cadence: Cadence) -> None:
        rates = cadence.rates()
        now = time.monotonic()
        self.heap = [(now + random.random() / rates[kind], n, symbol, kind, 1 / rates[kind])
                     for n, (symbol, kind) in enumerate(subscribed) if rates[kind] > 0]
        heapq.heapify(self.heap)

    def due(self, now: float, most: int = BATCH) -> list[tuple[str, str]]:
        items = []
        while self.heap and self.heap[0][0] <= now and len(items) < most:
            at, n, symbol, kind, period = self.heap[0]
            # After a pause (silence, a slow consumer) carry on at the rate, without a burst.
            heapq.heapreplace(self.heap, (max(at + period, now - 1.0), n, symbol, kind, period))
            items.append((symbol, kind))
        return items

    def wait(self, now: float) -> float:
        return min(0.01, max(0.0, self.heap[0][0] - now)) if self.heap else 0.05


class _Cycle:
    """All the streams in one interleaved cycle, each as often as its rate says, sent at
    the summed rate (or as fast as possible when `unthrottled`)."""

    def __init__(self, subscribed: Sequence[tuple[str, str]], cadence: Cadence) -> None:
        rates = cadence.rates()
        items = [(symbol, kind) for symbol, kind in subscribed if rates[kind] > 0]
        slowest = min((rates[kind] for _, kind in items), default=1.0)
        phases = []
        for n, (symbol, kind) in enumerate(items):
            times, spread = max(1, round(rates[kind] / slowest)), n * 0.618034 % 1
            phases += [((turn + spread) / times, n, symbol, kind) for turn in range(times)]
        phases.sort()
        self.items = [(symbol, kind) for _, _, symbol, kind in phases]
        self.rate = None if cadence.unthrottled else sum(rates[kind] for _, kind in items)
        self.next = 0
        self.started, self.sent = time.monotonic(), 0

    def due(self, now: float) -> list[tuple[str, str]]:
        if not self.items:
            return []
        count = BATCH
        if self.rate is not None:
            behind = (now - self.started) * self.rate - self.sent
            if behind > self.rate:  # after a pause, carry on at the rate without a burst
                self.started, behind = now - self.sent / self.rate, 0
            count = min(BATCH, int(behind))
        self.sent += max(0, count)
        return [self._take() for _ in range(count)]

    def _take(self) -> tuple[str, str]:
        item = self.items[self.next]
        self.next = (self.next + 1) % len(self.items)
        return item

    def wait(self, now: float) -> float:
        if not self.items or not self.rate:
            return 0.05
        return min(0.002, max(0.0005, (self.sent + 1) / self.rate - (now - self.started)))


class _Plan:
    """What a simulated session sends for its subscriptions of one version."""

    def __init__(self, session: Session, cadence: Cadence) -> None:
        self.version = session.subscriptions.version
        subscribed = subscriptions(session.streams)
        self.klines = [symbol for symbol, kind in subscribed if kind == "kline_1m"]
        bulk = cadence.unthrottled or cadence.paced
        self.sender = _Cycle(subscribed, cadence) if bulk else _Schedule(subscribed, cadence)
        self.built = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.built


def run_simulated(session: Session, frames: MarketFrames, clock: SimClock,
                  cadence: Cadence) -> None:
    """Feed a session from the simulated market until it closes."""
    plan = _Plan(session, cadence)
    minute = clock.ms() // MINUTE_MS
    render = frames.render
    while session.is_open:
        session.flush_outbox()
        if plan.version != session.subscriptions.version and plan.age() > REPLAN_SECONDS:
            plan = _Plan(session, cadence)
        now_ms = clock.ms()
        minute = _close_minutes(session, frames, plan.klines, minute, now_ms)
        if session.silent.is_set():
            time.sleep(0.01)
            continue
        due = plan.sender.due(time.monotonic())
        if due:
            session.send_many([render[kind](symbol, now_ms) for symbol, kind in due],
                              kinds=[kind for _, kind in due])
        else:
            time.sleep(plan.sender.wait(time.monotonic()))


def _close_minutes(session: Session, frames: MarketFrames, symbols: Sequence[str],
                   minute: int, now_ms: int) -> int:
    """Send the closing (x=true) kline of every minute that ended since the last look."""
    current = now_ms // MINUTE_MS
    if session.silent.is_set():
        return current
    for ended in range(max(minute, current - 10), current):
        for first in range(0, len(symbols), BATCH):
            session.send_many([frames.closing_kline(symbol, ended, now_ms)
                               for symbol in symbols[first:first + BATCH]], kind="kline_1m")
    return current


def run_replay(session: Session, recorded: Sequence[ReplayFrame], pace: float) -> None:
    """Send the recorded frames of the subscribed streams, then stay open and quiet."""
    while not session.streams and session.is_open:
        session.flush_outbox()
        time.sleep(0.01)
    version = session.subscriptions.version
    sent = _replay_once(session, recorded, pace, set())
    while session.is_open:
        session.flush_outbox()
        if version != session.subscriptions.version:  # late subscriptions get their frames
            version = session.subscriptions.version
            sent = _replay_once(session, recorded, 0.0, sent)
        time.sleep(0.01)


def _replay_once(session: Session, recorded: Sequence[ReplayFrame], pace: float,
                 sent: set[int]) -> set[int]:
    """Send the frames not sent yet of the streams subscribed now; their indexes sent so far."""
    wanted, version = set(session.streams), session.subscriptions.version
    previous = None
    for index, frame in enumerate(recorded):
        if session.subscriptions.version != version:
            wanted, version = set(session.streams), session.subscriptions.version
        if index in sent or frame.stream not in wanted:
            continue
        if pace and previous is not None and frame.received_at is not None:
            time.sleep(max(0.0, frame.received_at - previous) * pace)
        previous = frame.received_at
        while session.silent.is_set() and session.is_open:
            session.flush_outbox()
            time.sleep(0.01)
        if not session.is_open:
            return sent
        session.flush_outbox()
        session.send(frame.text)
        sent.add(index)
    return sent


def serve_session(session: Session, sender, *args) -> None:
    """Run a sender until the session closes or the peer goes away."""
    try:
        sender(session, *args)
    except (ConnectionClosed, OSError):
        pass
    finally:
        session.closed.set()
