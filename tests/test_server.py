"""The server as `p2pdash run` serves it holds up to slow clients and oversized requests."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from app import server as served

SLOW_CLIENTS = 16  # twice the threads: gunicorn's gthread worker stopped answering at 8
MANY_SLOW_CLIENTS = 1100


@pytest.fixture
def base(app, settings, monkeypatch) -> Iterator[str]:
    monkeypatch.setattr(served, "READ_SECONDS", 2)
    monkeypatch.setattr(served, "CHECK_SECONDS", 1)
    server = served.make_server(settings, app, port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    server.task_dispatcher.shutdown()


def trickle(base: str) -> socket.socket:
    """A client that has sent half a request line and then nothing more."""
    host, port = base.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return client


def test_slow_clients_leave_the_threads_to_everyone_else(base):
    slow = [trickle(base) for _ in range(SLOW_CLIENTS)]
    try:
        started = time.monotonic()
        answer = requests.get(f"{base}/healthz", timeout=5)
        assert answer.status_code in (200, 503)
        assert time.monotonic() - started < 5
    finally:
        for client in slow:
            client.close()


def test_a_thousand_slow_clients_leave_room_for_new_visitors(base, monkeypatch):
    """Waitress stops accepting at its connection limit: at 1,000 (less its own two
    sockets) the next visitor waited in the backlog for a slow client to be cut off."""
    # No slow client is cut off during the test, so a visitor gets in only if there is
    # room; the generous timeout is for a loaded machine, far below the cut-off.
    monkeypatch.setattr(served, "READ_SECONDS", 120)
    slow: list[socket.socket] = []
    try:
        slow.extend(trickle(base) for _ in range(MANY_SLOW_CLIENTS))
        for attempt in range(3):  # fresh connections, each past all the slow ones
            answer = requests.get(f"{base}/healthz", timeout=15,
                                  headers={"Connection": "close"})
            assert answer.status_code in (200, 503), attempt
    finally:
        for client in slow:
            client.close()


def test_the_open_file_limit_is_raised_for_the_connections(monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        limit = served.connection_limit()
        raised, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert raised == min(hard, served.CONNECTIONS + served.FD_RESERVE)
        assert limit == min(served.CONNECTIONS, raised - served.FD_RESERVE)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_request_that_does_not_arrive_in_time_is_cut_off(base):
    client = trickle(base)
    client.settimeout(10)
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):  # closed, or reset: either is cut off
        assert client.recv(1024) == b"", "the server closed the connection"
    assert time.monotonic() - started < 8
    client.close()


def test_an_oversized_body_is_refused_without_being_read(base):
    host, port = base.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.settimeout(10)
    client.sendall(b"POST /api/v1/ingest/p2p-offers HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/json\r\nContent-Length: %d\r\n\r\n" % (served.MAX_BODY_BYTES + 1))
    assert client.recv(1024).split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"
    client.close()


def test_a_body_over_the_apps_limit_gets_413_before_it_is_parsed(client_as):
    kiosk = client_as("kiosk")
    body = b'{"output": "x", "inputs": [], "changedPropIds": [], "pad": "' + b"x" * 2_000_000 \
        + b'"}'
    answer = kiosk.post("/_dash-update-component", data=body,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_dash_is_set_up_before_the_first_requests_arrive_together(app, base):
    """Dash sets itself up on a first request, unguarded: concurrent first requests raced."""
    dash_app = app.extensions["dash"]
    assert dash_app._got_first_request == {"pages": True, "setup_server": True}
    assert any("_pages_content.children" in key for key in dash_app.callback_map)
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(
        requests.get(f"{base}/login", timeout=30).status_code)) for _ in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * SLOW_CLIENTS


def test_every_request_thread_keeps_its_database_connection(database_url, tmp_path):
    """With fewer pooled connections than threads, a busy moment opened overflow connections
    and closed them again: each new backend planned its first queries on cold caches."""
    from app import create_app
    from tests.conftest import make_settings

    server = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                      P2PDASH_THREADS="7"))
    engine = server.extensions["p2pdash"].engine
    try:
        with contextlib.ExitStack() as busy:
            held = [busy.enter_context(engine.connect()) for _ in range(7)]
            backends = {connection.connection.dbapi_connection.info.backend_pid
                        for connection in held}
        with contextlib.ExitStack() as busy_again:
            again = {busy_again.enter_context(engine.connect())
                     .connection.dbapi_connection.info.backend_pid for _ in range(7)}
        assert again == backends, "the same seven backends serve the next busy moment"
    finally:
        engine.dispose()
