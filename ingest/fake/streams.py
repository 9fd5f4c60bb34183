"""The fake Binance combined stream: one session per WebSocket connection, and its senders.

A session listens to the streams of its URL (`/stream?streams=a/b`) and to those it
subscribes by message (bare `/stream`, then SUBSCRIBE: see ingest/fake/ws.py), which its
sender picks up as they change. A simulated session sends kline_1m, bookTicker and 24h
ticker events for its subscribed symbols at Binance's cadence (klines every 2 s plus a
closing frame at each minute boundary, tickers every second, book tickers at a chosen rate)
or as fast as it can. A replay session sends recorded frames for its subscribed streams
(those of a stream subscribed late, when it is subscribed) and then stays open and quiet,
as a real stream does when nothing trades. Every session can be told to go silent (the
server still pings), to take extra frames (malformed ones, serverShutdown), or to drop
without a closing handshake.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.server import ServerConnection

from ingest.fake.frames import MarketFrames, combined, kline_event
from ingest.fake.market import MINUTE_MS, SimClock
from ingest.fake.replay import ReplayFrame
from ingest.fake.ws import Subscriptions

KINDS = ("kline_1m", "bookTicker", "ticker")


@dataclass
class Cadence:
    """How often a simulated session sends each event, per symbol (Binance's by default)."""

    book_ticker_hz: float = 4.0
    kline_hz: float = 0.5
    ticker_hz: float = 1.0
    unthrottled: bool = False


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
        self.sent_log = sent_log  # (epoch s, frame) of every frame sent, when recording

    def send(self, text: str) -> None:
        self.connection.send(text)
        self.sent += 1
        if self.sent_log is not None:
            self.sent_log.append((time.time(), text))

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
        rates = {"kline_1m": cadence.kline_hz, "bookTicker": cadence.book_ticker_hz,
                 "ticker": cadence.ticker_hz}
        now = time.monotonic()
        self.heap = [(now + random.random() / rates[kind], n, symbol, kind, 1 / rates[kind])
                     for n, (symbol, kind) in enumerate(subscribed) if rates[kind] > 0]
        heapq.heapify(self.heap)

    def due(self, now: float, most: int = 512) -> list[tuple[str, str]]:
        items = []
        while self.heap and self.heap[0][0] <= now and len(items) < most:
            at, n, symbol, kind, period = self.heap[0]
            # After a pause (silence, a slow consumer) carry on at the rate, without a burst.
            heapq.heapreplace(self.heap, (max(at + period, now - 1.0), n, symbol, kind, period))
            items.append((symbol, kind))
        return items

    def wait(self, now: float) -> float:
        return min(0.01, max(0.0, self.heap[0][0] - now)) if self.heap else 0.05


def _cycle(subscribed: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """As fast as possible, in Binance's proportions: mostly book tickers."""
    weights = {"bookTicker": 18, "kline_1m": 1, "ticker": 1}
    return itertools.cycle([item for item in subscribed for _ in range(weights[item[1]])])


class _Plan:
    """What a simulated session sends for its subscriptions of one version."""

    def __init__(self, session: Session, cadence: Cadence) -> None:
        self.version = session.subscriptions.version
        subscribed = subscriptions(session.streams)
        self.klines = [symbol for symbol, kind in subscribed if kind == "kline_1m"]
        self.schedule = None if cadence.unthrottled else _Schedule(subscribed, cadence)
        self.cycle = _cycle(subscribed) if cadence.unthrottled and subscribed else None


def run_simulated(session: Session, frames: MarketFrames, clock: SimClock,
                  cadence: Cadence) -> None:
    """Feed a session from the simulated market until it closes."""
    plan = _Plan(session, cadence)
    minute = clock.ms() // MINUTE_MS
    while session.is_open:
        session.flush_outbox()
        if plan.version != session.subscriptions.version:
            plan = _Plan(session, cadence)
        klines, schedule, cycle = plan.klines, plan.schedule, plan.cycle
        now_ms = clock.ms()
        minute = _close_minutes(session, frames, klines, minute, now_ms)
        if session.silent.is_set():
            time.sleep(0.01)
            continue
        due = (list(itertools.islice(cycle, 256)) if cycle is not None else
               schedule.due(time.monotonic()) if schedule is not None else [])
        for symbol, kind in due:
            session.send(_event(frames, symbol, kind, clock.ms()))
        if not due:
            time.sleep(schedule.wait(time.monotonic()) if schedule else 0.05)


def _close_minutes(session: Session, frames: MarketFrames, symbols: Sequence[str],
                   minute: int, now_ms: int) -> int:
    """Send the closing (x=true) kline of every minute that ended since the last look."""
    current = now_ms // MINUTE_MS
    if session.silent.is_set():
        return current
    for ended in range(max(minute, current - 10), current):
        for symbol in symbols:
            candle = frames.market.candle(symbol, ended)
            session.send(combined(f"{symbol.lower()}@kline_1m",
                                  kline_event(symbol, candle, True, now_ms)))
    return current


def _event(frames: MarketFrames, symbol: str, kind: str, now_ms: int) -> str:
    stream = f"{symbol.lower()}@{kind}"
    if kind == "bookTicker":
        return combined(stream, frames.book_ticker(symbol, now_ms))
    if kind == "ticker":
        return combined(stream, frames.ticker(symbol, now_ms))
    candle = frames.market.live_candle(symbol, now_ms)
    return combined(stream, kline_event(symbol, candle, False, now_ms))


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
