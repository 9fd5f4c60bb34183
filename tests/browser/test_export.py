"""Downloads in Chromium: the Spread page's Download menu hands an analyst the P2P history
of the page's whole range with its filters; traders get no menu and no Export page; the
Export page builds the request from its controls."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import requests

from db.export import parse_time
from db.p2p_history import history
from db.p2p_query import OfferFilter
from layouts import ids
from tests.browser.p2p_fixtures import (  # noqa: F401
    fake,
    p2p_clock,
    p2p_data,
    p2p_url,
    settings,
)
from tests.browser.views_helpers import choose, click, wait_traces
from tests.spot_support import wait_until

SPREAD = "/spread?markets=binance:USDT/ARS&range=1d&bucket=5m&payment=mercadopago"


def browser_session(dash_duo) -> requests.Session:
    """A requests session holding the browser's cookies (its signed-in session)."""
    session = requests.Session()
    for cookie in dash_duo.driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def href_of(dash_duo, component_id: str) -> str:
    """A link's href now ("" while it re-renders)."""
    return dash_duo.driver.execute_script(
        "const link = document.getElementById(arguments[0]);"
        "return link ? link.href || '' : '';", component_id)


def open_menu(dash_duo, menu_id: str, item: str) -> str:
    """Open a Download menu; return the href of one of its items."""
    click(dash_duo, dash_duo.find_element(f"#{menu_id} .dropdown-toggle"))
    dash_duo.wait_for_element(f"#{item}", timeout=20)
    # Read by id, not through the element found: the menu may re-render in between
    # (a StaleElementReferenceException in CI).
    return href_of(dash_duo, item)


def test_expt001_the_spread_download_holds_every_bucket_of_the_range_with_the_filters(
        dash_duo, app, start_as, p2p_data):  # noqa: F811
    start_as("analyst", SPREAD)
    drawn = wait_traces(dash_duo, ids.SPREAD_GRAPH, lambda t: len(t) == 3)
    item = f"{ids.DOWNLOAD_SPREAD}-0-csv"
    open_menu(dash_duo, ids.DOWNLOAD_SPREAD, item)
    wait_until(lambda: "payment=mercadopago" in href_of(dash_duo, item),
               message="the menu's links follow the page")
    href = href_of(dash_duo, item)
    dash_duo.driver.save_screenshot("/tmp/export_spread_menu.png")
    args = {key: values[0] for key, values in parse_qs(urlsplit(href).query).items()}
    assert (args["market"], args["bucket"], args["payment"], args["format"]) == (
        "binance:USDT/ARS", "5m", "mercadopago", "csv")
    start, end = parse_time("start", args["start"]), parse_time("end", args["end"])
    assert end - start >= timedelta(days=1), "the whole range, not the points drawn"

    answer = browser_session(dash_duo).get(href, timeout=30)
    assert answer.status_code == 200, answer.text
    assert "p2p_history_5m_binance_USDTARS" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = history(app.extensions["p2pdash"].engine, "binance", "USDT", "ARS",
                       start=start, end=end, width=timedelta(minutes=5),
                       filters=OfferFilter(None, ("mercadopago",), False, None))
    assert len(rows) == len(expected) >= len(drawn[0]["x"]) > 10
    assert [parse_time("bucket", row["bucket"]) for row in rows] == [
        row["bucket"] for row in expected]
    assert [(Decimal(row["best_ask"]), Decimal(row["best_bid"])) for row in rows] == [
        (row["best_ask"], row["best_bid"]) for row in expected]
    assert dash_duo.get_logs() == []


