"""The fake Binance spot exchange: its state, the scenario controls tests call, and its REST API.

REST: GET /api/v3/klines, /api/v3/exchangeInfo, /api/v3/ping and /api/v3/time, with
Binance's error bodies, request weights and the X-MBX-USED-WEIGHT-1M header (over the limit
answers 429 with Retry-After). A test can queue answers for the next requests (429, 418,
5xx, or a delay long enough to be a timeout). GET /fake/stats (the fake's own, not
Binance's) gives the stream frames sent so far by kind and the process's CPU seconds, for
a benchmark to set beside what its client received. Streams: see ingest/fake/streams.py, and
ingest/fake/ws.py for the subscription messages and the limits the stream server enforces.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.sync.server import ServerConnection

from db.intervals import INTERVALS
from ingest.fake.frames import MarketFrames, exchange_info, select_opens
from ingest.fake.market import SimClock, SimulatedMarket
from ingest.fake.replay import ReplayFrame
from ingest.fake.streams import (
    Cadence,
    Session,
    parse_streams,
    run_replay,
    run_simulated,
    serve_session,
)
from ingest.fake.ws import LimitedConnection, SlidingWindow, Subscriptions, WsLimits, answer

bp = Blueprint("fake_binance", __name__)

WEIGHTS = {"/api/v3/klines": 2, "/api/v3/exchangeInfo": 20, "/api/v3/ping": 1,
           "/api/v3/time": 1}
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")


@dataclass(frozen=True)
class HttpFault:
    """How to answer one coming request: a status (with Retry-After) and/or a delay."""

    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class RequestLog:
    """A request the fake answered."""

    at: float
    path: str
    params: dict[str, str]
    status: int


class FakeBinance:
    """The exchange's state: market or recordings, weight used, open sessions, faults."""

    def __init__(self, *, clock: SimClock, market: SimulatedMarket | None = None,
                 frames: Sequence[ReplayFrame] = (),
                 klines: Mapping[tuple[str, str], list[list[Any]]] | None = None,
                 info: dict[str, Any] | None = None, symbols: Sequence[str] = (),
                 cadence: Cadence | None = None, weight_limit: int = 6000,
                 max_streams: int = 1024, pace: float = 0.0, record: bool = False,
                 ws_limits: WsLimits | None = None) -> None:
        self.clock = clock
        self.market_frames = MarketFrames(market) if market is not None else None
        self.recorded_frames = list(frames)
        self.recorded_klines = dict(klines or {})
        self.info = info
        self.symbols = tuple(symbols)
        self.cadence = cadence or Cadence()
        self.weight_limit = weight_limit
        self.ws_limits = ws_limits or WsLimits(max_streams=max_streams)
        self.pace = pace
        self.sessions: set[Session] = set()
        self.connects = 0
        self.attempts = SlidingWindow(self.ws_limits.connection_attempts,
                                      self.ws_limits.attempts_window_seconds)
        self.refused_attempts = 0  # handshakes answered 429 (too many connection attempts)
        self.too_many_messages = 0  # connections closed for passing the message rate
        self.requests_answered: list[str] = []  # every answer to a subscription message
        self.requests: list[RequestLog] = []
        # (epoch s, frame) of every stream frame sent, when recording: what a test compares
        # the stored rows with.
        self.sent_frames: list[tuple[float, str]] | None = [] if record else None
        self._closed_counts: dict[str, int] = {}  # frames sent by sessions now closed
        self._faults: deque[HttpFault] = deque()
        self._weight = (0, 0)  # (minute, weight used in it)
        self._lock = threading.Lock()

    # -- REST scenario -----------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (429/418 carry Retry-After)."""
        self._faults.extend([HttpFault(status, retry_after)] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` answers for `seconds` (a client timeout when longer)."""
        self._faults.extend([HttpFault(delay=seconds)] * times)

    def set_used_weight(self, weight: int) -> None:
        """Pretend `weight` was already used in the current minute."""
        with self._lock:
            self._weight = (self.clock.ms() // 60_000, weight)

    def charge(self, weight: int) -> tuple[int, bool]:
        """Add a request's weight to the minute; return the total and whether it is over."""
        with self._lock:
            minute = self.clock.ms() // 60_000
            used = (self._weight[1] if self._weight[0] == minute else 0) + weight
            self._weight = (minute, used)
        return used, used > self.weight_limit

    def next_fault(self) -> HttpFault | None:
        try:
            return self._faults.popleft()
        except IndexError:
            return None

    def known_symbols(self) -> tuple[str, ...]:
        if self.market_frames is None:
            return tuple(dict.fromkeys(symbol for symbol, _ in self.recorded_klines))
        return self.symbols or DEFAULT_SYMBOLS

    # -- stream scenario ---------------------------------------------------------------

    def _each_session(self) -> list[Session]:
        with self._lock:
            return [session for session in self.sessions if session.is_open]

    def drop_connections(self) -> int:
        """Cut every open stream connection without a closing handshake."""
        sessions = self._each_session()
        for session in sessions:
            session.drop()
        return len(sessions)

    def silence_connections(self) -> int:
        """Stop sending data on every open connection (pings go on); new ones are normal."""
        sessions = self._each_session()
        for session in sessions:
            session.silent.set()
        return len(sessions)

    def send_server_shutdown(self) -> int:
        """Send the serverShutdown event on every open connection."""
        return self.send_frames([f'{{"e":"serverShutdown","E":{self.clock.ms()}}}'])

    def send_frames(self, frames: Sequence[str]) -> int:
        """Send these exact frames (malformed ones, say) on every open connection."""
        sessions = self._each_session()
        for session in sessions:
            session.outbox.extend(frames)
        return len(sessions)

    def ping_connections(self, timeout: float = 5.0) -> list[bool]:
        """Ping every open connection; True for each that answered with a pong in time."""
        waiters = [session.connection.ping() for session in self._each_session()]
        return [waiter.wait(timeout) for waiter in waiters]

    @property
    def open_connections(self) -> int:
        return len(self._each_session())

    def frames_sent(self) -> dict[str, int]:
        """Stream frames sent so far by every session, by kind ("other": answers, extras)."""
        with self._lock:
            totals = dict(self._closed_counts)
            counts = [dict(session.counts) for session in self.sessions]
        for count in counts:
            for kind, sent in count.items():
                totals[kind] = totals.get(kind, 0) + sent
        return totals

    # -- the WebSocket side ------------------------------------------------------------

    def connection_factory(self, *args, **kwargs) -> LimitedConnection:
        """The server's connections: each counts what it receives against the limit."""
        return LimitedConnection(*args, limits=self.ws_limits,
                                 on_too_many=self._note_too_many, **kwargs)

    def _note_too_many(self, connection: LimitedConnection) -> None:
        with self._lock:
            self.too_many_messages += 1

    def process_request(self, connection: ServerConnection, request: Request):
        """Refuse too many attempts, paths other than /stream, and too many streams."""
        if not self.attempts.add():
            with self._lock:
                self.refused_attempts += 1
            return connection.respond(429, "Too many connection attempts\n")
        streams = parse_streams(request.path)
        if streams is None:
            return connection.respond(404, "only combined streams: /stream or "
                                           "/stream?streams=a/b\n")
        if len(streams) > self.ws_limits.max_streams:
            return connection.respond(400, f"at most {self.ws_limits.max_streams} streams "
                                           f"per connection; got {len(streams)}\n")
        return None

    def handle(self, connection: ServerConnection) -> None:
        """Serve one stream connection until it closes: send on a thread, answer here."""
        subscriptions = Subscriptions(parse_streams(connection.request.path) or [],
                                      self.ws_limits.max_streams)
        session = Session(connection, subscriptions, self.sent_frames)
        with self._lock:
            self.sessions.add(session)
            self.connects += 1
        if self.market_frames is not None:
            sender_args = (run_simulated, self.market_frames, self.clock, self.cadence)
        else:
            sender_args = (run_replay, self.recorded_frames, self.pace)
        sender = threading.Thread(target=serve_session, args=(session, *sender_args),
                                  name="fake-ws-sender", daemon=True)
        sender.start()
        try:
            self._answer_requests(session)
        finally:
            session.closed.set()
            sender.join(5)
            with self._lock:
                self.sessions.discard(session)
                for kind, sent in session.counts.items():
                    self._closed_counts[kind] = self._closed_counts.get(kind, 0) + sent

    def _answer_requests(self, session: Session) -> None:
        try:
            for message in session.connection:
                reply = answer(session.subscriptions, message)
                with self._lock:
                    self.requests_answered.append(reply)
                session.send(reply)
        except (ConnectionClosed, OSError):
            pass


# -- REST ------------------------------------------------------------------------------


def _state() -> FakeBinance:
    return current_app.extensions["fake_binance"]


def _error(status: int, code: int, message: str, retry_after: int | None = None) -> Response:
    response = jsonify({"code": code, "msg": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _fault_response(fault: HttpFault) -> Response | None:
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status is None:
        return None
    if fault.status == 429:
        return _error(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                      "requests per minute. Please use the websocket for live updates to avoid "
                      "polling the API.", fault.retry_after or 1)
    if fault.status == 418:
        until = _state().clock.ms() + 1000 * (fault.retry_after or 120)
        return _error(418, -1003, f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                      "Please use the websocket for live updates to avoid bans.",
                      fault.retry_after or 120)
    return _error(fault.status, -1001, "Internal error; unable to process your request. "
                  "Please try again.")


@bp.before_request
def _before() -> Response | None:
    state = _state()
    fault = state.next_fault()
    if fault is not None:
        answer = _fault_response(fault)
        if answer is not None:
            return answer
    used, over = state.charge(WEIGHTS.get(request.path, 1))
    g.used_weight = used
    if over:
        wait = 60 - int(state.clock() % 60)
        return _error(429, -1003, "Too much request weight used; current limit is "
                      f"{state.weight_limit} request weight per 1 MINUTE.", wait)
    return None


@bp.after_request
def _after(response: Response) -> Response:
    state = _state()
    used = g.used_weight if "used_weight" in g else state.charge(0)[0]
    response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
    response.headers["X-MBX-USED-WEIGHT"] = str(used)
    with state._lock:
        state.requests.append(RequestLog(time.monotonic(), request.path,
                                         request.args.to_dict(), response.status_code))
    return response


@bp.get("/api/v3/ping")
def ping() -> Response:
    return jsonify({})


@bp.get("/api/v3/time")
def server_time() -> Response:
    return jsonify({"serverTime": _state().clock.ms()})


@bp.get("/fake/stats")
def fake_stats() -> Response:
    state = _state()
    return jsonify({"frames": state.frames_sent(), "open_connections": state.open_connections,
                    "connects": state.connects, "cpu_seconds": time.process_time(),
                    "at": time.time()})


@bp.get("/api/v3/exchangeInfo")
def exchange_information() -> Response:
    state = _state()
    info = state.info or exchange_info(list(state.known_symbols()), state.clock.ms(),
                                       state.weight_limit)
    wanted = request.args.get("symbol")
    if wanted:
        symbols = [s for s in info["symbols"] if s["symbol"] == wanted]
        if not symbols:
            return _error(400, -1121, "Invalid symbol.")
        info = {**info, "symbols": symbols}
    return jsonify(info)


class _BadParameter(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _number(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise _BadParameter(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                   "range is '^[0-9]{1,20}$'.")
    return int(raw)


def _klines_parameters(state: FakeBinance) -> tuple[str, str, int | None, int | None, int]:
    """Check the parameters in Binance's order; raise _BadParameter with its error."""
    symbol, interval = request.args.get("symbol", ""), request.args.get("interval", "")
    if not symbol:
        raise _BadParameter(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                   "or malformed.")
    if interval not in INTERVALS:
        raise _BadParameter(-1120, "Invalid interval.")
    start, end, limit = _number("startTime"), _number("endTime"), _number("limit") or 500
    if not 1 <= limit <= 1000:
        raise _BadParameter(-1130, "Data sent for parameter 'limit' is not valid.")
    if symbol not in state.known_symbols():
        raise _BadParameter(-1121, "Invalid symbol.")
    return symbol, interval, start, end, limit


@bp.get("/api/v3/klines")
def klines() -> Response:
    state = _state()
    try:
        symbol, interval, start, end, limit = _klines_parameters(state)
    except _BadParameter as error:
        return _error(400, error.code, error.message)
    now = state.clock.ms()
    if state.market_frames is None:
        return jsonify(_recorded(state.recorded_klines.get((symbol, interval), []), start, end,
                                 limit))
    opens = select_opens(interval, start, end, limit, now)
    return jsonify(state.market_frames.klines(symbol, interval, opens, now))


def _recorded(rows: list[list[Any]], start: int | None, end: int | None,
              limit: int) -> list[list[Any]]:
    chosen = [row for row in rows if (start is None or row[0] >= start)
              and (end is None or row[0] <= end)]
    return chosen[:limit] if start is not None else chosen[-limit:]
