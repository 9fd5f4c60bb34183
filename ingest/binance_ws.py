"""The Binance spot stream: kline_1m, bookTicker and 24h ticker of every configured symbol.

One thread per connection; a connection carries at most 1024 streams, so more symbols mean
more connections. A connection opens the bare combined endpoint (`/stream`: a URL naming
a thousand streams would pass the exchange's 8 KB request line) and SUBSCRIBEs its streams
by message, in batches paced under Binance's 5 incoming messages per second, each answered
by id before the next goes; a refusal or a missing answer is logged with the session's run
and ends it as a failed attempt (backoff, then a new connection that subscribes again).
Frames arriving meanwhile are handled as usual. websocket-client opens the connection and
sends; frames are read in bulk by ingest.ws_frames (a read brings hundreds at full rate, and
their records go to the writer in one hand-off); pings are answered with a pong, which spends
the same message budget. Liveness is judged by data, not
pings: a connection silent for longer than `silence_seconds` is dead.
A connection reconnects on its own before Binance's 24 h cut and at once on serverShutdown;
any other loss reconnects after capped exponential backoff with jitter, for ever. Every
connection is a `ws_session` run with its counts; a malformed frame is counted, logged on
that run, and skipped. After each connect the gap repairer is asked to fill what was missed.
The database going away does not end a session: its records wait in the writer, its counts
are saved once the database is back, and a session that began while it was down gets its
run then.

Before subscribing, a connection leaves out the symbols Binance does not list as trading
(exchangeInfo, through `listing`): Binance acknowledges a SUBSCRIBE for them and sends
nothing, so a misspelt symbol would look quiet for ever. Each is logged with the run.

Per-symbol streams, not all-market ones: Binance has no all-market kline stream, removed
`!bookTicker`, and deprecated `!ticker@arr`; `!miniTicker@arr` lacks the price change
percent (P) and the trade count (n) that tickers_24h stores.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import orjson
import websocket
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from websocket import WebSocketException

from app import metrics
from app.config import IngestSettings
from ingest.runs import Run
from ingest.spot_records import (
    BookTickerSampler,
    MalformedFrame,
    Record,
    decode_frame,
    parse_event,
)
from ingest.writer import DATABASE_ERRORS, Writer
from ingest.ws_frames import BINARY, CLOSE, PING, TEXT, ConnectionClosed, FrameReader, ProtocolError

log = logging.getLogger(__name__)

Listing = Callable[[], frozenset[str] | None]  # the symbols Binance trades; None: unknown
MAX_STREAMS = 1024
# 200 names make a SUBSCRIBE of about 5 KB and a full connection six messages (1.5 s at the
# pace below). Binance documents no cap per message, but far larger ones have been seen to
# fail silently (ccxws#161: ~437 streams), so a batch stays well under that.
SUBSCRIBE_BATCH = 200
# Binance disconnects past 5 incoming messages per second, pongs included: 4 leaves a slot
# for the pong websocket-client sends on its own when a ping lands mid-subscription.
MESSAGES_PER_SECOND = 4
KINDS = ("kline_1m", "bookTicker", "ticker")
LOGGED_ERRORS_PER_SESSION = 100
DATA = frozenset({TEXT, BINARY})
SOURCE = "binance_spot_ws"
EXCHANGE = "binance"


def stream_names(symbols: Sequence[str]) -> list[str]:
    """The combined-stream names for these symbols."""
    return [f"{symbol.lower()}@{kind}" for symbol in symbols for kind in KINDS]


def connection_groups(symbols: Sequence[str], max_streams: int = MAX_STREAMS
                      ) -> list[tuple[str, ...]]:
    """Split the symbols so that no connection carries more than `max_streams` streams."""
    per_connection = max(1, max_streams // len(KINDS))
    return [tuple(symbols[i:i + per_connection])
            for i in range(0, len(symbols), per_connection)]


@dataclass(frozen=True)
class StreamOptions:
    """Timing of a stream connection (short ones in tests)."""

    silence_seconds: float = 30.0
    session_max_seconds: float = 85800.0
    reconnect_base_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    connect_timeout: float = 10.0
    counts_every_seconds: float = 10.0
    subscribe_timeout: float = 10.0

    @classmethod
    def from_settings(cls, tuning: IngestSettings) -> StreamOptions:
        return cls(tuning.silence_seconds, tuning.session_max_seconds,
                   tuning.reconnect_base_seconds, tuning.reconnect_max_seconds)


@dataclass(frozen=True)
class SessionEnd:
    """Why a session ended, and whether to reconnect at once."""

    reason: str
    immediate: bool = False
    got_data: bool = False
    clean: bool = False


@dataclass
class StreamStats:
    """Counters of one connection thread since it started."""

    attempts: int = 0
    sessions: int = 0
    frames: int = 0
    malformed: int = 0
    subscribed: int = 0  # streams the exchange acknowledged in the latest session
    refused: list[str] = field(default_factory=list)  # streams it refused in that session
    last_end: str | None = None


class _Pacer:
    """Messages sent in the last second; how long until one more keeps within the limit."""

    def __init__(self, per_second: int = MESSAGES_PER_SECOND) -> None:
        self.per_second = per_second
        self.sent: deque[float] = deque()

    def record(self) -> None:
        self.sent.append(time.monotonic())

    def wait_seconds(self) -> float:
        now = time.monotonic()
        while self.sent and now - self.sent[0] >= 1.0:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.per_second else 1.0 - (now - self.sent[0])


def _answer(data: bytes) -> dict | None:
    """The exchange's answer to a request ({"result": ..., "id": n} or an error), else None."""
    if data.startswith(b'{"stream"'):
        return None  # a stream event: the common case, told apart without parsing
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(message, dict) and "id" in message and ("result" in message
                                                          or "code" in message):
        return message
    return None


