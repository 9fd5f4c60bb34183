"""The wall screen in a real Chromium: a setup link signs a fresh browser in with no form,
the playlist rotates at its dwell times with nothing interactive on screen, a deploy
reloads it, a revoked device stops; a database outage makes the panels STALE and a server
outage shows OFFLINE, both clearing by themselves."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from app.kiosk import build, devices
from db.schema import tickers_24h
from tests.conftest import make_settings
from tests.spot_support import database_down, wait_until

KIOSK_ENV = {"SPOT_SYMBOLS": "BTCUSDT", "P2PDASH_KIOSK_REFRESH_SECONDS": "1",
             "P2PDASH_KIOSK_HEARTBEAT_SECONDS": "1", "P2PDASH_KIOSK_STALE_SECONDS": "8"}
VISIBLE_CONTROLS = """
return Array.from(document.querySelectorAll('a, button, input, select, textarea, label'))
    .filter(el => el.offsetParent !== null).map(el => el.outerHTML.slice(0, 80));
"""


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(tmp_path, DATABASE_URL=database_url, **KIOSK_ENV)


class Ticking:
    """A spot feed stand-in: a fresh 24h ticker every half second, through outages."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        price = 60000.0
        while not self.done.wait(0.5):
            price += 1.5
            # The database may be down: skip a beat.
            with contextlib.suppress(Exception), self.engine.begin() as connection:
                connection.execute(insert(tickers_24h).values(
                    exchange="binance", symbol="BTCUSDT", ts=datetime.now(UTC),
                    last=price, open=59000, high=price, low=58000, change_pct=1.25,
                    volume=10, quote_volume=600000, trades=42))

    def __enter__(self) -> Ticking:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()
        self.thread.join(5)


class Proxy:
    """A TCP forwarder in front of the test server, to take "the server" away and back."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = _free_port()
        self.listener: socket.socket | None = None
        self.open: set[socket.socket] = set()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self.listener:
            self.listener.close()
            self.listener = None
        for sock in list(self.open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self.open.discard(sock)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_outage(pg_cluster, database_url):
    """A context manager: this test's database refuses every connection while in it."""
    return lambda: database_down(pg_cluster, database_url)


@pytest.fixture
def open_setup_link(dash_duo, app, dash_app, port):
    """Create device "lobby" (with a playlist if given), start the server, open its setup
    link in Chromium (at `base`, default the server) and wait for the wall screen."""

    def open_link(playlist: str | None = None, base: str | None = None) -> None:
        state = app.extensions["p2pdash"]
        if playlist:
            devices.save_playlist(state.engine, "test", "loop", playlist)
        _device, link = devices.create(state.engine, state.settings, "test", "lobby",
                                       "loop" if playlist else None)
        dash_duo.start_server(dash_app, navigate=False, port=port)
        dash_duo.driver.get((base or dash_duo.server.url) + link[link.index("/kiosk/setup/"):])
        dash_duo.wait_for_element("#kiosk-root", timeout=20)

    return open_link


def _title(dash_duo) -> str:
    return dash_duo.find_element("#kiosk-title").text


def _attribute(dash_duo, selector: str, name: str):
    return dash_duo.driver.execute_script(
        "const el = document.querySelector(arguments[0]);"
        "return el ? el.getAttribute(arguments[1]) : null;", selector, name)


def test_kio001_link_signs_in_rotates_shows_nothing_to_click_reloads_and_stops(
        dash_duo, app, open_setup_link):
    engine = app.extensions["p2pdash"].engine
    with Ticking(engine):
        open_setup_link(playlist="wall 3\n/status 2\n/nowhere 2")
        assert "/kiosk/loop" in dash_duo.driver.current_url  # no form on the way
        dash_duo.wait_for_contains_text(".kiosk-ticker", "60,", timeout=20)
        dash_duo.wait_for_contains_text("#kiosk-clock", ":", timeout=5)
        assert dash_duo.find_element("#kiosk-zone").text == "UTC"
        assert _title(dash_duo).startswith("Wall")
        assert dash_duo.driver.execute_script(VISIBLE_CONTROLS) == []

        started = time.monotonic()
        wait_until(lambda: _title(dash_duo).startswith("Status"), 10, message="the status page")
        dash_duo.driver.switch_to.frame(dash_duo.find_element(".kiosk-page iframe"))
        dash_duo.wait_for_element("#_pages_content", timeout=10)
        assert dash_duo.driver.execute_script(VISIBLE_CONTROLS) == []
        dash_duo.driver.switch_to.default_content()
        wait_until(lambda: _title(dash_duo).startswith("This view is not available"), 10,
                   message="the notice of a page that does not exist")
        wait_until(lambda: _title(dash_duo).startswith("Wall"), 10, message="the wall again")
        assert 6 <= time.monotonic() - started <= 11  # 2 s + 2 s + 3 s of dwell, roughly
        assert _attribute(dash_duo, ".kiosk-page iframe", "src") == "about:blank"

        dash_duo.driver.execute_script("window.beforeDeploy = true;")
        app.extensions[build.EXTENSION] = "next-build"
        wait_until(lambda: _attribute(dash_duo, "#kiosk-root", "data-build") == "next-build"
                   and dash_duo.driver.execute_script("return !window.beforeDeploy;"), 15,
                   message="a reload after the deploy")

        assert dash_duo.get_logs() == []

        devices.revoke(engine, "test", "lobby")
        wait_until(lambda: "/kiosk/stopped" in dash_duo.driver.current_url, 10,
                   message="the revoked screen to stop")
        assert dash_duo.find_element("#kiosk-message-title").text == "Revoked"
    # Between the revocation and the next check-in the live tick was refused: 401s only
    # (and the renderer's own complaint about reading such an answer).
    logs = dash_duo.get_logs()
    assert all(" 401 " in entry["message"] or "body stream already read" in entry["message"]
               for entry in logs), logs


@pytest.mark.slow
def test_kio002_database_down_is_stale_server_down_is_offline_both_clear(
        dash_duo, app, port, open_setup_link, database_outage):
    engine = app.extensions["p2pdash"].engine
    proxy = Proxy(port)
    proxy.start()
    try:
        with Ticking(engine):
            open_setup_link(base=f"http://127.0.0.1:{proxy.port}")
            dash_duo.wait_for_contains_text(".kiosk-ticker", "60,", timeout=20)
            assert _attribute(dash_duo, ".kiosk-ticker", "data-kiosk-stale") is None

            with database_outage():
                wait_until(lambda: _attribute(dash_duo, ".kiosk-ticker", "data-kiosk-stale")
                           is not None, 20, message="STALE while the database is down")
                assert "s" in _attribute(dash_duo, ".kiosk-ticker", "data-kiosk-age")
                assert dash_duo.find_element(".kiosk-ticker .kiosk-price").text  # kept, dimmed
                proxy.stop()
                dash_duo.wait_for_element("#kiosk-offline", timeout=15)
                wait_until(lambda: dash_duo.find_element("#kiosk-offline").is_displayed(), 15,
                           message="OFFLINE while the server is unreachable")
                assert dash_duo.find_element("#kiosk-offline-since").text.endswith("UTC")
                proxy.start()
                wait_until(lambda: not dash_duo.find_element("#kiosk-offline").is_displayed(),
                           20, message="OFFLINE to clear")
            wait_until(lambda: _attribute(dash_duo, ".kiosk-ticker", "data-kiosk-stale")
                       is None, 30, message="STALE to clear")
            assert "/kiosk/wall" in dash_duo.driver.current_url
    finally:
        proxy.stop()
