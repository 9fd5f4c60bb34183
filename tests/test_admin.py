"""The admin tab's callbacks through the real callback route, as the admin's browser calls them."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy import text

from app.auth import users
from app.health import system_health
from callbacks.admin_health import NO_LEADER
from db.locks import INGEST_LEADER_LOCK
from ingest.runs import start_run
from layouts import ids
from tests.conftest import AuthActions, ensure_user
from tests.dash_calls import callback_body


class Admin:
    """An admin's session that triggers callbacks by their first output id."""

    def __init__(self, app, dash_app, client) -> None:
        self.app, self.dash_app, self.client = app, dash_app, client
        self.headers = AuthActions(client).dash_headers()

    def key(self, output_id: str) -> str:
        return next(key for key in self.dash_app.callback_map
                    if key.startswith((f"..{output_id}.", f"{output_id}.")))

    def call(self, output_id: str, values: dict | None = None, body: dict | None = None,
             status: int = 200, changed: str | None = None) -> str:
        key = self.key(output_id)
        body = body or callback_body(self.dash_app.callback_map, key, values, changed)
        response = self.client.post("/_dash-update-component", json=body, headers=self.headers)
        assert response.status_code == status, response.get_data(as_text=True)[:500]
        return json.dumps(response.get_json()) if status == 200 else ""

    def click(self, output_id: str, button: str, values: dict | None = None) -> str:
        return self.call(output_id, {f"{button}.n_clicks": 1, **(values or {})},
                         changed=f"{button}.n_clicks")


@pytest.fixture
def admin(app, dash_app, client_as) -> Admin:
    return Admin(app, dash_app, client_as("admin"))


def _audit(app) -> list[tuple]:
    with app.extensions["p2pdash"].engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT actor, action, target FROM audit_log WHERE action NOT LIKE 'login%' "
            "ORDER BY id"))]


def _create(admin: Admin, username: str, role: str, password: str = "a-long-password") -> str:
    return admin.click(ids.ADMIN_USER_FEEDBACK, ids.ADMIN_CREATE_USER, {
        f"{ids.ADMIN_NEW_USERNAME}.value": username, f"{ids.ADMIN_NEW_ROLE}.value": role,
        f"{ids.ADMIN_NEW_PASSWORD}.value": password, f"{ids.ADMIN_USERS_VERSION}.data": 3})


def test_create_user_and_see_it_listed(app, admin):
    answer = _create(admin, "walter", "analyst")
    assert "Created walter (analyst)" in answer
    assert '"data": 4' in answer, "the users list is told to refresh"
    listing = admin.call(ids.ADMIN_USERS_TABLE)
    assert "walter" in listing and "analyst" in listing
    assert _audit(app)[-1] == ("admin", "user.create", "walter")


def test_create_user_errors_are_shown_not_raised(app, admin):
    assert "at least 10 characters" in _create(admin, "shorty", "kiosk", "short")
    assert "exists already" in _create(admin, "ADMIN", "kiosk")
    assert "usernames are" in _create(admin, "bad name!", "kiosk")


def _manage(admin: Admin, button: str, username: str, **values: str) -> str:
    return admin.click(ids.ADMIN_MANAGE_FEEDBACK, button, {
        f"{ids.ADMIN_MANAGE_USER}.value": username,
        f"{ids.ADMIN_MANAGE_ROLE}.value": values.get("role", "kiosk"),
        f"{ids.ADMIN_RESET_PASSWORD}.value": values.get("password", "")})


def test_manage_user_role_state_and_password(app, admin):
    ensure_user(app, "trader")
    engine = app.extensions["p2pdash"].engine
    assert "trader is now analyst" in _manage(admin, ids.ADMIN_SET_ROLE, "trader", role="analyst")
    assert "trader disabled" in _manage(admin, ids.ADMIN_DISABLE_USER, "trader")
    assert not users.find(engine, "trader").is_active
    assert "trader enabled" in _manage(admin, ids.ADMIN_ENABLE_USER, "trader")
    assert "sessions have ended" in _manage(admin, ids.ADMIN_RESET_PASSWORD_GO, "trader",
                                            password="another-password-9")
    assert AuthActions(app.test_client()).login("trader", "another-password-9").status_code \
        == 302
    assert [action for _actor, action, target in _audit(app) if target == "trader"] == [
        "user.create", "user.set_role", "user.disable", "user.enable", "user.reset_password"]


def test_the_last_admin_is_kept(admin):
    assert "last active admin" in _manage(admin, ids.ADMIN_DISABLE_USER, "admin")
    assert "last active admin" in _manage(admin, ids.ADMIN_SET_ROLE, "admin", role="kiosk")


def _revoke_body(key_id: int) -> dict:
    component = {"index": key_id, "type": ids.ADMIN_REVOKE_KEY}
    prop = json.dumps(component, sort_keys=True, separators=(",", ":")) + ".n_clicks"
    return {"output": None, "outputs": [
        {"id": ids.ADMIN_KEY_FEEDBACK, "property": "children"},
        {"id": ids.ADMIN_KEYS_VERSION, "property": "data"}],
        "inputs": [[{"id": component, "property": "n_clicks", "value": 1}]],
        "state": [{"id": ids.ADMIN_KEYS_VERSION, "property": "data", "value": 0}],
        "changedPropIds": [prop]}


