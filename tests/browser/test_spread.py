"""P2P spread page in Chromium, on books the real pollers fetched from the local fake P2P
exchange: markets, buckets and filters change the chart, the URL keeps them, a refresh keeps
the zoom, the adverts sort and filter, and a point or a row opens the run behind it."""

from __future__ import annotations

from layouts import ids
from layouts.spread import ADVERT_PAGE_SIZE
from tests.browser.p2p_fixtures import (  # noqa: F401
    fake,
    p2p_clock,
    p2p_data,
    p2p_url,
    settings,
)
from tests.browser.views_helpers import (
    CallbackCounter,
    cells,
    choose,
    click,
    click_option,
    click_point,
    column,
    filter_by,
    header,
    layout,
    pick,
    set_live_refresh,
    sort_by,
    traces,
    url_query,
    wait_traces,
    zoom_to,
)
from tests.spot_support import wait_until

GRAPH = ids.SPREAD_GRAPH
MINUTE = 60_000


def names(found: list[dict]) -> list[str]:
    return [trace["name"] for trace in found]


def prices(dash_duo) -> list[float]:
    """The adverts' prices on the page shown, top to bottom."""
    return [float(price) for price in column(dash_duo, ids.SPREAD_ADVERTS, "price")]


def test_sprd001_markets_bucket_and_range_change_the_chart_and_the_url_restores_them(
        dash_duo, app, start_as, p2p_data):  # noqa: F811
    updates = CallbackCounter(app, GRAPH)
    start_as("trader", "/spread")
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3 and len(t[0]["x"]) >= 15)
    assert names(found) == ["binance:USDT/ARS ask", "binance:USDT/ARS bid",
                            "binance:USDT/ARS spread %"]
    ask, bid, spread = found
    assert all(a > b for a, b in zip(ask["y"], bid["y"], strict=True))
    mid = (ask["y"][-1] + bid["y"][-1]) / 2
    assert abs(spread["y"][-1] - (ask["y"][-1] - bid["y"][-1]) / mid * 100) < 1e-4

    pick(dash_duo, f"#{ids.SPREAD_MARKETS}", "okx:USDT/ARS")
    choose(dash_duo, ids.SPREAD_BUCKET, "15m")
    click_option(dash_duo, ids.SPREAD_RANGE, "1w")
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 6 and len(t[0]["x"]) > 1
                        and t[0]["x"][1] - t[0]["x"][0] == 15 * MINUTE,
                        message="two markets in 15m buckets")
    assert names(found)[3] == "okx:USDT/ARS ask"
    # The 15m chart of two markets can be the 1d one, drawn before the range click lands.
    wait_until(lambda: url_query(dash_duo) == ("?markets=binance:USDT/ARS,okx:USDT/ARS"
                                               "&range=1w&bucket=15m"),
               message="the URL holds the markets, the range and the bucket")

    dash_duo.driver.refresh()
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 6, message="the restored chart")
    assert found[0]["x"][1] - found[0]["x"][0] == 15 * MINUTE

    zoom = [found[0]["x"][1], found[0]["x"][3]]
    zoom_to(dash_duo, GRAPH, zoom)
    set_live_refresh(dash_duo, "2")
    seen = updates.count
    updates.wait_for_more(seen + 2)
    assert layout(dash_duo, GRAPH)["xaxis"]["range"] == zoom, "the zoom survived refreshes"
    assert dash_duo.get_logs() == []


