"""Status page in a real Chromium: the true system state, a working theme switch, no errors."""

from __future__ import annotations

from sqlalchemy import text

from layouts import ids


def test_home001_shows_database_and_timescaledb(dash_duo, start_as):
    start_as("kiosk", "/status")
    dash_duo.wait_for_contains_text(f"#{ids.HOME_DATABASE}", "TimescaleDB", timeout=20)
    database = dash_duo.find_element(f"#{ids.HOME_DATABASE}").text
    assert "up" in database and "2." in database
    dash_duo.wait_for_contains_text(f"#{ids.HOME_FEEDS}", "No data yet")
    assert dash_duo.find_elements(".alert-warning") == []
    assert dash_duo.get_logs() == []


def test_home002_lists_feeds_once_runs_exist(dash_duo, app, start_as):
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text("INSERT INTO runs (source, kind, status, finished_at) "
                                "VALUES ('binance_ws', 'ws_session', 'ok', now())"))
    start_as("trader", "/status")
    dash_duo.wait_for_contains_text(f"#{ids.HOME_FEEDS}", "binance_ws", timeout=20)
    assert dash_duo.get_logs() == []


def test_home003_theme_switch_sets_and_keeps_dark_mode(dash_duo, start_as):
    start_as("analyst", "/status")
    dash_duo.wait_for_element(f"#{ids.THEME_SWITCH}", timeout=20)
    theme = "return document.documentElement.getAttribute('data-bs-theme')"
    assert dash_duo.driver.execute_script(theme) == "light"
    dash_duo.find_element(f"#{ids.THEME_SWITCH}").click()
    dash_duo.wait_for_element(f"#{ids.HOME_DATABASE}")
    assert dash_duo.driver.execute_script(theme) == "dark"
    dash_duo.driver.refresh()
    dash_duo.wait_for_element(f"#{ids.THEME_SWITCH}", timeout=20)
    assert dash_duo.driver.execute_script(theme) == "dark", "the choice survives a reload"
    assert dash_duo.get_logs() == []
