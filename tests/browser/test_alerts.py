"""Alerts page in Chromium: a trader builds a rule in the form while its preview replays the
last day, saves it, and when the market crosses the threshold sees the bell, the Firing
badge, the alerting period on the spread chart and the rule's history. A kiosk sees only
what is alerting and can create nothing; another trader sees and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.alerts import service
from app.state import current_of
from db import alerts as alert_store
from db.schema import alert_rules
from ingest.alerts import AlertEngine
from layouts import ids
from tests.alerts.conftest import actor_for, receiver, simple_book  # noqa: F401
from tests.browser.views_helpers import layout, pick, set_live_refresh, wait_traces
from tests.conftest import AuthActions, add_user, browser_sign_in, make_settings, password_for
from tests.dash_calls import callback_body
from tests.spot_support import wait_until

MARKETS = ("binance:USDT/ARS", "okx:USDT/ARS")
MARKET = MARKETS[0]
THRESHOLD = "1100"
NAME = "ARS ask above 1100"
# Ten-minute polls over the last day; the best ask stands above the threshold in three
# separate stretches (the indices of the polls there), so the rule would have fired 3 times.
POLLS = 143
ABOVE = {20, 21, 60, 100, 101, 102}


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(tmp_path, DATABASE_URL=database_url, P2P_MARKETS=",".join(MARKETS),
                         SPOT_SYMBOLS="BTCUSDT", ALERTS_GROUP_WAIT_SECONDS="0")


@pytest.fixture
def a_day(app):
    """A day of books of MARKET, the best ask above THRESHOLD three times; the last at now."""
    engine = current_of(app).engine
    now = datetime.now(UTC).replace(microsecond=0)
    for poll in range(POLLS):
        at = now - timedelta(minutes=10 * (POLLS - poll))
        simple_book(engine, MARKET, at, "1150" if poll in ABOVE else "1000", "990")
    simple_book(engine, MARKET, now, "1000", "990")


def cross(app) -> int:
    """A new book above the threshold, evaluated by the leader's evaluator; its run id."""
    state = current_of(app)
    run_id = simple_book(state.engine, MARKET, datetime.now(UTC).replace(microsecond=0),
                         "1200", "990")
    AlertEngine(state.settings, state.engine).evaluate_all()
    return run_id


def a_rule(app, owner: service.Actor, name: str = NAME, threshold: str = THRESHOLD):
    """A rule of `owner` on MARKET's best ask, created through the service."""
    state = current_of(app)
    return service.create_rule(state.engine, state.settings, owner, {
        "name": name, "metric": "p2p.best_ask", "market": MARKET, "condition": ">",
        "threshold": threshold, "labels": {"severity": "warning"}}).rule


def rule_count(app) -> int:
    with current_of(app).engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(alert_rules))


# ---- driving the page ----------------------------------------------------------------------

def press(dash_duo, element) -> None:
    """Click a button as its click event (the form grows while the preview renders, so a
    pointer click can land beside it)."""
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def press_id(dash_duo, component_id: str) -> None:
    press(dash_duo, dash_duo.wait_for_element(f"#{component_id}", timeout=20))


def open_tab(dash_duo, label: str) -> None:
    """Click a tab of the Alerts page by its label."""
    wait_until(lambda: dash_duo.driver.execute_script(
        "const tab = [...document.querySelectorAll(arguments[0])]"
        ".find(a => a.innerText === arguments[1]); if (tab) { tab.click(); } return !!tab;",
        f"#{ids.ALERTS_TABS} .nav-link", label), message=f"the {label} tab")


def type_into(dash_duo, component_id: str, text: str) -> None:
    """Type into a (debounced) input and commit it with Enter."""
    element = dash_duo.find_element(f"#{component_id}")
    element.clear()
    element.send_keys(text + "\n")


def grid_cells(dash_duo, grid_id: str, column: str) -> list[str]:
    """The texts of one column of an AG Grid, top to bottom."""
    return dash_duo.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(c => c.innerText);",
        f"#{grid_id} .ag-center-cols-container .ag-row [col-id='{column}']")


def wait_cell(dash_duo, grid_id: str, column: str, text: str, timeout: float = 30) -> None:
    wait_until(lambda: text in grid_cells(dash_duo, grid_id, column), timeout=timeout,
               interval=0.25, message=f"{text!r} in the {column} column of {grid_id}")