def test_sprd002_filters_amount_adverts_and_the_run_behind_a_row(
        dash_duo, start_as, p2p_data):  # noqa: F811
    start_as("analyst", "/spread?range=1h")
    wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3)
    dash_duo.find_element(f"#{ids.SPREAD_AMOUNT}").send_keys("50000\n")
    dash_duo.wait_for_contains_text(f"#{ids.SPREAD_NOW}", "for 50,000", timeout=20)
    assert "amount=50000" in url_query(dash_duo)

    dash_duo.find_element(f"#{ids.SPREAD_COMPLETION}").send_keys("100\n")
    dash_duo.wait_for_contains_text(f"#{ids.SPREAD_NOTE}", "No adverts of binance:USDT/ARS "
                                    "match the filters", timeout=20)
    wait_until(lambda: traces(dash_duo, GRAPH) == [], message="an empty chart")
    dash_duo.clear_input(f"#{ids.SPREAD_COMPLETION}")
    dash_duo.find_element(f"#{ids.SPREAD_COMPLETION}").send_keys("\n")
    wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3, message="the chart again")

    adverts = ids.SPREAD_ADVERTS
    wait_until(lambda: len(column(dash_duo, adverts, "price")) >= 10,
               message="the adverts that take 50,000")
    total = int(dash_duo.find_element(f"#{adverts} [data-ref=lbRecordCount]").text)
    prices_shown = prices(dash_duo)
    assert len(prices_shown) == min(total, ADVERT_PAGE_SIZE), "a page of adverts"
    filter_by(dash_duo, adverts, "side", "bid")
    wait_until(lambda: set(column(dash_duo, adverts, "side")) == {"bid"}, message="only bids")
    bids = prices(dash_duo)
    assert bids == sorted(bids, reverse=True), "bids dearest first"
    sort_by(dash_duo, adverts, "price")
    wait_until(lambda: header(dash_duo, adverts, "price").get_attribute("aria-sort")
               == "ascending", message="sorted by price")
    wait_until(lambda: (shown := prices(dash_duo)) == sorted(shown) and len(shown) == len(bids),
               message="bids cheapest first")
    assert set(column(dash_duo, adverts, "side")) == {"bid"}, "the filter holds"

    # A click event on the cell (live refreshes may shift the page under a pointer click).
    dash_duo.driver.execute_script("arguments[0].click();", cells(dash_duo, adverts, "price")[0])
    dash_duo.wait_for_contains_text(f"#{ids.SPREAD_RUN_BODY}", "p2p_poll", timeout=20)
    body = dash_duo.find_element(f"#{ids.SPREAD_RUN_BODY}").text
    assert "binance:USDT/ARS" in body and "ok" in body and "error log is for admins" in body
    assert dash_duo.find_elements(f"#{ids.SPREAD_RUN_BODY}-admin") == []

    dash_duo.find_element(f"#{ids.SPREAD_RUN} .btn-close").click()
    dash_duo.wait_for_no_elements(f"#{ids.SPREAD_RUN_BODY}", timeout=20)
    dash_duo.driver.execute_script("arguments[0].click();", cells(dash_duo, adverts, "price")[0])
    dash_duo.wait_for_contains_text(f"#{ids.SPREAD_RUN_BODY}", "p2p_poll", timeout=20)
    assert dash_duo.get_logs() == []


def test_sprd003_an_admin_opens_a_charted_point_in_the_admin_runs(
        dash_duo, start_as, p2p_data):  # noqa: F811
    start_as("admin", "/spread?range=1h")
    wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3)
    click_point(dash_duo, GRAPH, trace=0, index=-1)
    dash_duo.wait_for_element(f"#{ids.SPREAD_RUN_BODY}-admin", timeout=20)
    run_id = dash_duo.find_element(f"#{ids.SPREAD_RUN_BODY}-facts dd").text
    click(dash_duo, dash_duo.find_element(f"#{ids.SPREAD_RUN_BODY}-admin"))
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_RUN_DETAIL}", f"Run {run_id}", timeout=20)
    assert "p2p_poll" in dash_duo.find_element(f"#{ids.ADMIN_RUN_DETAIL}").text
    assert dash_duo.get_logs() == []


def test_sprd004_without_data_the_page_says_why(dash_duo, start_as):
    start_as("kiosk", "/spread")
    dash_duo.wait_for_contains_text(f"#{ids.SPREAD_NOTE}",
                                    "No complete snapshot of binance:USDT/ARS yet", timeout=20)
    assert traces(dash_duo, GRAPH) == []
    assert dash_duo.get_logs() == []