def test_expt002_a_trader_has_no_download_menu_and_no_export_page(
        dash_duo, start_as, p2p_data):  # noqa: F811
    start_as("trader", "/spread")
    wait_traces(dash_duo, ids.SPREAD_GRAPH, lambda t: len(t) == 3)
    dash_duo.wait_for_element(f"#{ids.SPREAD_ADVERTS} .ag-row", timeout=20)  # the grid drawn
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_SPREAD}") == []
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_ADVERTS}") == []
    dash_duo.driver.save_screenshot("/tmp/export_trader_spread.png")

    dash_duo.wait_for_page(f"{dash_duo.server_url}/candles", timeout=20)
    dash_duo.wait_for_element(f"#{ids.CANDLES_GRAPH}", timeout=20)
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_CANDLES}") == []
    dash_duo.wait_for_page(f"{dash_duo.server_url}/", timeout=20)
    dash_duo.wait_for_element(f"#{ids.OVERVIEW_MARKETS_TABLE}", timeout=20)
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_OVERVIEW_MARKETS}") == []

    assert "Export" not in dash_duo.find_element(f"#{ids.NAV_LINKS}").text
    dash_duo.driver.execute_script(
        "window.history.pushState({}, '', '/exports');"
        "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));")
    dash_duo.wait_for_contains_text(f"#{ids.FORBIDDEN}", "Not allowed", timeout=20)
    assert dash_duo.find_elements(f"#{ids.EXPORT_DATASET}") == []
    dash_duo.driver.save_screenshot("/tmp/export_trader_forbidden.png")
    dash_duo.driver.get(f"{dash_duo.server_url}/exports")  # the server refuses it too
    dash_duo.wait_for_contains_text(f"#{ids.FORBIDDEN}", "Not allowed", timeout=20)
    logs = dash_duo.get_logs()
    assert len(logs) == 1 and "403" in logs[0]["message"], logs
    answer = browser_session(dash_duo).get(
        f"{dash_duo.server_url}/export/p2p_history?market=binance:USDT/ARS", timeout=30)
    assert answer.status_code == 403
    assert dash_duo.get_logs() == []


def test_expt003_the_export_page_builds_the_request_and_its_snippets(
        dash_duo, start_as, p2p_data):  # noqa: F811
    start_as("analyst", "/exports")
    wait_until(lambda: "/export/p2p_history?market=binance" in href_of(
        dash_duo, ids.EXPORT_DOWNLOAD), message="the link")
    dash_duo.find_element(f"#{ids.EXPORT_COMPLETION}").send_keys("90\n")
    wait_until(lambda: "min_completion=0.9" in href_of(dash_duo, ids.EXPORT_DOWNLOAD),
               message="completion as a fraction")
    dash_duo.wait_for_contains_text(f"#{ids.EXPORT_ESTIMATE}", " rows, about ", timeout=20)
    dash_duo.driver.save_screenshot("/tmp/export_page_history.png")
    href = href_of(dash_duo, ids.EXPORT_DOWNLOAD)
    answer = browser_session(dash_duo).get(href, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("bucket,captured_at,exchange")

    choose(dash_duo, ids.EXPORT_DATASET, "candles")
    choose(dash_duo, ids.EXPORT_FORMAT, "binance")
    dash_duo.wait_for_contains_text(f"#{ids.EXPORT_CURL}", "api/v1/export/candles?symbol="
                                    "BTCUSDT&interval=1h", timeout=20)
    assert "format=binance" in dash_duo.find_element(f"#{ids.EXPORT_CURL}").text
    assert "pd.read_csv(url, header=None" in dash_duo.find_element(f"#{ids.EXPORT_PANDAS}").text
    assert not dash_duo.find_element(f"#{ids.EXPORT_MARKET}").is_displayed()
    assert "runs" not in [option.get_attribute("value") for option in
                          dash_duo.find_elements(f"#{ids.EXPORT_DATASET} option")]
    dash_duo.driver.save_screenshot("/tmp/export_page_candles.png")

    dash_duo.wait_for_page(dash_duo.server_url + "/", timeout=20)  # the Overview's tables
    link = open_menu(dash_duo, ids.DOWNLOAD_OVERVIEW_MARKETS,
                     f"{ids.DOWNLOAD_OVERVIEW_MARKETS}-0-csv")
    assert "/export/p2p_history?market=binance" in link and "bucket=5m" in link
    assert browser_session(dash_duo).get(link, timeout=30).status_code == 200
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_OVERVIEW_TICKERS}")
    assert dash_duo.find_elements(f"#{ids.DOWNLOAD_OVERVIEW_FEEDS}") == [], "runs: admins"
    assert dash_duo.get_logs() == []