def slot(dash_duo, field: str) -> str:
    """The error shown next to a form field."""
    return dash_duo.driver.execute_script(
        "const el = document.getElementById(JSON.stringify({field: arguments[0], "
        "type: arguments[1]})); return el ? el.innerText : '';", field, ids.ALERTS_FIELD_ERROR)


def shot(dash_duo, name: str, *, dark: bool = False) -> None:
    """Screenshots for a person to look at: light, and dark too if asked."""
    dash_duo.driver.save_screenshot(f"/tmp/alerts_{name}.png")
    if not dark:
        return
    mode = "return document.documentElement.getAttribute('data-bs-theme');"
    press_id(dash_duo, ids.THEME_SWITCH)
    wait_until(lambda: dash_duo.driver.execute_script(mode) == "dark", message="dark mode")
    dash_duo.driver.execute_script("window.scrollTo(0, 0);")
    dash_duo.driver.save_screenshot(f"/tmp/alerts_{name}_dark.png")
    press_id(dash_duo, ids.THEME_SWITCH)
    wait_until(lambda: dash_duo.driver.execute_script(mode) == "light", message="light mode")


# ---- a trader's rule, from the form to the charts ------------------------------------------

def refuse_an_empty_form(dash_duo, app) -> None:
    press_id(dash_duo, ids.ALERTS_NEW)
    dash_duo.wait_for_text_to_equal(f"#{ids.ALERTS_EDITOR_TITLE}", "New rule", timeout=20)
    press_id(dash_duo, ids.ALERTS_SAVE)
    wait_until(lambda: slot(dash_duo, "name") == "is required", message="the name's error")
    assert "required" in slot(dash_duo, "threshold")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_FORM_FEEDBACK}", "Not saved", timeout=20)
    assert rule_count(app) == 0, "nothing is saved from a bad form"


def preview_and_save(dash_duo, app) -> None:
    type_into(dash_duo, ids.ALERTS_FORM_NAME, NAME)
    wait_until(lambda: slot(dash_duo, "name") == "", message="the name's error gone")
    type_into(dash_duo, ids.ALERTS_FORM_THRESHOLD, THRESHOLD)
    dash_duo.wait_for_text_to_equal(f"#{ids.ALERTS_PREVIEW_TEXT}",
                                    "Would have fired 3 times in the last 24 h", timeout=30)
    _line, fired = wait_traces(dash_duo, ids.ALERTS_PREVIEW_GRAPH, lambda t: len(t) == 2)
    assert len(fired["x"]) == 3 and all(y == 1150 for y in fired["y"])
    shapes = layout(dash_duo, ids.ALERTS_PREVIEW_GRAPH)["shapes"]
    assert [s["y0"] for s in shapes if s["type"] == "line"] == [1100]
    assert len([s for s in shapes if s["type"] == "rect"]) == 3, "three alerting periods"
    assert slot(dash_duo, "threshold") == ""
    shot(dash_duo, "preview", dark=True)

    press_id(dash_duo, ids.ALERTS_SAVE)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_FORM_FEEDBACK}", "saved", timeout=20)
    assert rule_count(app) == 1
    wait_cell(dash_duo, ids.ALERTS_GRID, "name", NAME)
    wait_cell(dash_duo, ids.ALERTS_GRID, "state", "Normal")


def see_it_fire(dash_duo, app) -> int:
    set_live_refresh(dash_duo, "2")
    run_id = cross(app)
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_BELL_COUNT}", "1", timeout=30)
    wait_cell(dash_duo, ids.ALERTS_GRID, "state", "Firing")
    assert grid_cells(dash_duo, ids.ALERTS_GRID, "value") == ["1,200 ARS"]
    press_id(dash_duo, ids.NAV_BELL)
    dash_duo.wait_for_contains_text(f"#{ids.NAV_BELL_LIST}", NAME, timeout=20)
    dash_duo.driver.execute_script("window.scrollTo(0, 0);")
    shot(dash_duo, "firing", dark=True)
    press_id(dash_duo, ids.NAV_BELL)
    return run_id