def test_create_a_key_shown_once_then_revoke_it(app, admin):
    ensure_user(app, "analyst")
    answer = admin.click(ids.ADMIN_NEW_KEY, ids.ADMIN_CREATE_KEY, {
        f"{ids.ADMIN_KEY_USER}.value": "analyst", f"{ids.ADMIN_KEY_NAME}.value": "models",
        f"{ids.ADMIN_KEY_SCOPES}.value": ["read", "export"],
        f"{ids.ADMIN_KEY_EXPIRES}.value": 30})
    key = answer.split('"children": "p2pd_')[1].split('"')[0]
    key = "p2pd_" + key
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 200
    listing = admin.call(ids.ADMIN_KEYS_TABLE)
    assert key[:13] in listing and key not in listing and "active" in listing
    with app.extensions["p2pdash"].engine.connect() as connection:
        key_id = connection.scalar(text("SELECT id FROM api_keys"))
    body = _revoke_body(key_id)
    body["output"] = admin.key(ids.ADMIN_KEY_FEEDBACK)
    assert "revoked" in admin.call(ids.ADMIN_KEY_FEEDBACK, body=body)
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 401
    assert [action for _a, action, _t in _audit(app)][-2:] == ["key.create", "key.revoke"]


def test_a_key_wider_than_the_role_is_refused_in_the_form(app, admin):
    ensure_user(app, "trader")
    answer = admin.click(ids.ADMIN_NEW_KEY, ids.ADMIN_CREATE_KEY, {
        f"{ids.ADMIN_KEY_USER}.value": "trader", f"{ids.ADMIN_KEY_SCOPES}.value": ["read"]})
    assert "may not hold read" in answer and "p2pd_" not in answer


def test_audit_log_filters_by_actor_action_and_time(app, admin):
    _create(admin, "walter", "analyst")
    AuthActions(app.test_client()).login("walter", "wrong-password-x")
    everything = admin.call(ids.ADMIN_AUDIT_TABLE, {f"{ids.ADMIN_AUDIT_SINCE}.value": "1h"})
    assert "user.create" in everything and "login.failure" in everything
    only_admin = _rows_of(admin.call(ids.ADMIN_AUDIT_TABLE, {
        f"{ids.ADMIN_AUDIT_ACTOR}.value": "adm", f"{ids.ADMIN_AUDIT_SINCE}.value": "all"}))
    assert "user.create" in only_admin and "login.failure" not in only_admin
    failures = _rows_of(admin.call(ids.ADMIN_AUDIT_TABLE, {
        f"{ids.ADMIN_AUDIT_ACTION}.value": "login.failure"}))
    assert "wrong password" in failures and "user.create" not in failures
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET at = now() - interval '2 days'"))
    recent = admin.call(ids.ADMIN_AUDIT_TABLE, {f"{ids.ADMIN_AUDIT_SINCE}.value": "24h"})
    assert "user.create" not in _rows_of(recent)


def _rows_of(answer: str) -> str:
    """The table part of an answer that also carries dropdown options."""
    return answer.split('"options"', maxsplit=1)[0].rsplit('"admin-', 1)[0]


def _runs(app) -> tuple[int, int]:
    engine = app.extensions["p2pdash"].engine
    with start_run(engine, "binance_p2p", "p2p_poll", "USDT/ARS") as good:
        good.add(received=20, inserted=20)
    with start_run(engine, "okx_p2p", "p2p_poll", "USDT/ARS") as bad:
        bad.add(received=3, inserted=2, rejected=1)
        bad.error("price is not a number", b'{"price": "abc"}')
    return good.id, bad.id


def test_runs_filter_and_open_a_run_with_its_errors(app, admin):
    _good, bad = _runs(app)
    both = admin.call(ids.ADMIN_RUNS_TABLE)
    assert "binance_p2p" in both and "okx_p2p" in both
    partial = _rows_of(admin.call(ids.ADMIN_RUNS_TABLE,
                                  {f"{ids.ADMIN_RUNS_STATUS}.value": "partial"}))
    assert "okx_p2p" in partial and "binance_p2p" not in partial
    by_source = _rows_of(admin.call(ids.ADMIN_RUNS_TABLE,
                                    {f"{ids.ADMIN_RUNS_SOURCE}.value": "binance_p2p"}))
    assert "binance_p2p" in by_source and "okx_p2p" not in by_source
    component = {"index": bad, "type": ids.ADMIN_OPEN_RUN}
    body = {"output": admin.key(ids.ADMIN_RUN_DETAIL),
            "outputs": {"id": ids.ADMIN_RUN_DETAIL, "property": "children"},
            "inputs": [[{"id": component, "property": "n_clicks", "value": 1}]], "state": [],
            "changedPropIds": [json.dumps(component, sort_keys=True, separators=(",", ":"))
                               + ".n_clicks"]}
    detail = admin.call(ids.ADMIN_RUN_DETAIL, body=body)
    assert f"Run {bad}" in detail and "price is not a number" in detail
    assert '\\"price\\": \\"abc\\"' in detail and "partial" in detail


