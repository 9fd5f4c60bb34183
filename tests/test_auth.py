"""Signing in and out: cookies, CSRF, the next page, remember-me, the first admin."""

from __future__ import annotations

from sqlalchemy import text

from app import create_app
from app.auth import commands
from tests.conftest import AuthActions, add_user, make_settings, password_for
from tests.dash_calls import callback_body

HOME_CALLBACK = "..home-database.children...home-feeds.children...home-warnings.children.."


def _audit(app, action: str) -> list[dict]:
    with app.extensions["p2pdash"].engine.connect() as connection:
        rows = connection.execute(text("SELECT actor, action, target, ip, details FROM audit_log "
                                       "WHERE action = :action ORDER BY id"), {"action": action})
        return [dict(row) for row in rows.mappings()]


def test_anonymous_page_get_is_sent_to_login_with_next(client):
    response = client.get("/some/page?x=1")
    assert response.status_code == 302
    assert response.location == "/login?next=/some/page%3Fx%3D1"


def test_anonymous_callback_post_gets_401_json(app, dash_app, client):
    client.get("/login")
    response = client.post("/_dash-update-component",
                           json=callback_body(dash_app.callback_map, HOME_CALLBACK))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"


def test_login_sets_httponly_lax_session_and_goes_to_next(app, auth):
    add_user(app, "trader")
    response = auth.login("trader", password_for("trader"), next_path="/admin")
    assert response.status_code == 302 and response.location == "/admin"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "remember_token" not in " ".join(response.headers.getlist("Set-Cookie"))
    success = _audit(app, "login.success")
    assert [(row["actor"], row["ip"]) for row in success] == [("trader", "127.0.0.1")]


def test_login_never_redirects_off_site(app, auth):
    add_user(app, "kiosk")
    response = auth.login("kiosk", password_for("kiosk"), next_path="//evil.example/x")
    assert response.location == "/"


def test_cookies_are_secure_over_https(app):
    add_user(app, "kiosk")
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post("/login", base_url="https://localhost", data={
        "csrf_token": token, "username": "kiosk", "password": password_for("kiosk"),
        "remember": "y"}, headers={"Referer": "https://localhost/login"})
    cookies = response.headers.getlist("Set-Cookie")
    assert response.status_code == 302
    assert len(cookies) == 2 and all("Secure" in cookie for cookie in cookies)
    assert all("HttpOnly" in cookie for cookie in cookies)


def test_remember_me_survives_the_end_of_the_session(app, auth):
    add_user(app, "kiosk")
    response = auth.login("kiosk", password_for("kiosk"), remember=True)
    remember = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember")]
    assert remember and "HttpOnly" in remember[0] and "Expires=" in remember[0]
    auth.client.delete_cookie("session")  # the browser closed: the session cookie is gone
    assert auth.client.get("/").status_code == 200


def test_wrong_password_is_refused_and_audited(app, auth):
    add_user(app, "analyst")
    response = auth.login("analyst", "not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert auth.client.get("/").status_code == 302
    failure = _audit(app, "login.failure")
    assert [(row["target"], row["details"]["reason"]) for row in failure] == \
        [("analyst", "wrong password")]
    assert "not-the-password" not in str(failure)


def test_login_form_without_csrf_token_is_refused(app, client):
    add_user(app, "kiosk")
    response = client.post("/login", data={"username": "kiosk",
                                           "password": password_for("kiosk")})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_dash_callback_without_csrf_token_is_refused(app, dash_app, client_as):
    kiosk = client_as("kiosk")
    body = callback_body(dash_app.callback_map, HOME_CALLBACK)
    assert kiosk.post("/_dash-update-component", json=body).status_code == 400
    headers = AuthActions(kiosk).dash_headers()
    wrong = {"X-CSRFToken": headers["X-CSRFToken"][:-4] + "AAAA"}
    assert kiosk.post("/_dash-update-component", json=body, headers=wrong).status_code == 400
    assert kiosk.post("/_dash-update-component", json=body, headers=headers).status_code == 200


def test_csrf_cookie_is_readable_by_script_and_lax(client_as):
    kiosk = client_as("kiosk")
    response = kiosk.get("/")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("_csrf"))
    assert "HttpOnly" not in cookie and "SameSite=Lax" in cookie


def test_logout_ends_the_session(app, auth, client_as):
    add_user(app, "trader")
    auth.login("trader", password_for("trader"))
    assert auth.client.get("/").status_code == 200
    assert auth.logout().location == "/login"
    assert auth.client.get("/").status_code == 302


def test_disabling_a_user_ends_their_session(app, client_as):
    trader = client_as("trader")
    commands.set_active(app.extensions["p2pdash"].engine, "test", "trader", False)
    assert trader.get("/").status_code == 302
    assert AuthActions(app.test_client()).login("trader", password_for("trader")).status_code \
        == 401


def test_password_reset_ends_sessions(app, client_as):
    trader = client_as("trader")
    commands.reset_password(app.extensions["p2pdash"].engine, "test", "trader",
                            "a-brand-new-password")
    assert trader.get("/").status_code == 302


def test_fresh_install_login_page_says_how_to_create_the_first_admin(client):
    page = client.get("/login").get_data(as_text=True)
    assert "p2pdash users create NAME --role admin" in page
    assert "P2PDASH_ADMIN_PASSWORD" in page


def test_login_page_drops_the_hint_once_a_user_exists(app, client):
    add_user(app, "admin")
    assert "users create" not in client.get("/login").get_data(as_text=True)


def test_admin_password_variable_creates_the_first_admin_once(database_url, tmp_path):
    settings = make_settings(tmp_path, DATABASE_URL=database_url,
                             P2PDASH_ADMIN_USER="root", P2PDASH_ADMIN_PASSWORD="first-admin-pw")
    server = create_app(settings)
    client = server.test_client()
    assert AuthActions(client).login("root", "first-admin-pw").status_code == 302
    again = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                     P2PDASH_ADMIN_PASSWORD="other-password-x"))
    with again.extensions["p2pdash"].engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM users")) == 1
    server.extensions["p2pdash"].engine.dispose()
    again.extensions["p2pdash"].engine.dispose()


def test_no_default_password_exists(app, auth):
    for username, password in (("admin", "admin"), ("admin", "password"), ("root", "root")):
        assert auth.login(username, password).status_code == 401


def test_login_page_says_when_the_database_is_down(tmp_path, port):
    settings = make_settings(tmp_path, DATABASE_URL=f"postgresql://u:p@127.0.0.1:{port}/none")
    client = create_app(settings).test_client()
    assert client.get("/").status_code == 302
    page = client.get("/login")
    assert page.status_code == 503
    assert "database is unreachable" in page.get_data(as_text=True)
    token = page.get_data(as_text=True).split('type="hidden" value="')[1].split('"')[0]
    posted = client.post("/login", data={"csrf_token": token, "username": "a",
                                         "password": "b"})
    assert posted.status_code == 503
    api = client.get("/api/v1/me", headers={"X-API-Key": "p2pd_00000000_x"})
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "database_unreachable"
