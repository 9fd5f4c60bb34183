"""Sign-in hardening: throttling an attacker cannot turn against the user, server-side
sessions that end, POST-only logout, and two-factor sign-in with TOTP and recovery codes."""

from __future__ import annotations

import re
import threading
import time

import pyotp
import pytest
import requests
from sqlalchemy import text

from app import create_app
from app.auth import commands
from app.config import ConfigError, load_settings
from layouts import ids
from tests.conftest import AuthActions, add_user, make_settings, password_for
from tests.test_admin import Admin

ATTACKER = "203.0.113.66"
USER_AT_HOME = "198.51.100.7"
CODE_LIST = re.compile(r"<li>([a-z0-9]{4}(?:-[a-z0-9]{4}){3})</li>")


@pytest.fixture
def make_app(database_url, tmp_path):
    """A factory of apps on this test's database with extra settings."""
    made = []

    def make(**env: str):
        server = create_app(make_settings(tmp_path, DATABASE_URL=database_url, **env))
        made.append(server)
        return server

    yield make
    for server in made:
        server.extensions["p2pdash"].engine.dispose()


def engine_of(app):
    return app.extensions["p2pdash"].engine


def audit_actions(app, prefix: str) -> list[tuple[str, dict]]:
    with engine_of(app).connect() as connection:
        rows = connection.execute(text("SELECT action, details FROM audit_log "
                                       "WHERE action LIKE :p ORDER BY id"), {"p": prefix + "%"})
        return [tuple(row) for row in rows]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match[1]


def login_from(app, address: str, username: str, password: str, client=None, **form):
    """Post the login form from `address`; return the response."""
    client = client or app.test_client()
    token = AuthActions(client).csrf_token()
    return client.post("/login", data={"csrf_token": token, "username": username,
                                       "password": password, **form},
                       environ_base={"REMOTE_ADDR": address})


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


# --- throttling ---------------------------------------------------------------------------

def test_an_attackers_wrong_passwords_do_not_lock_the_user_out(app):
    add_user(app, "admin")
    for n in range(5):
        assert login_from(app, ATTACKER, "admin", f"guess-{n}-wrong").status_code == 401
    attacker = login_from(app, ATTACKER, "admin", password_for("admin"))
    assert attacker.status_code == 429, "the attacker's own address is locked for admin"
    user = login_from(app, USER_AT_HOME, "admin", password_for("admin"))
    assert user.status_code == 302, "the right password from the user's address still works"
    actions = [action for action, _details in audit_actions(app, "login.")]
    assert actions[-3:] == ["login.throttled", "login.slowed", "login.success"]


def test_one_users_typos_do_not_lock_the_others_behind_the_same_address(app):
    add_user(app, "trader")
    add_user(app, "analyst")
    office = "192.0.2.10"
    for n in range(5):
        assert login_from(app, office, "trader", f"typo-{n}-wrong").status_code == 401
    assert login_from(app, office, "trader", password_for("trader")).status_code == 429
    assert login_from(app, office, "analyst", password_for("analyst")).status_code == 302