def test_health_shows_no_leader_then_the_session_that_holds_the_lock(app, admin, database_url):
    assert NO_LEADER in admin.call(ids.ADMIN_HEALTH)
    dsn = database_url.replace("+psycopg", "")
    with psycopg.connect(dsn, application_name="p2pdash-ingest-test", autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (INGEST_LEADER_LOCK,))
        shown = admin.call(ids.ADMIN_HEALTH)
    assert "p2pdash-ingest-test" in shown and "127.0.0.1" in shown and NO_LEADER not in shown
    assert "process-local" in shown and "TimescaleDB" in shown


def test_health_marks_old_feeds_stale(app, admin):
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (source, kind, status, started_at, finished_at) VALUES "
            "('binance_p2p', 'p2p_poll', 'ok', now() - interval '2 hours', "
            "now() - interval '2 hours'), ('okx_p2p', 'p2p_poll', 'ok', now(), now())"))
    shown = admin.call(ids.ADMIN_HEALTH)
    old_feed = shown[shown.index('"binance_p2p"'):shown.index('"okx_p2p"')]
    new_feed = shown[shown.index('"okx_p2p"'):]
    assert '"stale"' in old_feed and '"fresh"' not in old_feed
    assert '"fresh"' in new_feed and '"stale"' not in new_feed


def test_health_shows_each_tables_oldest_row_and_how_long_it_is_kept(app, admin):
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty) "
            "VALUES ('binance', 'BTCUSDT', '2026-03-01T10:00:00Z', 1, 1, 2, 1)"))
    with app.app_context():
        kept = system_health()["retention"]
    assert kept["book_tickers"] == {"oldest": "2026-03-01T10:00:00+00:00", "keep_days": 14}
    assert kept["candles"] == {"oldest": None, "keep_days": 0}
    shown = admin.call(ids.ADMIN_HEALTH)
    assert "Data kept (retention)" in shown and "2026-03-01 10:00:00" in shown
    assert "14 days" in shown and "for ever" in shown


def _by_button(admin: Admin, button: str, values: dict) -> str:
    """Trigger the callback that `button` fires (several share their first output)."""
    key = next(key for key, entry in admin.dash_app.callback_map.items()
               if any(dep["id"] == button for dep in entry["inputs"]))
    body = callback_body(admin.dash_app.callback_map, key, {f"{button}.n_clicks": 1, **values},
                         f"{button}.n_clicks")
    return admin.call(ids.ADMIN_KIOSK_RESULT, body=body)


def test_kiosk_device_created_shown_once_then_moved_and_revoked_from_the_tab(app, admin):
    answer = _by_button(admin, ids.ADMIN_KIOSK_CREATE, {
        f"{ids.ADMIN_KIOSK_NAME}.value": "lobby", f"{ids.ADMIN_KIOSK_PLAYLIST}.value": None})
    link = answer.split("/kiosk/setup/")[1].split('"')[0]
    screen = app.test_client()
    assert screen.get(f"/kiosk/setup/{link}").location == "/kiosk/wall"
    assert link not in admin.call(ids.ADMIN_KIOSK_DEVICES)  # the table never shows it
    saved = _by_button(admin, ids.ADMIN_KIOSK_PLAYLIST_SAVE, {
        f"{ids.ADMIN_KIOSK_PLAYLIST_NAME}.value": "loop",
        f"{ids.ADMIN_KIOSK_PLAYLIST_TEXT}.value": "wall 10\n/spread 20"})
    assert "2 views" in saved
    bad = _by_button(admin, ids.ADMIN_KIOSK_PLAYLIST_SAVE, {
        f"{ids.ADMIN_KIOSK_PLAYLIST_NAME}.value": "broken",
        f"{ids.ADMIN_KIOSK_PLAYLIST_TEXT}.value": "wall forever"})
    assert "danger" in bad  # shown in the form, not raised
    moved = _by_button(admin, ids.ADMIN_KIOSK_SET_PLAYLIST, {
        f"{ids.ADMIN_KIOSK_DEVICE}.value": "lobby",
        f"{ids.ADMIN_KIOSK_MANAGE_PLAYLIST}.value": "loop"})
    assert "lobby shows loop" in moved
    assert screen.get("/kiosk/api/heartbeat").get_json()["playlist"] == "loop"
    revoked = _by_button(admin, ids.ADMIN_KIOSK_REVOKE, {
        f"{ids.ADMIN_KIOSK_DEVICE}.value": "lobby"})
    assert "lobby revoked (1 session(s) ended)" in revoked
    assert screen.get("/kiosk/api/heartbeat").get_json()["device"] == "revoked"
    actions = [action for _a, action, _t in _audit(app) if action.startswith("kiosk")]
    assert actions == ["kiosk.create", "kiosk.setup.success", "kiosk.playlist.save",
                       "kiosk.set_playlist", "kiosk.revoke"]
