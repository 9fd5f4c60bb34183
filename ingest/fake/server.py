"""The fake exchange on loopback: a Flask app built from blueprints, and a WebSocket server.

`FakeExchange(mode="simulate").start()` serves a simulated Binance spot market;
`mode="replay"` serves recorded frames and REST answers instead. More exchanges plug in
as Flask blueprints (with their state in `extensions`) on the same HTTP server:

    FakeExchange(blueprints=[p2p.bp], extensions={"fake_p2p": state})

Both servers bind 127.0.0.1 on free ports; `environment()` gives the p2pdash settings that
point every connector at them. With `record=True` every stream frame sent is kept, with the
time it was sent, in `binance.sent_frames`, for a test to compare the stored rows with.
The stream server holds clients to Binance's limits (`ws_limits`, see ingest/fake/ws.py):
a test that would be refused by the real exchange is refused here too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask
from websockets.sync.server import serve as serve_websockets
from werkzeug.serving import WSGIRequestHandler, make_server

from ingest.fake import binance
from ingest.fake.market import SimClock, SimulatedMarket
from ingest.fake.p2p import FakeP2P, make_blueprint
from ingest.fake.p2p_books import Simulation, spot_usd
from ingest.fake.replay import load_frames, load_klines
from ingest.fake.streams import Cadence
from ingest.fake.ws import WsLimits

LOOPBACK = "127.0.0.1"
log = logging.getLogger(__name__)


def build_http_app(blueprints: Sequence[Blueprint] = (),
                   extensions: Mapping[str, Any] | None = None) -> Flask:
    """A Flask app serving these blueprints; `extensions` is where they find their state."""
    app = Flask("p2pdash_fake_exchange")
    app.config.update(JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    app.json.compact = True
    app.extensions.update(extensions or {})
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s", self.requestline, code)


class HttpServer:
    """A threaded werkzeug server on a free loopback port, run by a daemon thread."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server(LOOPBACK, 0, app, threaded=True,
                                   request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fake-exchange-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WsServer:
    """A `websockets` server on a free loopback port, run by a daemon thread.

    Its request line limit is the library's default 8 KB (a longer URL is answered 414),
    as on the real exchange: it is not raised here, nor anywhere for tests.
    """

    def __init__(self, state: binance.FakeBinance, ping_interval: float | None) -> None:
        self._server = serve_websockets(state.handle, LOOPBACK, 0,
                                        process_request=state.process_request,
                                        create_connection=state.connection_factory,
                                        ping_interval=ping_interval, compression=None,
                                        logger=logging.getLogger("ingest.fake.ws"))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fake-exchange-ws", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self._server.socket.getsockname()[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()


class FakeExchange:
    """Binance spot (and any extra blueprints) on loopback, with scenario controls."""

    def __init__(self, mode: str = "simulate", *, symbols: Sequence[str] = (), seed: int = 1,
                 speed: float = 1.0, clock: SimClock | None = None,
                 cadence: Cadence | None = None, frames: Sequence[str | Path] = (),
                 klines: Mapping[tuple[str, str], str | Path] | None = None,
                 exchange_info: str | Path | None = None,
                 blueprints: Sequence[Blueprint] = (),
                 extensions: Mapping[str, Any] | None = None,
                 ws_ping_interval: float | None = 20.0, max_streams: int = 1024,
                 weight_limit: int = 6000, pace: float = 0.0, p2p: bool = False,
                 record: bool = False, ws_limits: WsLimits | None = None) -> None:
        if mode not in ("simulate", "replay"):
            raise ValueError(f"mode must be 'simulate' or 'replay'; got {mode!r}")
        self.clock = clock or SimClock(speed)
        recorded = [frame for path in frames for frame in load_frames(path)]
        self.market = SimulatedMarket(seed) if mode == "simulate" else None
        self.binance = binance.FakeBinance(
            clock=self.clock, market=self.market,
            frames=recorded, klines={key: load_klines(path) for key, path in
                                     (klines or {}).items()},
            info=orjson.loads(Path(exchange_info).read_bytes()) if exchange_info else None,
            symbols=symbols, cadence=cadence, weight_limit=weight_limit,
            max_streams=max_streams, pace=pace, record=record, ws_limits=ws_limits)
        if p2p:
            blueprints = [*blueprints, self._p2p_blueprint()]
        app = build_http_app([binance.bp, *blueprints],
                             {"fake_binance": self.binance, **(extensions or {})})
        self._http = HttpServer(app)
        self._ws = WsServer(self.binance, ws_ping_interval)

    @property
    def rest_url(self) -> str:
        return self._http.url

    @property
    def ws_url(self) -> str:
        return self._ws.url

    def _p2p_blueprint(self) -> Blueprint:
        """P2P books of the three exchanges, priced from this fake's own spot market."""
        if self.market is None:
            raise ValueError("simulated P2P books need mode='simulate'")
        simulation = Simulation(spot=spot_usd(self.market, self.clock), clock=self.clock)
        self.p2p = FakeP2P(simulation=simulation)
        return make_blueprint(self.p2p)

    def environment(self) -> dict[str, str]:
        """Settings that point p2pdash's connectors at this fake."""
        return {"BINANCE_REST_URL": self.rest_url, "BINANCE_WS_URL": self.ws_url,
                "BINANCE_P2P_URL": self.rest_url, "OKX_P2P_URL": self.rest_url,
                "BYBIT_P2P_URL": self.rest_url}

    def start(self) -> FakeExchange:
        """Start serving; returns self, whose URLs are then live."""
        self._http.start()
        self._ws.start()
        log.info("fake exchange serving", extra={"rest_url": self.rest_url,
                                                 "ws_url": self.ws_url})
        return self

    def stop(self) -> None:
        """Close every connection and stop both servers."""
        self.binance.drop_connections()
        self._ws.stop()
        self._http.stop()

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