class _SessionCounts:
    """One session's frames, pushed to its run (None while it has none) now and then, and its
    subscription: messages sent, SUBSCRIBE ids acknowledged, the refusal if any."""

    def __init__(self, run: Run | None, reader: FrameReader, symbols: Sequence[str]) -> None:
        self.run = run
        self.reader = reader
        self.books = BookTickerSampler(symbols)
        self.symbols = tuple(symbols)  # those subscribed: Binance lists them (or cannot say)
        self.pacer = _Pacer()
        self.acked = 0  # the highest SUBSCRIBE id answered with success
        self.refused: str | None = None  # the exchange's error answer, if it gave one
        self.received = 0
        self.metered = 0  # of `received`, the frames already added to the Prometheus counter
        self.rejected = 0
        self.pushed = (0, 0)  # (received, rejected) already added to the run
        self.logged_errors = 0
        self.started = time.monotonic()
        self.last_data = self.started
        self.last_saved = self.started
        self.metered_at = self.started


class StreamConnection(threading.Thread):
    """One combined-stream connection for a group of symbols, reconnecting for ever."""

    def __init__(self, ws_url: str, symbols: Sequence[str], writer: Writer, engine: Engine,
                 options: StreamOptions, *, on_connect: Callable[[Sequence[str]], None] | None
                 = None, clock: Callable[[], float] = time.time, number: int = 0,
                 listing: Listing | None = None) -> None:
        super().__init__(name=f"spot-ws-{number}", daemon=True)
        self.listing = listing
        self.url = f"{ws_url.rstrip('/')}/stream"
        self.symbols = tuple(symbols)
        self.streams = stream_names(symbols)
        self.writer = writer
        self.engine = engine
        self.options = options
        self.on_connect = on_connect
        self.clock = clock
        self.stats = StreamStats()
        self._stopping = threading.Event()
        self._frames = metrics.WS_FRAMES.labels(EXCHANGE)  # bound once

    def stop(self) -> None:
        """Ask the thread to close its connection and end (it checks at least twice a second)."""
        self._stopping.set()

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                end = self._session()
            except Exception as error:  # a bug here must not end the stream for good
                log.exception("spot stream session failed", extra={"connection": self.name})
                end = SessionEnd(f"internal error: {error.__class__.__name__}: {error}")
            self.stats.last_end = end.reason
            if self._stopping.is_set():
                return
            metrics.WS_RECONNECTS.labels(EXCHANGE).inc()
            failures = 0 if (end.got_data or end.immediate) else failures + 1
            delay = 0.0 if end.immediate else self._backoff(failures)
            log.info("spot stream ended (%s); reconnecting in %.2f s", end.reason, delay,
                     extra={"symbols": len(self.symbols), "connection": self.name})
            self._stopping.wait(delay)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.options.reconnect_max_seconds,
                      self.options.reconnect_base_seconds * 2 ** failures)
        return ceiling * random.uniform(0.5, 1.0)

    def _session(self) -> SessionEnd:
        self.stats.attempts += 1
        try:
            ws = websocket.create_connection(self.url, timeout=self.options.connect_timeout,
                                             skip_utf8_validation=True)
        except (WebSocketException, OSError) as error:
            return SessionEnd(f"cannot connect: {error.__class__.__name__}: {error}")
        self.stats.sessions += 1
        metrics.WS_CONNECTIONS.labels(EXCHANGE).inc()
        metrics.WS_OPEN.labels(EXCHANGE).inc()
        counts = _SessionCounts(self._open_run(), FrameReader(ws.sock), self.symbols)
        end = SessionEnd("ended")
        try:
            ws.settimeout(min(0.5, self.options.silence_seconds / 4))
            end = self._subscribe(ws, counts)
            if end is None:
                if self.on_connect is not None:
                    self.on_connect(counts.symbols)
                end = self._read(ws, counts)
            return end
        finally:
            metrics.WS_OPEN.labels(EXCHANGE).dec()
            with contextlib.suppress(WebSocketException, OSError):
                ws.close(timeout=1)
            self._hand_off(counts, 0, [])  # the held book tickers of the last second
            self._meter(counts, time.monotonic())
            self._close_run(counts, end)

    def _subscribe(self, ws: websocket.WebSocket, counts: _SessionCounts) -> SessionEnd | None:
        """SUBSCRIBE the streams in paced batches, each acknowledged; a SessionEnd if not.

        A refused batch is halved and each half asked again, down to the single streams
        the exchange refuses: those are logged with the run and left out, and the rest
        stream. A connection whose every stream is refused is a failed attempt."""
        self.stats.subscribed, self.stats.refused = 0, []
        streams = self._listed_streams(counts)
        pending = deque(streams[i:i + SUBSCRIBE_BATCH]
                        for i in range(0, len(streams), SUBSCRIBE_BATCH))
        number = 0
        while pending:
            batch = pending.popleft()
            while counts.pacer.wait_seconds() > 0:  # keep reading while the budget refills
                end = self._step(ws, counts)
                if end is not None:
                    return end
            number += 1
            counts.refused = None
            try:
                ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": batch, "id": number}))
            except (WebSocketException, OSError) as error:
                return SessionEnd(f"connection lost: {error.__class__.__name__}: {error}")
            counts.pacer.record()
            outcome = self._await_ack(ws, counts, number)
            if isinstance(outcome, SessionEnd):
                return outcome
            if outcome is None:
                self.stats.subscribed += len(batch)
            elif len(batch) > 1:
                half = len(batch) // 2
                pending.extendleft((batch[half:], batch[:half]))
            else:
                self.stats.refused.append(batch[0])
                self._log_error(counts, f"stream {batch[0]} left out: {outcome}", None)
        if self.streams and not self.stats.subscribed:
            return self._subscription_failed(counts, "every stream was refused")
        return None

    def _listed_streams(self, counts: _SessionCounts) -> list[str]:
        """The streams of the symbols Binance lists as trading (all of them when it cannot
        say); each symbol it does not list is logged with the run and left out (Binance
        would acknowledge it and send nothing)."""
        listed = self.listing() if self.listing is not None else None
        if listed is None:
            return self.streams
        counts.symbols = tuple(symbol for symbol in self.symbols if symbol in listed)
        for symbol in self.symbols:
            if symbol not in listed:
                self.stats.refused += stream_names([symbol])
                self._log_error(counts, f"symbol {symbol} left out: Binance does not list it "
                                        "as trading (exchangeInfo)", None)
        return stream_names(counts.symbols)

    def _await_ack(self, ws: websocket.WebSocket, counts: _SessionCounts,
                   number: int) -> SessionEnd | str | None:
        """None once SUBSCRIBE `number` is acknowledged, the exchange's refusal, or a
        SessionEnd (the connection ended, or no answer came in time)."""
        deadline = time.monotonic() + self.options.subscribe_timeout
        while counts.acked < number:
            if counts.refused is not None:
                return counts.refused
            if time.monotonic() > deadline:
                return self._subscription_failed(
                    counts, f"no answer to SUBSCRIBE {number} within "
                            f"{self.options.subscribe_timeout:g} s")
            end = self._step(ws, counts)
            if end is not None:
                return end
        return None

    def _subscription_failed(self, counts: _SessionCounts, reason: str) -> SessionEnd:
        """Log it with the run; a failed attempt, whatever data came meanwhile."""
        self._log_error(counts, f"subscription failed: {reason}", None)
        return SessionEnd(f"subscription failed: {reason}")

    def _read(self, ws: websocket.WebSocket, counts: _SessionCounts) -> SessionEnd:
        while True:
            end = self._step(ws, counts)
            if end is not None:
                return end

    def _step(self, ws: websocket.WebSocket, counts: _SessionCounts) -> SessionEnd | None:
        """Read and handle what has arrived (or a timeout); a SessionEnd when the session
        is over."""
        if self._stopping.is_set():
            return SessionEnd("stopped", immediate=True, clean=True)
        now = time.monotonic()
        if now - counts.started >= self.options.session_max_seconds:
            return SessionEnd("renewing before the 24 h cut", immediate=True, clean=True)
        if now - counts.last_saved >= self.options.counts_every_seconds:
            self._save_counts(counts)
        try:
            frames = counts.reader.read()
        except (ProtocolError, ConnectionClosed, OSError) as error:
            return SessionEnd(f"connection lost: {error.__class__.__name__}: {error}",
                              got_data=counts.received > 0)
        return self._on_frames(ws, frames, counts)

    def _on_frames(self, ws: websocket.WebSocket, frames: list[tuple[int, bytes]],
                   counts: _SessionCounts) -> SessionEnd | None:
        """Handle one read's frames: their records go to the writer in one hand-off."""
        records: list[Record] = []
        data_frames, shutdown, end = 0, False, None
        for opcode, data in frames:
            if opcode in DATA:
                answer = _answer(data)
                if answer is not None:
                    self._on_answer(answer, counts)
                    continue
                data_frames += 1
                shutdown = self._parse(data, counts, records) or shutdown
            elif (end := self._on_control(ws, opcode, data, counts)) is not None:
                break
        self._hand_off(counts, data_frames, records)
        if end is not None:
            return replace(end, got_data=counts.received > 0)
        if shutdown:
            return SessionEnd("serverShutdown", immediate=True, clean=True)
        if not data_frames and time.monotonic() - counts.last_data > self.options.silence_seconds:
            return SessionEnd(f"no data for {self.options.silence_seconds:g} s",
                              got_data=counts.received > 0)
        return None

    def _hand_off(self, counts: _SessionCounts, data_frames: int,
                  records: list[Record]) -> None:
        """Count one read's data frames and hand its records to the writer; a read with no
        data (a quiet spell) releases the held book tickers."""
        if data_frames:
            now = counts.last_data = time.monotonic()
            counts.received += data_frames
            self.stats.frames += data_frames
            if now - counts.metered_at >= 1.0:  # a locked counter: once a second, not a read
                self._meter(counts, now)
        elif counts.books:
            self._release_books(counts, records)
        if records:
            self.writer.submit(records, counts.run)

    def _meter(self, counts: _SessionCounts, now: float) -> None:
        """Add the frames received since the last call to the Prometheus counter."""
        self._frames.inc(counts.received - counts.metered)
        counts.metered, counts.metered_at = counts.received, now

    @staticmethod
    def _on_control(ws: websocket.WebSocket, opcode: int, data: bytes,
                    counts: _SessionCounts) -> SessionEnd | None:
        """Answer a ping; a SessionEnd on the server's close or a failed pong."""
        if opcode == CLOSE:
            return SessionEnd("closed by the server")
        if opcode == PING:
            try:
                ws.pong(data)
            except (WebSocketException, OSError) as error:
                return SessionEnd(f"connection lost: {error.__class__.__name__}: {error}")
            counts.pacer.record()  # a pong is a message: it spends the same budget
        return None

    def _on_answer(self, answer: dict, counts: _SessionCounts) -> None:
        """Note an acknowledgement, or the error the exchange answered instead."""
        if "code" in answer:
            counts.refused = (f"SUBSCRIBE {answer['id']} refused: code {answer['code']}: "
                              f"{answer.get('msg')}")
        elif answer["result"] is None and isinstance(answer["id"], int):
            counts.acked = max(counts.acked, answer["id"])

    def _parse(self, data: bytes, counts: _SessionCounts, records: list[Record]) -> bool:
        """Parse one frame into `records` (a book ticker is held until its receive second
        is over); True on serverShutdown. A malformed frame is counted, logged with the run
        and skipped."""
        received_at = self.clock()
        second = int(received_at)
        if second != counts.books.second:
            self._release_books(counts, records)
            counts.books.second = second
        if counts.books.hold(data):
            return False
        try:
            event = decode_frame(data)
            if event is None:
                return False
            parsed = parse_event(event, received_at)
        except MalformedFrame as error:
            self._malformed(counts, error, data)
            return False
        records.extend(parsed.records)
        return parsed.server_shutdown

    def _release_books(self, counts: _SessionCounts, records: list[Record]) -> None:
        """The held book tickers into `records`; a malformed one is counted, logged and
        skipped."""
        released, malformed = counts.books.take()
        records.extend(released)
        for error, data in malformed:
            self._malformed(counts, error, data)

    def _malformed(self, counts: _SessionCounts, error: MalformedFrame, data: bytes) -> None:
        counts.rejected += 1
        self.stats.malformed += 1
        metrics.WS_MALFORMED.labels(EXCHANGE).inc()
        self._log_error(counts, f"malformed frame skipped: {error}", data)

    def _log_error(self, counts: _SessionCounts, message: str,
                   payload: bytes | None) -> None:
        run = counts.run
        counts.logged_errors += 1
        if counts.logged_errors > LOGGED_ERRORS_PER_SESSION:
            return  # counted in the run; the session's summary says how many went unlogged
        if run is None:
            log.warning(message, extra={"connection": self.name})
            return
        try:
            run.error(message, payload)
        except DATABASE_ERRORS as error:
            log.warning("%s (not recorded: %s)", message, error, extra={"run_id": run.id})

    def _open_run(self, retry: bool = False) -> Run | None:
        params = {"url": self.url.split("?")[0], "symbols": list(self.symbols)}
        try:
            return Run(self.engine, SOURCE, "ws_session", ",".join(self.symbols)[:200], params)
        except SQLAlchemyError as error:
            if not retry:
                log.error("stream session has no runs row yet (database unreachable; the "
                          "stream goes on): %s", str(error).splitlines()[0],
                          extra={"connection": self.name})
            return None

    def _save_counts(self, counts: _SessionCounts, final: bool = False) -> None:
        counts.last_saved = time.monotonic()
        if self.writer.database_down and not final:
            return  # the writer is waiting for the database: do not stall reading on it
        if counts.run is None:
            counts.run = self._open_run(retry=True)
        run = counts.run
        if run is None:
            return
        run.add(received=counts.received - counts.pushed[0],
                rejected=counts.rejected - counts.pushed[1])
        counts.pushed = (counts.received, counts.rejected)
        try:
            run.save_counts()
        except DATABASE_ERRORS as error:
            log.warning("could not save stream counts: %s", error, extra={"run_id": run.id})

    def _close_run(self, counts: _SessionCounts, end: SessionEnd) -> None:
        self._save_counts(counts, final=True)
        run = counts.run
        if run is None:
            return
        unlogged = counts.logged_errors - LOGGED_ERRORS_PER_SESSION
        try:
            if unlogged > 0:
                run.error(f"{unlogged} more malformed frames were counted but not logged")
            run.finish(error=None if end.clean else end.reason)
        except DATABASE_ERRORS as error:
            log.warning("could not close the stream's run: %s", error, extra={"run_id": run.id})


class SpotStream:
    """Every connection needed for the configured symbols."""

    def __init__(self, ws_url: str, symbols: Sequence[str], writer: Writer, engine: Engine,
                 options: StreamOptions, *, on_connect: Callable[[Sequence[str]], None] | None
                 = None, clock: Callable[[], float] = time.time,
                 max_streams: int = MAX_STREAMS, listing: Listing | None = None) -> None:
        self.connections = [
            StreamConnection(ws_url, group, writer, engine, options, on_connect=on_connect,
                             clock=clock, number=number, listing=listing)
            for number, group in enumerate(connection_groups(list(symbols), max_streams))]

    def start(self) -> SpotStream:
        for connection in self.connections:
            connection.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        for connection in self.connections:
            connection.stop()
        for connection in self.connections:
            connection.join(timeout)