def open_history(dash_duo, run_id: int) -> None:
    open_tab(dash_duo, "History")
    wait_cell(dash_duo, ids.ALERTS_HISTORY_GRID, "to_state", "Firing")
    assert grid_cells(dash_duo, ids.ALERTS_HISTORY_GRID, "run_id") == [str(run_id)]
    assert grid_cells(dash_duo, ids.ALERTS_HISTORY_GRID, "value") == ["1,200"]
    link = dash_duo.find_element(f"#{ids.ALERTS_HISTORY_GRID} [col-id='chart'] a")
    assert link.get_attribute("href").split("?", 1)[1].startswith("market=binance")
    assert "&at=" in link.get_attribute("href")
    shot(dash_duo, "history")


def see_it_on_the_spread_chart(dash_duo) -> None:
    dash_duo.wait_for_page(f"{dash_duo.server_url}/spread?bucket=1h", timeout=20)
    wait_traces(dash_duo, ids.SPREAD_GRAPH, lambda t: len(t) == 3)
    wait_until(lambda: any(s["type"] == "rect" for s in
                           layout(dash_duo, ids.SPREAD_GRAPH).get("shapes", [])),
               message="the alerting period shaded on the spread chart")
    shapes = layout(dash_duo, ids.SPREAD_GRAPH)["shapes"]
    assert [(s["yref"], s["y0"]) for s in shapes if s["type"] == "line"] == [("y", 1100)]
    shot(dash_duo, "spread", dark=True)


@pytest.mark.usefixtures("a_day")
def test_alrt001_a_trader_previews_saves_and_sees_the_rule_fire(dash_duo, app, start_as):
    start_as("trader", "/alerts")
    refuse_an_empty_form(dash_duo, app)
    preview_and_save(dash_duo, app)
    run_id = see_it_fire(dash_duo, app)
    open_history(dash_duo, run_id)
    see_it_on_the_spread_chart(dash_duo)
    assert dash_duo.get_logs() == []


# ---- who may not ----------------------------------------------------------------------------

def callback_of(dash_app, button: str) -> str:
    """The key of the callback a button triggers."""
    return next(key for key, entry in dash_app.callback_map.items()
                if any(dep["id"] == button for dep in entry["inputs"]))


def post(client, dash_app, button: str, values: dict):
    """POST the callback of `button` as the browser would."""
    body = callback_body(dash_app.callback_map, callback_of(dash_app, button),
                         {f"{button}.n_clicks": 1, **values})
    return client.post("/_dash-update-component", json=body,
                       headers=AuthActions(client).dash_headers())


def post_save(client, dash_app, editing_id: int | None, name: str):
    """POST the Save callback with a complete, valid form."""
    return post(client, dash_app, ids.ALERTS_SAVE, {
        f"{ids.ALERTS_EDITING}.data": {"id": editing_id, "open": True},
        f"{ids.ALERTS_FORM_NAME}.value": name, f"{ids.ALERTS_FORM_METRIC}.value": "p2p.best_ask",
        f"{ids.ALERTS_FORM_MARKET}.value": MARKET, f"{ids.ALERTS_FORM_CONDITION}.value": ">",
        f"{ids.ALERTS_FORM_THRESHOLD}.value": "1", f"{ids.ALERTS_FORM_ENABLED}.value": True})


@pytest.mark.usefixtures("a_day")
def test_alrt002_a_kiosk_sees_what_fires_and_can_create_nothing(dash_duo, app, start_as,
                                                                 client_as):
    owner = actor_for(app, "trader", "alice")
    a_rule(app, owner)
    a_rule(app, owner, "calm rule", "5000")
    cross(app)

    start_as("kiosk", "/alerts")
    wait_cell(dash_duo, ids.ALERTS_KIOSK_GRID, "name", NAME)
    assert grid_cells(dash_duo, ids.ALERTS_KIOSK_GRID, "state") == ["Firing"]
    assert grid_cells(dash_duo, ids.ALERTS_KIOSK_GRID, "subject") == [MARKET]
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_BELL_COUNT}", "1", timeout=20)
    for absent in (ids.ALERTS_NEW, ids.ALERTS_EDITOR, ids.ALERTS_SAVE, ids.ALERTS_GRID,
                   ids.ALERTS_FORM_NAME, ids.ALERTS_CONTACT_ADD, ids.ALERTS_SILENCE_ADD):
        assert dash_duo.find_elements(f"#{absent}") == [], f"a kiosk has no #{absent}"
    shot(dash_duo, "kiosk", dark=True)
    assert dash_duo.get_logs() == []

    dash_app = app.extensions["dash"]
    assert post_save(client_as("kiosk"), dash_app, None, "kiosk rule").status_code == 403
    assert rule_count(app) == 2
    allowed = post_save(client_as("trader"), dash_app, None, "trader rule")
    assert allowed.status_code == 200 and rule_count(app) == 3, "the same POST saves for a trader"


