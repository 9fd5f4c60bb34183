"""Admin tab and role-based pages in a real Chromium: who sees what, users and API keys."""

from __future__ import annotations

import requests

from layouts import ids
from tests.browser.views_helpers import pick
from tests.conftest import browser_sign_in, ensure_user, password_for

VIEWS = ["Overview", "Spread", "Depth", "Volume", "Candles", "Alerts", "Status"]
EXPORTERS = [*VIEWS[:6], "Export", "Status"]
# "Wall" opens the wall view (/kiosk/wall): a kiosk account's screen, an admin's preview.
ROLE_PAGES = {"kiosk": [*VIEWS, "Wall"], "trader": VIEWS, "analyst": EXPORTERS,
              "admin": [*EXPORTERS, "Admin", "Wall"]}


def _nav_names(dash_duo) -> list[str]:
    return [link.text for link in dash_duo.find_elements(f"#{ids.NAV_LINKS} a")]


def _sign_out(dash_duo) -> None:
    dash_duo.find_element(f"#{ids.NAV_LOGOUT}").click()
    dash_duo.wait_for_element("#login-submit", timeout=20)


def test_adm001_each_role_sees_only_its_pages(dash_duo, app, dash_app, port):
    for role in ROLE_PAGES:
        ensure_user(app, role)
    dash_duo.start_server(dash_app, navigate=False, port=port)
    base = dash_duo.server.url
    for role, pages in ROLE_PAGES.items():
        browser_sign_in(dash_duo, role, password_for(role))
        dash_duo.wait_for_contains_text(f"#{ids.NAV_USER}", role, timeout=20)
        assert _nav_names(dash_duo) == pages
        dash_duo.driver.get(f"{base}/admin")
        if role == "admin":
            dash_duo.wait_for_element(f"#{ids.ADMIN_TABS}", timeout=20)
            dash_duo.wait_for_contains_text(f"#{ids.ADMIN_USERS_TABLE}", "kiosk", timeout=20)
        else:
            dash_duo.wait_for_contains_text("#forbidden", "Not allowed", timeout=20)
            logs = dash_duo.get_logs()
            assert len(logs) == 1 and "403" in logs[0]["message"], logs
            dash_duo.wait_for_page(base, timeout=20)
        _sign_out(dash_duo)
    assert dash_duo.get_logs() == []


def test_adm002_in_app_navigation_to_a_forbidden_page_shows_403(dash_duo, start_as):
    start_as("trader")
    dash_duo.driver.execute_script(
        "window.history.pushState({}, '', '/admin');"
        "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));")
    dash_duo.wait_for_contains_text(f"#{ids.FORBIDDEN}", "Not allowed", timeout=20)
    assert dash_duo.find_elements(f"#{ids.ADMIN_TABS}") == []
    assert dash_duo.get_logs() == []


def _select(dash_duo, component_id: str, value: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(dash_duo.find_element(f"#{component_id}")).select_by_value(value)


def _open_tab(dash_duo, label: str) -> None:
    next(tab for tab in dash_duo.find_elements(f"#{ids.ADMIN_TABS} .nav-link")
         if tab.text == label).click()


def _me(base: str, key: str) -> requests.Response:
    return requests.get(f"{base}/api/v1/me", headers={"X-API-Key": key}, timeout=10)


def test_adm003_admin_creates_a_user_and_a_key_then_revokes_it(dash_duo, start_as):
    start_as("admin", "/admin")
    base = dash_duo.server.url
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_USERS_TABLE}", "admin", timeout=20)
    dash_duo.find_element(f"#{ids.ADMIN_NEW_USERNAME}").send_keys("walter")
    _select(dash_duo, ids.ADMIN_NEW_ROLE, "analyst")
    dash_duo.find_element(f"#{ids.ADMIN_NEW_PASSWORD}").send_keys("walter-password-1")
    dash_duo.find_element(f"#{ids.ADMIN_CREATE_USER}").click()
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_USER_FEEDBACK}", "Created walter (analyst)")
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_USERS_TABLE}", "walter")

    _open_tab(dash_duo, "API keys")
    pick(dash_duo, f"#{ids.ADMIN_KEY_USER}", "walter (analyst: read, export, alerts)")
    dash_duo.find_element(f"#{ids.ADMIN_KEY_NAME}").send_keys("models")
    dash_duo.find_element(f"#{ids.ADMIN_CREATE_KEY}").click()
    dash_duo.wait_for_element(f"#{ids.ADMIN_NEW_KEY_TEXT}", timeout=20)
    key = dash_duo.find_element(f"#{ids.ADMIN_NEW_KEY_TEXT}").text
    assert key.startswith("p2pd_")
    assert dash_duo.find_element(f"#{ids.ADMIN_NEW_KEY} [title=Copy] svg"), "a copy button"
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_KEYS_TABLE}", key[:13])
    assert key not in dash_duo.find_element(f"#{ids.ADMIN_KEYS_TABLE}").text
    assert _me(base, key).json() == {"username": "walter", "role": "analyst",
                                     "scopes": ["read"]}

    dash_duo.find_element(f"#{ids.ADMIN_KEYS_TABLE} button.btn-outline-danger").click()
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_KEY_FEEDBACK}", "revoked")
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_KEYS_TABLE}", "revoked")
    assert _me(base, key).status_code == 401

    dash_duo.driver.refresh()
    dash_duo.wait_for_element(f"#{ids.ADMIN_TABS}", timeout=20)
    assert key not in dash_duo.driver.page_source, "a key is shown once only"
    assert dash_duo.find_elements(f"#{ids.ADMIN_NEW_KEY_TEXT}") == []
    assert dash_duo.get_logs() == []
