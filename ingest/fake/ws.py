"""The fake stream server's rules: Binance's connection limits and its subscription messages.

Binance's spot WebSocket Streams documentation sets the limits (the defaults of `WsLimits`):
5 incoming messages per second per connection, counting PING and PONG frames as well as JSON
requests (beyond that the connection is closed, 1008 "Too many requests"); at most 1,024
streams per connection; 300 connection attempts per 5 minutes per IP. The request line is
held to the `websockets` server's default of 8 KB (longer ones are answered 414), which is
also where a real front end stops reading a combined-stream URL.

A connection subscribes by message: {"method": "SUBSCRIBE", "params": [...], "id": 1} is
answered {"result": null, "id": 1}; UNSUBSCRIBE and LIST_SUBSCRIPTIONS likewise, and a bad
request gets Binance's error answer ({"code": 2, "msg": "Invalid request: ...", "id": 1}).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.frames import Opcode
from websockets.sync.server import ServerConnection

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
TOO_MANY_REQUESTS = 1008  # the close code Binance sends past the message limit
# <symbol>@<kind>, lower-case symbol, for the spot stream kinds Binance documents.
STREAM_NAME = re.compile(
    r"^[a-z0-9]{2,20}@(bookTicker|ticker|miniTicker|trade|aggTrade|avgPrice"
    r"|ticker_(1h|4h|1d)|depth(5|10|20)?(@100ms|@1000ms)?"
    r"|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(@\+08:00)?)$"
    r"|^!(miniTicker|ticker_(1h|4h|1d))@arr$")


@dataclass(frozen=True)
class WsLimits:
    """The limits the fake enforces (Binance's real ones unless a test lowers them)."""

    max_streams: int = 1024
    messages_per_second: int = 5
    connection_attempts: int = 300
    attempts_window_seconds: float = 300.0


class SlidingWindow:
    """Events in the last `seconds`; `add` says whether the count is still within `limit`."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= self.seconds:
                self._times.popleft()
            self._times.append(now)
            return len(self._times) <= self.limit


class LimitedConnection(ServerConnection):
    """A server connection that counts every incoming frame and closes past the limit."""

    def __init__(self, *args: Any, limits: WsLimits,
                 on_too_many: Callable[[LimitedConnection], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.incoming = SlidingWindow(limits.messages_per_second, 1.0)
        self.over_limit = threading.Event()
        self._on_too_many = on_too_many

    def process_event(self, event: Any) -> None:
        if self.request is None or getattr(event, "opcode", None) is Opcode.CLOSE:
            super().process_event(event)
            return
        if self.over_limit.is_set():
            return  # the connection is closing; nothing more is read from it
        if self.incoming.add():
            super().process_event(event)
            return
        self.over_limit.set()
        self._on_too_many(self)
        # close() waits for this very thread to read the peer's answer: run it on another one.
        threading.Thread(target=self.close, args=(TOO_MANY_REQUESTS, "Too many requests"),
                         name="fake-ws-close", daemon=True).start()


class RequestError(ValueError):
    """A request Binance answers with {"code": ..., "msg": ...}."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def parse_request(text: str | bytes) -> dict[str, Any]:
    """The request in a text message, or RequestError as Binance words it."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise RequestError(3, f"Invalid JSON: {error}") from None
    if not isinstance(request, dict):
        raise RequestError(2, "Invalid request: expected a JSON object")
    request_id = request.get("id")
    if request_id is not None and (isinstance(request_id, bool) or
                                   not isinstance(request_id, int | str)):
        raise RequestError(2, "Invalid request: request ID must be an unsigned integer")
    if "method" not in request:
        raise RequestError(2, "Invalid request: missing field `method`", request_id)
    if request["method"] not in METHODS:
        raise RequestError(2, f"Invalid request: unknown variant `{request['method']}`, "
                              f"expected one of {', '.join(f'`{m}`' for m in METHODS)}",
                           request_id)
    return request


def stream_params(request: dict[str, Any]) -> list[str]:
    """The stream names a SUBSCRIBE or UNSUBSCRIBE carries."""
    params = request.get("params")
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise RequestError(1, "Invalid value type: expected an array of stream names")
    return params


def check_streams(streams: list[str]) -> None:
    """Refuse the request if any name is not a stream Binance offers; as Binance does, a
    well-formed name of a symbol it does not list is accepted (and then sends nothing)."""
    if not all(STREAM_NAME.match(name) for name in streams):
        raise RequestError(2, "Invalid request: invalid stream")


def error_answer(code: int, message: str, request_id: Any = None) -> str:
    return orjson.dumps({"code": code, "msg": message, "id": request_id}).decode()


def result_answer(result: Any, request_id: Any) -> str:
    return orjson.dumps({"result": result, "id": request_id}).decode()


class Subscriptions:
    """The streams one connection listens to, in order; `version` moves on every change."""

    def __init__(self, streams: list[str], max_streams: int) -> None:
        self.max_streams = max_streams
        self._names = dict.fromkeys(streams)
        self.version = 0
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def subscribe(self, streams: list[str]) -> None:
        """Add the streams, or none of them when the connection would pass its limit."""
        with self._lock:
            total = len(self._names.keys() | set(streams))
            if total > self.max_streams:
                raise RequestError(2, f"Invalid request: a connection listens to at most "
                                      f"{self.max_streams} streams; this would make {total}")
            self._names.update(dict.fromkeys(streams))
            self.version += 1

    def unsubscribe(self, streams: list[str]) -> None:
        with self._lock:
            for name in streams:
                self._names.pop(name, None)
            self.version += 1


def _property(request: dict[str, Any]) -> bool | None:
    """GET_PROPERTY's answer (SET_PROPERTY's is None) for "combined", the only property."""
    params = request.get("params")
    if not isinstance(params, list) or not params or params[0] != "combined":
        raise RequestError(0, "Unknown property", request.get("id"))
    if request["method"] == "GET_PROPERTY":
        return True  # a /stream connection wraps its events; the fake never unwraps them
    if len(params) != 2 or not isinstance(params[1], bool):
        raise RequestError(1, "Invalid value type: expected Boolean", request.get("id"))
    return None


def answer(subscriptions: Subscriptions, text: str | bytes) -> str:
    """Carry out one request and give Binance's answer to it."""
    request_id = None
    try:
        request = parse_request(text)
        request_id = request.get("id")
        method = request["method"]
        if method == "SUBSCRIBE":
            streams = stream_params(request)
            check_streams(streams)
            subscriptions.subscribe(streams)
        elif method == "UNSUBSCRIBE":
            subscriptions.unsubscribe(stream_params(request))
        elif method == "LIST_SUBSCRIPTIONS":
            return result_answer(subscriptions.names(), request_id)
        elif method in ("GET_PROPERTY", "SET_PROPERTY"):
            return result_answer(_property(request), request_id)
        return result_answer(None, request_id)
    except RequestError as error:
        return error_answer(error.code, str(error), request_id or error.request_id)