@pytest.mark.usefixtures("a_day")
def test_alrt003_another_trader_neither_sees_nor_changes_a_rule(dash_duo, app, dash_app, port):
    rule = a_rule(app, actor_for(app, "trader", "alice"))
    cross(app)
    add_user(app, "trader", "bob")

    dash_duo.start_server(dash_app, navigate=False, port=port)
    browser_sign_in(dash_duo, "bob", password_for("trader"), f"/alerts?rule={rule.id}")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_FORM_FEEDBACK}",
                                    f"No rule {rule.id} of yours exists", timeout=20)
    assert dash_duo.find_element(f"#{ids.ALERTS_EDITOR_TITLE}").text == "New rule"
    assert dash_duo.find_element(f"#{ids.ALERTS_FORM_NAME}").get_attribute("value") == ""
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_BELL_COUNT}", "0", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_GRID}", "Nothing to show", timeout=20)
    open_tab(dash_duo, "History")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_HISTORY_GRID}", "Nothing to show",
                                    timeout=20)
    assert dash_duo.get_logs() == []

    client = app.test_client()
    assert AuthActions(client).login("bob", password_for("trader")).status_code == 302
    answer = post_save(client, dash_app, rule.id, "taken over")
    assert answer.status_code == 200 and "no such alert rule" in json.dumps(answer.get_json())
    answer = post(client, dash_app, ids.ALERTS_DELETE, {
        f"{ids.ALERTS_EDITING}.data": {"id": rule.id, "open": True}})
    assert "no such alert rule" in json.dumps(answer.get_json())
    answer = post(client, dash_app, ids.ALERTS_TEST, {
        f"{ids.ALERTS_EDITING}.data": {"id": rule.id, "open": True}})
    assert "no such alert rule" in json.dumps(answer.get_json())
    kept = alert_store.get_rule(current_of(app).engine, rule.id)
    assert (kept.rule.name, kept.state.state) == (NAME, "firing"), "alice's rule is untouched"


# ---- contact points, tests, deliveries and silences ------------------------------------------

def set_value(dash_duo, component_id: str, value: str) -> None:
    """Set an input as typing would (datetime-local fields take no portable keystrokes)."""
    dash_duo.driver.execute_script(
        "const el = document.getElementById(arguments[0]);"
        "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set"
        ".call(el, arguments[1]); el.dispatchEvent(new Event('input', {bubbles: true}));",
        component_id, value)


def choose_row(dash_duo, grid_id: str, column: str, text: str) -> None:
    """Select the row of a grid whose cell in `column` reads `text`."""
    cells = dash_duo.find_elements(f"#{grid_id} .ag-center-cols-container [col-id='{column}']")
    dash_duo.driver.execute_script("arguments[0].click();",
                                   next(cell for cell in cells if cell.text == text))


def add_contact_point(dash_duo, hook) -> None:
    open_tab(dash_duo, "Contact points")
    type_into(dash_duo, ids.ALERTS_CONTACT_NAME, "desk hook")
    type_into(dash_duo, ids.ALERTS_CONTACT_URL, hook.url + "?token=s3cret")
    type_into(dash_duo, ids.ALERTS_CONTACT_SECRET, "signing-key")
    press_id(dash_duo, ids.ALERTS_CONTACT_ADD)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_CONTACT_FEEDBACK}", "added", timeout=20)
    wait_cell(dash_duo, ids.ALERTS_CONTACTS_GRID, "name", "desk hook")
    target = grid_cells(dash_duo, ids.ALERTS_CONTACTS_GRID, "target")[0]
    assert target.endswith("/…") and "s3cret" not in dash_duo.driver.page_source
    assert dash_duo.find_element(f"#{ids.ALERTS_CONTACT_URL}").get_attribute("value") == ""
    assert dash_duo.find_element(f"#{ids.ALERTS_CONTACT_SECRET}").get_attribute("value") == ""
    choose_row(dash_duo, ids.ALERTS_CONTACTS_GRID, "name", "desk hook")
    press_id(dash_duo, ids.ALERTS_CONTACT_TEST)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_CONTACT_FEEDBACK}",
                                    "Test delivered to desk hook", timeout=20)
    assert len(hook.wait_for(1)) == 1
    shot(dash_duo, "contacts", dark=True)