def test_a_spraying_address_is_stopped_for_every_username(make_app):
    app = make_app(P2PDASH_LOGIN_ADDRESS_MAX_FAILURES="6")
    add_user(app, "kiosk")
    for n in range(6):
        assert login_from(app, ATTACKER, f"user{n}", "spray-password").status_code == 401
    refused = login_from(app, ATTACKER, "kiosk", password_for("kiosk"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert login_from(app, USER_AT_HOME, "kiosk", password_for("kiosk")).status_code == 302
    throttled = [details for action, details in audit_actions(app, "login.throttled")]
    assert throttled[-1]["scope"] == "login:address"


def test_the_slow_down_grows_per_username_and_stops_at_its_ceiling(make_app):
    app = make_app(P2PDASH_LOGIN_SLOWDOWN_MAX_SECONDS="0.4")
    add_user(app, "trader")
    for n in range(7):  # from seven addresses: no address or pair limit is reached
        assert login_from(app, f"10.0.0.{n}", "trader", "wrong-password-x").status_code == 401
    started = time.monotonic()
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader")).status_code == 302
    assert time.monotonic() - started >= 0.4
    delays = [details["delay_seconds"] for _action, details in audit_actions(app, "login.slowed")]
    assert delays == [0.25, 0.4, 0.4]


def _guess(base: str, barrier: threading.Barrier, statuses: list[int], n: int) -> None:
    with requests.Session() as browser:
        token = csrf_of(browser.get(f"{base}/login", timeout=30).text)
        barrier.wait(timeout=30)
        answer = browser.post(f"{base}/login", timeout=60, allow_redirects=False, data={
            "csrf_token": token, "username": "admin", "password": f"parallel-guess-{n}"})
        statuses.append(answer.status_code)


def test_thirty_parallel_guesses_check_at_most_five_passwords(app):
    from werkzeug.serving import make_server

    add_user(app, "admin")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    barrier, statuses = threading.Barrier(30), []
    base = f"http://127.0.0.1:{server.server_port}"
    guessers = [threading.Thread(target=_guess, args=(base, barrier, statuses, n))
                for n in range(30)]
    try:
        for guesser in guessers:
            guesser.start()
        for guesser in guessers:
            guesser.join(timeout=120)
    finally:
        server.shutdown()
    assert sorted(statuses) == [401] * 5 + [429] * 25
    assert len(audit_actions(app, "login.failure")) == 5


# --- sessions and logout ------------------------------------------------------------------

def test_a_copied_session_cookie_fails_after_logout(app, client_as):
    trader = client_as("trader")
    copied = trader.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert signed_in(thief), "the copy works while the session lives"
    assert AuthActions(trader).logout().location == "/login"
    assert not signed_in(thief)
    assert not signed_in(trader)


def test_a_copied_remember_cookie_fails_after_logout(app):
    add_user(app, "kiosk")
    wall = app.test_client()
    assert login_from(app, USER_AT_HOME, "kiosk", password_for("kiosk"), wall,
                      remember="y").status_code == 302
    copied = wall.get_cookie("remember_token").value
    thief = app.test_client()
    thief.set_cookie("remember_token", copied)
    assert signed_in(thief)
    AuthActions(wall).logout()
    other = app.test_client()
    other.set_cookie("remember_token", copied)
    assert not signed_in(other)


def test_get_logout_does_not_sign_out_and_post_needs_the_csrf_token(client_as):
    trader = client_as("trader")
    page = trader.get("/logout")
    assert page.status_code == 200 and 'method="post"' in page.get_data(as_text=True)
    assert signed_in(trader)
    assert trader.post("/logout").status_code == 400
    assert signed_in(trader)


def _components(node, kind: str):
    """Every component of a type in a Dash layout tree (as JSON)."""
    if isinstance(node, list):
        for child in node:
            yield from _components(child, kind)
    elif isinstance(node, dict):
        if node.get("type") == kind:
            yield node["props"]
        yield from _components(node.get("props", {}).get("children"), kind)


def test_the_navbar_signs_out_with_a_form_post_carrying_the_token(client_as):
    trader = client_as("trader")
    layout = trader.get("/_dash-layout").get_json()
    form = next(props for props in _components(layout, "Form") if props["action"] == "/logout")
    assert form["method"] == "POST"
    hidden, button = (child["props"] for child in form["children"])
    assert hidden["name"] == "csrf_token" and hidden["type"] == "hidden"
    assert button["id"] == ids.NAV_LOGOUT and button["type"] == "submit"
    assert trader.post("/logout", data={"csrf_token": hidden["value"]}).location == "/login"
    assert not signed_in(trader)


def _age_sessions(app, **columns: str) -> None:
    assignments = ", ".join(f"{name} = now() - interval '{ago}'" for name, ago in columns.items())
    with engine_of(app).begin() as connection:
        connection.execute(text(f"UPDATE sessions SET {assignments}"))


def test_an_idle_session_is_refused(make_app):
    app = make_app(P2PDASH_SESSION_IDLE_MINUTES="30")
    add_user(app, "trader")
    client = app.test_client()
    login_from(app, USER_AT_HOME, "trader", password_for("trader"), client)
    _age_sessions(app, last_seen_at="20 minutes")
    assert signed_in(client)
    _age_sessions(app, last_seen_at="31 minutes")
    assert not signed_in(client)


def test_a_session_past_its_absolute_expiry_is_refused_even_if_busy(app):
    add_user(app, "kiosk")
    wall = app.test_client()
    login_from(app, USER_AT_HOME, "kiosk", password_for("kiosk"), wall, remember="y")
    _age_sessions(app, last_seen_at="3 days")
    assert signed_in(wall), "remember-me sessions have no idle limit (wall screens sleep)"
    _age_sessions(app, expires_at="1 second")
    assert not signed_in(wall)


def test_a_normal_session_ends_after_the_maximum_days(app):
    add_user(app, "trader")
    client = app.test_client()
    login_from(app, USER_AT_HOME, "trader", password_for("trader"), client)
    with engine_of(app).connect() as connection:
        lifetime = connection.scalar(text("SELECT expires_at - created_at FROM sessions"))
    assert round(lifetime.total_seconds() / 86400) == 7


def test_the_session_row_keeps_a_clean_bounded_address_and_agent(app):
    add_user(app, "trader")
    client = app.test_client()
    token = AuthActions(client).csrf_token()
    agent = "Evil\x1b[31m\x07\tBrowser\x85" + "x" * 1000
    client.post("/login", data={"csrf_token": token, "username": "trader",
                                "password": password_for("trader")},
                headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": USER_AT_HOME})
    with engine_of(app).connect() as connection:
        row = connection.execute(text("SELECT ip, user_agent FROM sessions")).one()
    assert row.ip == USER_AT_HOME
    assert row.user_agent.startswith("Evil[31mBrowser") and len(row.user_agent) == 256
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", row.user_agent)


def _account_post(client, path: str, **form: str):
    token = csrf_of(client.get("/account").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **form})


def test_changing_the_password_ends_the_other_sessions(app, client_as):
    laptop, phone = client_as("analyst"), client_as("analyst")
    answer = _account_post(laptop, "/account/password", current=password_for("analyst"),
                           new="a-new-long-password", again="a-new-long-password")
    assert answer.status_code == 302
    assert "Password changed; 1 other session ended" in \
        laptop.get("/account").get_data(as_text=True)
    assert signed_in(laptop) and not signed_in(phone)


def test_a_wrong_current_password_changes_nothing(app, client_as):
    laptop, phone = client_as("analyst"), client_as("analyst")
    _account_post(laptop, "/account/password", current="not-my-password",
                  new="a-new-long-password", again="a-new-long-password")
    assert "not your current password" in laptop.get("/account").get_data(as_text=True)
    assert signed_in(phone)


def test_a_role_change_ends_the_users_sessions(app, client_as):
    trader = client_as("trader")
    commands.set_role(engine_of(app), "test", "trader", "analyst")
    assert not signed_in(trader)


def test_users_see_and_end_their_own_sessions(app, client_as):
    laptop, phone = client_as("trader"), client_as("trader")
    page = laptop.get("/account").get_data(as_text=True)
    assert page.count("/end\"") == 2 and "127.0.0.1" in page
    _account_post(laptop, "/account/sessions/end-others")
    assert signed_in(laptop) and not signed_in(phone)
    with engine_of(app).connect() as connection:
        own = connection.scalar(text("SELECT id FROM sessions WHERE revoked_at IS NULL"))
    _account_post(laptop, f"/account/sessions/{own}/end")
    assert not signed_in(laptop)


def test_one_user_cannot_end_anothers_session(app, client_as):
    trader, analyst = client_as("trader"), client_as("analyst")
    with engine_of(app).connect() as connection:
        theirs = connection.scalar(text(
            "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = 'analyst'"))
    _account_post(trader, f"/account/sessions/{theirs}/end")
    assert signed_in(analyst)


def test_an_admin_signs_a_user_out_everywhere(app, dash_app, client_as):
    wall = app.test_client()
    add_user(app, "kiosk")
    login_from(app, USER_AT_HOME, "kiosk", password_for("kiosk"), wall, remember="y")
    admin = Admin(app, dash_app, client_as("admin"))
    answer = admin.click(ids.ADMIN_MANAGE_FEEDBACK, ids.ADMIN_SIGN_OUT_USER,
                         {f"{ids.ADMIN_MANAGE_USER}.value": "kiosk"})
    assert "kiosk is signed out everywhere (1 session)" in answer
    assert not signed_in(wall)
    assert signed_in(admin.client)
    assert audit_actions(app, "user.sign_out_everywhere")[-1][1] == {"sessions_ended": 1}


def test_session_settings_are_validated_naming_the_variable(tmp_path):
    base = {"P2PDASH_DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 40}
    defaults = load_settings(environ=base, env_file=None)
    assert (defaults.session_idle_minutes, defaults.session_max_days) == (120, 7)
    assert defaults.require_admin_2fa is False
    for name, value in (("P2PDASH_SESSION_IDLE_MINUTES", "soon"),
                        ("P2PDASH_SESSION_MAX_DAYS", "0"),
                        ("P2PDASH_REQUIRE_ADMIN_2FA", "maybe"),
                        ("P2PDASH_LOGIN_ADDRESS_MAX_FAILURES", "-1")):
        with pytest.raises(ConfigError, match=f"^{name}:"):
            load_settings(environ={**base, name: value}, env_file=None)
    with pytest.raises(ConfigError, match=r"^P2PDASH_SESSION_IDLE_MINUTES:.*MAX_DAYS"):
        load_settings(environ={**base, "P2PDASH_SESSION_MAX_DAYS": "1",
                               "P2PDASH_SESSION_IDLE_MINUTES": "1441"}, env_file=None)


# --- two-factor sign-in -------------------------------------------------------------------

def enrol(client, password: str | None = None,
          path: str = "/account/2fa/setup") -> tuple[str, list[str]]:
    """Enrol TOTP through the page as a person would: read the key, type the code."""
    page = client.get(path).get_data(as_text=True)
    assert "<svg" in page, "the QR code is drawn by the app"
    key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page)[1].replace(" ", "")
    form = {"csrf_token": csrf_of(page), "code": pyotp.TOTP(key).now()}
    shown = client.post(path, data={**form, "current": password} if password else form)
    codes = CODE_LIST.findall(shown.get_data(as_text=True))
    assert shown.status_code == 200 and len(codes) == 10
    return key, codes


def next_code(key: str) -> str:
    """The code of the next time step: accepted (clock drift) and newer than the last one."""
    return pyotp.TOTP(key).at(time.time() + 30)


def send_code(client, code: str):
    page = client.get("/login/2fa").get_data(as_text=True)
    return client.post("/login/2fa", data={"csrf_token": csrf_of(page), "code": code},
                       environ_base={"REMOTE_ADDR": USER_AT_HOME})


def test_totp_enrolment_then_sign_in_with_a_code_once(app, client_as):
    key, _codes = enrol(client_as("trader"), password_for("trader"))
    with engine_of(app).connect() as connection:
        stored = bytes(connection.scalar(text("SELECT secret FROM user_totp")))
    assert key.encode() not in stored, "the secret is encrypted at rest"
    first = app.test_client()
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader"), first) \
        .location == "/login/2fa"
    assert not signed_in(first), "the password alone does not sign in"
    code = next_code(key)
    assert send_code(first, code).status_code == 302
    assert signed_in(first)
    account = first.get("/account").get_data(as_text=True)
    assert key not in account and f"{key[:4]} {key[4:8]}" not in account, \
        "the key is never shown back"
    replay = app.test_client()
    login_from(app, USER_AT_HOME, "trader", password_for("trader"), replay)
    assert send_code(replay, code).status_code == 401, "a code is accepted once"
    assert not signed_in(replay)
    assert [d.get("kind") for _a, d in audit_actions(app, "2fa.success")] == ["totp"]
    assert code not in str(audit_actions(app, ""))


def test_an_admin_resets_a_lost_phone_and_the_user_enrols_again(app, dash_app, client_as):
    trader = client_as("trader")
    enrol(trader, password_for("trader"))
    admin = Admin(app, dash_app, client_as("admin"))
    done = admin.click(ids.ADMIN_MANAGE_FEEDBACK, ids.ADMIN_RESET_2FA, {
        f"{ids.ADMIN_MANAGE_USER}.value": "trader", f"{ids.ADMIN_MANAGE_ROLE}.value": "kiosk",
        f"{ids.ADMIN_RESET_PASSWORD}.value": ""})
    assert "Two-factor sign-in of trader is off; 1 session ended" in done
    assert not signed_in(trader), "the sessions, maybe the thief's, end"
    again = app.test_client()
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader"), again) \
        .status_code == 302 and signed_in(again), "the password alone signs in now"
    assert audit_actions(app, "2fa.reset")[-1][1] == {"sessions_ended": 1}
    refused = admin.click(ids.ADMIN_MANAGE_FEEDBACK, ids.ADMIN_RESET_2FA, {
        f"{ids.ADMIN_MANAGE_USER}.value": "trader", f"{ids.ADMIN_MANAGE_ROLE}.value": "kiosk",
        f"{ids.ADMIN_RESET_PASSWORD}.value": ""})
    assert "does not use two-factor sign-in" in refused


def test_recovery_codes_sign_in_once_each(app, client_as):
    _key, codes = enrol(client_as("analyst"), password_for("analyst"))
    with engine_of(app).connect() as connection:
        hashes = " ".join(connection.scalars(text("SELECT code_hash FROM user_recovery_codes")))
    assert not any(code.replace("-", "") in hashes for code in codes), "stored hashed"
    for expected in (302, 401):
        client = app.test_client()
        login_from(app, USER_AT_HOME, "analyst", password_for("analyst"), client)
        assert send_code(client, codes[0].upper()).status_code == expected
    assert audit_actions(app, "2fa.success")[-1][1] == {"kind": "recovery code",
                                                        "recovery_codes_left": 9}


def test_wrong_codes_are_throttled_like_passwords(app, client_as):
    key, _codes = enrol(client_as("trader"), password_for("trader"))
    client = app.test_client()
    login_from(app, USER_AT_HOME, "trader", password_for("trader"), client)
    for n in range(5):
        assert send_code(client, f"{n:06d}").status_code == 401
    refused = send_code(client, next_code(key))
    assert refused.status_code == 429 and "Too many wrong codes" in refused.get_data(as_text=True)
    assert not signed_in(client)
    assert [a for a, _d in audit_actions(app, "2fa.")][-6:] == ["2fa.failure"] * 5 + \
        ["2fa.throttled"]


def test_admins_must_enrol_when_the_server_requires_two_factors(make_app):
    app = make_app(P2PDASH_REQUIRE_ADMIN_2FA="true")
    add_user(app, "admin")
    client = app.test_client()
    answer = login_from(app, USER_AT_HOME, "admin", password_for("admin"), client)
    assert answer.location == "/login/2fa/setup"
    assert not signed_in(client)
    enrol(client, path="/login/2fa/setup")
    assert signed_in(client)
    page = client.get("/account").get_data(as_text=True)
    assert 'id="disable-2fa"' not in page
    refused = _account_post(client, "/account/2fa/disable", current=password_for("admin"))
    assert refused.status_code == 302
    assert "must keep two-factor" in client.get("/account").get_data(as_text=True)


def test_enrolling_from_a_session_needs_the_password(app, client_as):
    trader = client_as("trader")
    page = trader.get("/account/2fa/setup").get_data(as_text=True)
    key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page)[1].replace(" ", "")
    refused = trader.post("/account/2fa/setup", data={
        "csrf_token": csrf_of(page), "code": pyotp.TOTP(key).now(), "current": "wrong-one"})
    assert refused.status_code == 401
    assert "not your current password" in refused.get_data(as_text=True)
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader")).location == "/"


def test_turning_two_factors_off_needs_the_password(app, client_as):
    trader = client_as("trader")
    enrol(trader, password_for("trader"))
    _account_post(trader, "/account/2fa/disable", current="not-the-password")
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader")).location == \
        "/login/2fa"
    _account_post(trader, "/account/2fa/disable", current=password_for("trader"))
    assert login_from(app, USER_AT_HOME, "trader", password_for("trader")).location == "/"


@pytest.mark.parametrize(("target", "goes_to"), [
    ("/%0D%0ASet-Cookie:%20x=1", "/"),  # answered 500: CR LF in the Location header
    ("/%5Cevil.example", "/"),  # "/\evil.example" is "//evil.example" to browsers
    ("//evil.example", "/"), ("https://evil.example/", "/"),
    ("/spread?markets=binance:USDT/ARS", "/spread?markets=binance:USDT/ARS"),
])
def test_the_page_after_sign_in_is_a_plain_local_path(client_as, target, goes_to):
    answer = client_as("analyst").get(f"/login?next={target}")
    assert answer.status_code == 302 and answer.headers["Location"] == goes_to
