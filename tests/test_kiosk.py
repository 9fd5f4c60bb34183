"""Kiosk devices over HTTP: the setup link signs a browser in once, with no form; bad
links get plain pages, are audited and throttled; the check-in reports the device's state,
playlist and build, and renews its session; a revoked device stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app import audit
from app.kiosk import devices, playlists
from db.schema import kiosk_devices, sessions
from tests.conftest import AuthActions


@pytest.fixture
def engine_of(app):
    return app.extensions["p2pdash"].engine


def _create(app, name="lobby", playlist=None) -> str:
    state = app.extensions["p2pdash"]
    _device, link = devices.create(state.engine, state.settings, "test", name, playlist)
    return link


def _path(link: str) -> str:
    return link[link.index("/kiosk/setup/"):]


def _actions(engine, prefix: str) -> list[str]:
    return [entry["action"] for entry in audit.entries(engine, action=prefix)]


def test_kio_setup_link_signs_in_once_as_the_device(app, engine_of):
    link = _create(app)
    assert link.startswith("http://127.0.0.1:") and len(link.rsplit("/", 1)[1]) >= 40
    screen = app.test_client()
    response = screen.get(_path(link))
    assert response.status_code == 302 and response.location == "/kiosk/wall"
    beat = screen.get("/kiosk/api/heartbeat").get_json()
    assert beat["device"] == "ok" and beat["playlist"] == "wall" and beat["build"]
    assert beat["playlist_hash"] == playlists.fingerprint(list(playlists.WALL_ONLY))
    assert screen.get("/kiosk/wall").status_code == 200

    again = app.test_client().get(_path(link))
    assert again.status_code == 410 and b"used already" in again.data
    assert "kiosk.setup.success" in _actions(engine_of, "kiosk.setup")
    assert "kiosk.setup.failure" in _actions(engine_of, "kiosk.setup")
    with engine_of.connect() as connection:
        stored = connection.execute(select(kiosk_devices.c.setup_token_hash)).scalar_one()
    assert link.rsplit("/", 1)[1] not in stored  # only the hash is kept


def test_kio_device_reaches_nothing_but_what_a_kiosk_may(app):
    screen = app.test_client()
    screen.get(_path(_create(app)))
    assert screen.get("/admin").status_code == 403
    assert screen.get("/exports").status_code == 403
    assert screen.get("/api/v1/me").status_code == 401
    assert screen.get("/").status_code == 200


def test_kio_wrong_token_is_a_plain_page_audited_and_throttled(app, engine_of):
    client = app.test_client()
    for _ in range(5):
        response = client.get("/kiosk/setup/not-a-token")
        assert response.status_code == 404 and b"not valid" in response.data
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/kiosk/api/heartbeat").get_json()["device"] == "signed_out"
    throttled = client.get("/kiosk/setup/not-a-token")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert _actions(engine_of, "kiosk.setup").count("kiosk.setup.failure") == 5
    assert "kiosk.setup.throttled" in _actions(engine_of, "kiosk.setup")


def test_kio_expired_link_signs_nobody_in(app, engine_of):
    link = _create(app)
    with engine_of.begin() as connection:
        connection.execute(update(kiosk_devices).values(
            setup_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    response = app.test_client().get(_path(link))
    assert response.status_code == 410 and b"expired" in response.data


def test_kio_revoked_device_stops_and_its_link_is_dead(app, engine_of):
    link = _create(app)
    screen = app.test_client()
    screen.get(_path(link))
    state = app.extensions["p2pdash"]
    assert devices.revoke(state.engine, "test", "lobby") == 1
    assert screen.get("/kiosk/api/heartbeat").get_json()["device"] == "revoked"
    assert screen.get("/kiosk/wall").status_code == 302  # signed out: no page any more
    assert app.test_client().get(_path(link)).status_code == 404
    with pytest.raises(devices.DeviceError):
        devices.new_link(state.engine, state.settings, "test", "lobby")


def test_kio_new_link_replaces_the_old_screen(app):
    state = app.extensions["p2pdash"]
    first = app.test_client()
    first.get(_path(_create(app)))
    second = app.test_client()
    second.get(_path(devices.new_link(state.engine, state.settings, "test", "lobby")))
    assert second.get("/kiosk/api/heartbeat").get_json()["device"] == "ok"
    assert first.get("/kiosk/api/heartbeat").get_json()["device"] == "revoked"


def test_kio_check_in_follows_the_playlist_and_renews_the_session(app, engine_of):
    state = app.extensions["p2pdash"]
    screen = app.test_client()
    screen.get(_path(_create(app)))
    devices.save_playlist(state.engine, "test", "lobby-loop", "wall 10\n/spread 20")
    devices.set_playlist(state.engine, "test", "lobby", "lobby-loop")
    with engine_of.begin() as connection:
        connection.execute(update(sessions).values(
            expires_at=datetime.now(UTC) + timedelta(days=3)))
    beat = screen.get("/kiosk/api/heartbeat?showing=Wall%201/2").get_json()
    assert beat["playlist"] == "lobby-loop"
    with engine_of.connect() as connection:
        expires = connection.execute(select(sessions.c.expires_at)
                                     .where(sessions.c.revoked_at.is_(None))).scalar_one()
        showing = connection.execute(select(kiosk_devices.c.showing)).scalar_one()
    assert expires > datetime.now(UTC) + timedelta(days=29)
    assert showing == "Wall 1/2"


def test_kio_start_address_opens_the_devices_playlist_after_setup(app, engine_of):
    state = app.extensions["p2pdash"]
    screen = app.test_client()
    screen.get(_path(_create(app)))
    assert screen.get("/kiosk").location == "/kiosk/wall"
    devices.save_playlist(state.engine, "test", "lobby-loop", "wall 10\n/spread 20")
    devices.set_playlist(state.engine, "test", "lobby", "lobby-loop")
    assert screen.get("/kiosk").location == "/kiosk/lobby-loop"
    assert app.test_client().get("/kiosk").location == "/kiosk/stopped?why=signed_out"
    devices.revoke(state.engine, "test", "lobby")
    assert screen.get("/kiosk").location == "/kiosk/stopped?why=revoked"


def test_kio_a_signed_in_user_previews_without_device_state(client_as):
    admin = client_as("admin")
    beat = admin.get("/kiosk/api/heartbeat").get_json()
    assert beat["device"] == "user" and "playlist" not in beat
    assert admin.get("/kiosk/wall").status_code == 200
    assert client_as("trader").get("/kiosk/wall").status_code == 403


def test_kio_wall_callback_answers_a_device(app, dash_app):
    from dash._callback import GLOBAL_CALLBACK_MAP

    from tests.dash_calls import callback_body

    screen = app.test_client()
    screen.get(_path(_create(app)))
    key = next(key for key in {**GLOBAL_CALLBACK_MAP, **dash_app.callback_map}
               if "kiosk-wall-panels" in key)
    body = callback_body(dash_app.callback_map, key)
    body["outputs"] = [{"id": {"type": output, "index": 0}, "property": prop}
                       for output, prop in (("kiosk-wall-panels", "children"),
                                            ("kiosk-spread", "figure"),
                                            ("kiosk-spread-marks", "data"),
                                            ("kiosk-spread-head", "children"))]
    body["state"] = [{"id": {"type": "kiosk-wall-config", "index": 0}, "property": "data",
                      "value": {"markets": [], "symbols": ["BTCUSDT"], "missing": ["X"]}},
                     {"id": {"type": "kiosk-spread-marks", "index": 0}, "property": "data",
                      "value": None}]
    headers = AuthActions(screen).dash_headers()
    response = screen.post("/_dash-update-component", json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "data-ts" in response.get_data(as_text=True)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "at least one view"),
    ("wall 1", "dwell"),
    ("http://evil.example 10", "a view is"),
    ("//evil.example 10", "a view is"),
])
def test_kio_playlist_text_is_checked(text, problem):
    with pytest.raises(playlists.PlaylistError, match=problem):
        playlists.parse(text)


def test_kio_playlist_text_round_trips():
    views = playlists.parse("# lobby\nwall 30\n/spread?market=binance:USDT/ARS&range=1d 20\n"
                            "/candles")
    assert views == [{"view": "wall", "dwell": 30},
                     {"view": "/spread?market=binance:USDT/ARS&range=1d", "dwell": 20},
                     {"view": "/candles", "dwell": playlists.DEFAULT_DWELL}]
    assert playlists.parse(playlists.as_text(views)) == views


def test_kio_a_change_says_what_it_is_measured_over(app):
    from callbacks.kiosk import change_text, since_text

    now = int(datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    with app.app_context():
        assert since_text(None, now) == "24h"
        assert since_text(now - 23 * 3600 * 1000, now) == "24h"  # the oldest hourly bucket
        assert since_text(now - 2 * 3600 * 1000 - 5 * 60_000, now) == "since 09:55"
    assert change_text(101.0, 100.0, "since 09:55") == ("\u25b2 +1.00% since 09:55", "up")
    assert change_text(None, 100.0) == ("", "flat")