def a_rule_through_the_form(dash_duo, hook) -> None:
    open_tab(dash_duo, "Rules")
    press_id(dash_duo, ids.ALERTS_NEW)
    type_into(dash_duo, ids.ALERTS_FORM_NAME, NAME)
    type_into(dash_duo, ids.ALERTS_FORM_THRESHOLD, THRESHOLD)
    press(dash_duo, dash_duo.wait_for_element(f"#{ids.ALERTS_FORM_NOTIFY} input", timeout=20))
    press_id(dash_duo, ids.ALERTS_SAVE)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_FORM_FEEDBACK}", "saved", timeout=20)
    press_id(dash_duo, ids.ALERTS_TEST)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_FORM_FEEDBACK}", "desk hook: delivered",
                                    timeout=20)
    assert len(hook.wait_for(2)) == 2
    assert hook.requests[1].json["alerts"][0]["labels"]["alertname"] == NAME

    press_id(dash_duo, ids.ALERTS_NEW)
    dash_duo.wait_for_text_to_equal(f"#{ids.ALERTS_EDITOR_TITLE}", "New rule", timeout=20)
    wait_cell(dash_duo, ids.ALERTS_GRID, "name", NAME)
    choose_row(dash_duo, ids.ALERTS_GRID, "name", NAME)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_EDITOR_TITLE}", f": {NAME}", timeout=20)
    assert dash_duo.find_element(f"#{ids.ALERTS_FORM_THRESHOLD}").get_attribute("value") == (
        THRESHOLD)
    assert dash_duo.find_element(f"#{ids.ALERTS_FORM_NOTIFY} input").is_selected()


def silence_the_rule(dash_duo) -> None:
    open_tab(dash_duo, "Silences")
    pick(dash_duo, f"#{ids.ALERTS_SILENCE_RULE}", NAME)
    set_value(dash_duo, ids.ALERTS_SILENCE_END,
              (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    type_into(dash_duo, ids.ALERTS_SILENCE_COMMENT, "maintenance")
    press_id(dash_duo, ids.ALERTS_SILENCE_ADD)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_SILENCE_FEEDBACK}", "Silence added",
                                    timeout=20)
    wait_cell(dash_duo, ids.ALERTS_SILENCES_GRID, "what", f"rule: {NAME}")
    assert grid_cells(dash_duo, ids.ALERTS_SILENCES_GRID, "active") == ["active"]
    shot(dash_duo, "silences")
    choose_row(dash_duo, ids.ALERTS_SILENCES_GRID, "comment", "maintenance")
    press_id(dash_duo, ids.ALERTS_SILENCE_DELETE)
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_SILENCE_FEEDBACK}", "Silence deleted",
                                    timeout=20)
    wait_until(lambda: grid_cells(dash_duo, ids.ALERTS_SILENCES_GRID, "what") == [],
               message="the silence gone")


def test_alrt004_contact_points_tests_deliveries_and_silences(
        dash_duo, start_as, receiver):  # noqa: F811
    start_as("analyst", "/alerts?tab=contacts")
    add_contact_point(dash_duo, receiver)
    a_rule_through_the_form(dash_duo, receiver)
    open_tab(dash_duo, "Deliveries")
    wait_until(lambda: grid_cells(dash_duo, ids.ALERTS_DELIVERIES_GRID, "status")
               == ["sent", "sent"], message="two sent tests in the log")
    assert grid_cells(dash_duo, ids.ALERTS_DELIVERIES_GRID, "rule") == [NAME, "(test)"]
    shot(dash_duo, "deliveries")
    silence_the_rule(dash_duo)
    assert dash_duo.get_logs() == []
