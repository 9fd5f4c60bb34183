"""The fake P2P exchange: Binance, OKX and Bybit advert search endpoints on one Flask blueprint.

Each endpoint checks the request as the exchange would (Binance pages of at most 20 rows,
OKX's query, Bybit's all-string body) and answers in the exchange's own envelope, from the
replayed captures or the simulated market (ingest/fake/p2p_books.py). Faults on demand,
for tests and the demo: 429 (Retry-After: 0), 500/502/503, a timeout (a slow answer), a
captcha (AWS WAF for Binance, a Cloudflare challenge for OKX and Bybit), 403, 451, and a
malformed advert in an otherwise good answer. `serving(fake)` runs it on loopback.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request
from werkzeug.serving import make_server

from ingest import binance_p2p, bybit_p2p, okx_p2p
from ingest.fake.p2p_books import CapturedBook, Simulation, load_captures

FAULTS = ("429", "500", "502", "503", "timeout", "captcha", "403", "451", "malformed")
MALFORMED_PRICE = "abc"
USER_SIDE = {trade_type: side for side, trade_type in binance_p2p.TRADE_TYPE.items()}
BINANCE_451 = ("Service unavailable from a restricted location according to 'b. Eligibility' "
               "in https://www.binance.com/en/terms. Please contact customer service if you "
               "believe you received this message in error.")


class BadRequest(ValueError):
    """A request the real exchange would refuse."""


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # json.dumps, not jsonify: no key sorting, and floats keep their digits.
    return Response(json.dumps(payload, ensure_ascii=False), status=status, headers=headers,
                    mimetype="application/json")


def _html(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(f"<html><body>{body}</body></html>", status=status, headers=headers,
                    mimetype="text/html")


def fault_response(exchange: str, fault: str) -> Response:
    """What an exchange (or its CDN) answers for `fault`."""
    if fault == "429":
        return _json({"code": -1003, "msg": "Too many requests"}, 429, {"Retry-After": "0"})
    if fault in ("500", "502", "503"):
        return _html(f"<h1>{fault} Server Error</h1>", int(fault))
    if fault == "captcha" and exchange == "binance":
        return _html("<script>AwsWafIntegration.captcha()</script>Human verification", 405,
                     {"x-amzn-waf-action": "captcha"})
    if fault == "captcha":
        return _html("<title>Just a moment...</title>Checking your browser", 403,
                     {"cf-mitigated": "challenge"})
    if fault == "451":
        return _json({"code": 0, "msg": BINANCE_451}, 451)
    if fault == "403":
        return _html("<h1>403 Forbidden</h1>Request blocked.", 403)
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")


def _field(body: dict[str, Any], name: str, allowed: Any = None, kind: type = str) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(f"{name} must be a {kind.__name__}; got {value!r}")
    if allowed is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of {sorted(allowed)}; got {value!r}")
    return value


def binance_query(body: Any) -> tuple[str, str, str, int, int]:
    """Asset, fiat, side, page and rows of a Binance search, checked as Binance does."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    page, rows = _field(body, "page", kind=int), _field(body, "rows", kind=int)
    if page < 1 or not 1 <= rows <= binance_p2p.MAX_ROWS:
        raise BadRequest(f"page must be >= 1 and rows 1-20; got {page}, {rows}")
    _field(body, "payTypes", kind=list)
    if body.get("publisherType") not in (None, "merchant"):
        raise BadRequest("publisherType must be null or merchant")
    side = USER_SIDE[_field(body, "tradeType", set(USER_SIDE))]
    return _field(body, "asset"), _field(body, "fiat"), side, page, rows


def okx_query(args: Any) -> tuple[str, str, str]:
    """Asset, fiat and side of an OKX books query, checked as OKX does."""
    for name in ("quoteCurrency", "baseCurrency", "paymentMethod", "userType"):
        if not args.get(name):
            raise BadRequest(f"{name} is required")
    side = _field(dict(args), "side", {"buy", "sell"})
    return args["baseCurrency"], args["quoteCurrency"], okx_p2p.ADVERT_SIDE[side]


def bybit_query(body: Any) -> tuple[str, str, str, int, int]:
    """Asset, fiat, side, page and size of a Bybit online-ads request (all strings)."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    side = _field(body, "side", {"0", "1"})
    page, size = _field(body, "page"), _field(body, "size")
    if not (page.isdigit() and size.isdigit() and int(page) >= 1 and 1 <= int(size) <= 100):
        raise BadRequest(f"page and size must be numeric strings; got {page!r}, {size!r}")
    return (_field(body, "tokenId"), _field(body, "currencyId"),
            bybit_p2p.ADVERT_SIDE[side], int(page), int(size))


def corrupt(exchange: str, adverts: list[Any]) -> list[Any]:
    """The same adverts with the second one's price made unreadable."""
    adverts = json.loads(json.dumps(adverts))
    if len(adverts) > 1:
        target = adverts[1]["adv"] if exchange == "binance" else adverts[1]
        target["price"] = MALFORMED_PRICE
    return adverts


