"""Login throttling: five failures of a username from one address in the window, then 429
with Retry-After for that address and username, all audited."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app import create_app
from app.auth.throttle import storage_uri
from app.health import cache_status
from tests.conftest import AuthActions, add_user, make_settings, password_for

WINDOW = 3


@pytest.fixture
def short_window_app(database_url, tmp_path):
    settings = make_settings(tmp_path, DATABASE_URL=database_url,
                             P2PDASH_LOGIN_WINDOW_SECONDS=str(WINDOW))
    server = create_app(settings)
    yield server
    server.extensions["p2pdash"].engine.dispose()


def _attempts(app) -> list[tuple[str, str]]:
    with app.extensions["p2pdash"].engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT action, ip FROM audit_log WHERE action LIKE 'login.%' ORDER BY id"))
        return [tuple(row) for row in rows]


def test_thirty_wrong_passwords_get_429_from_the_sixth_on(short_window_app):
    app = short_window_app
    add_user(app, "trader")
    auth = AuthActions(app.test_client())
    statuses = [auth.login("trader", f"wrong-password-{n}") for n in range(30)]
    assert [r.status_code for r in statuses[:5]] == [401] * 5
    assert {r.status_code for r in statuses[5:]} == {429}
    retry_after = int(statuses[5].headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert "Too many failed attempts" in statuses[5].get_data(as_text=True)
    attempts = _attempts(app)
    assert [action for action, _ip in attempts] == ["login.failure"] * 5 + ["login.throttled"] * 25
    assert {ip for _action, ip in attempts} == {"127.0.0.1"}
    # Even the right password waits out the window...
    assert auth.login("trader", password_for("trader")).status_code == 429
    time.sleep(WINDOW + 0.5)
    # ...and then works again.
    assert auth.login("trader", password_for("trader")).status_code == 302
    assert _attempts(app)[-1][0] == "login.success"


def test_a_username_failing_from_many_addresses_is_slowed_not_locked(short_window_app):
    app = short_window_app
    add_user(app, "analyst")
    for n in range(5):
        client = app.test_client()
        address = {"REMOTE_ADDR": f"127.0.0.{n + 2}"}
        token = AuthActions(client).csrf_token()
        response = client.post("/login", data={"csrf_token": token, "username": "analyst",
                                               "password": "wrong-password"},
                               environ_base=address)
        assert response.status_code == 401
    other = AuthActions(app.test_client())
    assert other.login("analyst", password_for("analyst")).status_code == 302
    assert [action for action, _ip in _attempts(app)][-2:] == ["login.slowed", "login.success"]


def test_successful_logins_do_not_count(app):
    add_user(app, "kiosk")
    for _ in range(8):
        client = AuthActions(app.test_client())
        assert client.login("kiosk", password_for("kiosk")).status_code == 302


def test_default_window_is_fifteen_minutes(tmp_path):
    settings = make_settings(tmp_path)
    assert settings.login_window_seconds == 900
    assert settings.login_max_failures == 5


def test_redis_url_selects_shared_storage():
    assert storage_uri(None) == "memory://"
    assert storage_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert storage_uri("unix:///run/redis.sock") == "redis+unix:///run/redis.sock"


@pytest.fixture
def redis_url(tmp_path):
    """A private Redis server on a free loopback port, for this test only."""
    import shutil
    import subprocess

    import redis

    from db.embedded import free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run scripts/bootstrap.sh")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_with_redis_every_process_shares_the_failure_count(database_url, tmp_path, redis_url):
    settings = make_settings(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url)
    first, second = create_app(settings), create_app(settings)
    add_user(first, "trader")
    for _ in range(3):
        assert AuthActions(first.test_client()).login("trader", "wrong-one-x").status_code == 401
    for _ in range(2):
        assert AuthActions(second.test_client()).login("trader", "wrong-two-x").status_code == 401
    assert AuthActions(first.test_client()).login("trader", password_for("trader")) \
        .status_code == 429
    with first.app_context():  # the admin health item sees the same Redis
        assert cache_status() == {"backend": "redis", "ok": True, "error": None}
    for server in (first, second):
        server.extensions["p2pdash"].engine.dispose()