class FakeP2P:
    """State of the fake: its books (captures, simulation), queued faults, request log."""

    def __init__(self, captures_dir: Path | None = None, simulation: Simulation | None = None,
                 slow_seconds: float = 2.0) -> None:
        self.captures: dict[tuple[str, str, str, str], CapturedBook] = (
            load_captures(captures_dir) if captures_dir else {})
        self.simulation = simulation
        self.slow_seconds = slow_seconds
        self.requests: list[dict[str, Any]] = []
        self._faults: dict[str, deque[str | None]] = defaultdict(deque)
        self._lock = threading.Lock()

    def inject(self, exchange: str, fault: str, times: int = 1, after: int = 0) -> None:
        """Answer `times` requests to `exchange` with `fault`, once `after` more went well."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults[exchange].extend([None] * after + [fault] * times)

    def _next_fault(self, exchange: str) -> str | None:
        with self._lock:
            queue = self._faults[exchange]
            return queue.popleft() if queue else None

    def book(self, exchange: str, asset: str, fiat: str, side: str) -> CapturedBook:
        """The adverts of one side, best first: a capture, else the simulation, else none."""
        captured = self.captures.get((exchange, asset.upper(), fiat.upper(), side))
        if captured is not None:
            return captured
        if self.simulation is not None:
            return CapturedBook(self.simulation.book(exchange, asset.upper(), fiat.upper(), side))
        return CapturedBook([])

    def answer(self, exchange: str) -> Response:
        """Log the request, then answer it: a queued fault, a refusal, or a page of the book."""
        with self._lock:
            self.requests.append({"exchange": exchange, "method": request.method,
                                  "path": request.path, "args": request.args.to_dict(),
                                  "body": request.get_json(silent=True),
                                  "headers": dict(request.headers)})
        fault = self._next_fault(exchange)
        if fault == "timeout":
            time.sleep(self.slow_seconds)
        elif fault not in (None, "malformed"):
            return fault_response(exchange, fault)
        try:
            return ANSWERS[exchange](self, fault == "malformed")
        except BadRequest as error:
            return REFUSALS[exchange](str(error))


def _binance(fake: FakeP2P, malformed: bool) -> Response:
    asset, fiat, side, page, rows = binance_query(request.get_json(silent=True))
    book = fake.book("binance", asset, fiat, side)
    data = book.adverts[(page - 1) * rows: page * rows]
    envelope = {"code": "000000", "message": None, "messageDetail": None,
                "total": len(book.adverts), "success": True, **book.envelope}
    return _json({**envelope, "data": corrupt("binance", data) if malformed else data})


def _okx(fake: FakeP2P, malformed: bool) -> Response:
    asset, fiat, side = okx_query(request.args)
    adverts = fake.book("okx", asset, fiat, side).adverts
    adverts = corrupt("okx", adverts) if malformed else adverts
    sides = {"sell": adverts if side == "ask" else [], "buy": adverts if side == "bid" else []}
    return _json({"code": 0, "data": {**sides, "total": len(adverts)}, "detailMsg": "",
                  "error_code": "0", "error_message": "", "msg": ""})


def _bybit(fake: FakeP2P, malformed: bool) -> Response:
    asset, fiat, side, page, size = bybit_query(request.get_json(silent=True))
    book = fake.book("bybit", asset, fiat, side)
    items = book.adverts[(page - 1) * size: page * size]
    envelope = {"ret_code": 0, "ret_msg": "SUCCESS", "ext_code": "", "ext_info": {},
                "time_now": f"{time.time():.6f}", **book.envelope}
    return _json({**envelope, "result": {"count": len(book.adverts),
                                         "items": corrupt("bybit", items) if malformed else items}})


ANSWERS = {"binance": _binance, "okx": _okx, "bybit": _bybit}
REFUSALS = {
    "binance": lambda why: _json({"code": "000002", "message": "illegal parameter",
                                  "messageDetail": why, "data": None, "success": False}),
    "okx": lambda why: _json({"code": 51000, "data": {}, "msg": f"Parameter error: {why}"}),
    "bybit": lambda why: _json({"ret_code": 10001, "ret_msg": f"params error: {why}",
                                "result": None, "ext_code": "", "ext_info": {}}),
}


def make_blueprint(fake: FakeP2P) -> Blueprint:
    """The three exchanges' P2P search endpoints (and a fault switch) serving `fake`."""
    bp = Blueprint("fake_p2p", __name__)
    bp.add_url_rule(binance_p2p.PATH, "binance", lambda: fake.answer("binance"),
                    methods=["POST"])
    bp.add_url_rule(okx_p2p.PATH, "okx", lambda: fake.answer("okx"), methods=["GET"])
    bp.add_url_rule(bybit_p2p.PATH, "bybit", lambda: fake.answer("bybit"), methods=["POST"])

    @bp.post("/_fake/p2p/faults")
    def inject_fault() -> Response:
        body = request.get_json(silent=True) or {}
        try:
            fake.inject(str(body.get("exchange")), str(body.get("fault")),
                        int(body.get("times", 1)), int(body.get("after", 0)))
        except (TypeError, ValueError) as error:
            return _json({"error": str(error)}, 400)
        return _json({"queued": body})

    return bp


@contextmanager
def serving(fake: FakeP2P) -> Iterator[str]:
    """Serve `fake` on a free loopback port in a thread; yield its base URL."""
    app = Flask("p2pdash_fake_p2p")
    app.register_blueprint(make_blueprint(fake))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fake-p2p", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
