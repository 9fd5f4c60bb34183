"""P2P parts of the volume, candles and overview pages in Chromium, on books the real
pollers stored from the local fake P2P exchange (and spot candles from the real backfill)."""

from __future__ import annotations

import re

from layouts import ids
from tests.browser.p2p_fixtures import (  # noqa: F401
    fake,
    p2p_clock,
    p2p_data,
    p2p_url,
    settings,
)
from tests.browser.views_helpers import (
    CallbackCounter,
    column,
    header,
    pick,
    sort_by,
    url_query,
    wait_traces,
)
from tests.spot_support import wait_until
from tests.views_support import backfill

MARKETS = ["binance:USDT/ARS", "okx:USDT/ARS", "binance:BTC/ARS"]
# Grouped thousands, up to six decimals with the trailing zeros trimmed.
PRICE = re.compile(r"\d{1,3}(,\d{3})*(\.\d{1,6})?")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_vol002_liquidity_adverts_and_advertisers_per_market(dash_duo, start_as,
                                                             p2p_data):  # noqa: F811
    start_as("analyst", "/volume?range=1d&bucket=15m")
    found = wait_traces(dash_duo, ids.VOLUME_P2P_GRAPH, lambda t: len(t) == 5)
    names = [trace["name"] for trace in found]
    assert names == ["binance:USDT/ARS ask liquidity", "binance:USDT/ARS bid liquidity",
                     "binance:USDT/ARS ask adverts", "binance:USDT/ARS bid adverts",
                     "binance:USDT/ARS advertisers"]
    values = [y for y in found[4]["y"] if y is not None]
    assert values and all(0 < y <= 40 for y in values), "distinct advertisers of two sides"
    pick(dash_duo, f"#{ids.VOLUME_MARKETS}", "okx:USDT/ARS")
    wait_traces(dash_duo, ids.VOLUME_P2P_GRAPH, lambda t: len(t) == 10,
                message="two markets")
    assert "markets=binance:USDT/ARS,okx:USDT/ARS" in url_query(dash_duo)
    assert dash_duo.get_logs() == []


def test_cndl005_implied_usdt_rate_and_premium(dash_duo, app, start_as, fake,  # noqa: F811
                                               p2p_data):  # noqa: F811
    backfill(app.extensions["p2pdash"].engine, fake, "BTCUSDT", hours=2)
    start_as("trader", "/candles?interval=5m&range=1d")
    implied, p2p_usdt, premium = wait_traces(
        dash_duo, ids.CANDLES_IMPLIED_GRAPH, lambda t: len(t) == 3 and len(t[0]["x"]) >= 10)
    assert implied["name"] == "implied USDT/ARS" and premium["yaxis"] == "y2"
    for implied_rate, usdt, pct in zip(implied["y"], p2p_usdt["y"], premium["y"], strict=True):
        assert abs((usdt / implied_rate - 1) * 100 - pct) < 1e-6
    dash_duo.wait_for_contains_text(f"#{ids.CANDLES_IMPLIED_NOTE}", "binance:BTC/ARS")
    assert dash_duo.get_logs() == []


def test_ovw003_markets_with_prices_spread_and_fresh_feeds(dash_duo, start_as,
                                                          p2p_data):  # noqa: F811
    start_as("kiosk")
    table = ids.OVERVIEW_MARKETS_TABLE
    wait_until(lambda: column(dash_duo, table, "market") == MARKETS, message="the markets")
    asks, bids = column(dash_duo, table, "best_ask"), column(dash_duo, table, "best_bid")
    assert all(number(a) > number(b) for a, b in zip(asks, bids, strict=True)), "ask > bid"
    assert all(PRICE.fullmatch(price) for price in asks + bids), asks + bids
    assert number(asks[2]) > 1000 and "," in asks[2], "BTC/ARS in grouped thousands"
    assert all(re.fullmatch(r"\d+\.\d{3}", spread)
               for spread in column(dash_duo, table, "spread_pct")), "spread % to 3 decimals"
    assert column(dash_duo, table, "change") == ["", "", ""], "no spread a day ago to compare"
    assert all(len(trend) >= 2 for trend in column(dash_duo, table, "trend")), "sparklines"
    states = column(dash_duo, ids.OVERVIEW_FEEDS_TABLE, "state")
    assert states[-3:] == ["fresh"] * 3

    pick(dash_duo, f"#{ids.OVERVIEW_EXCHANGES}", "okx")
    wait_until(lambda: column(dash_duo, table, "market") == ["okx:USDT/ARS"],
               message="okx alone")
    assert url_query(dash_duo) == "?exchange=okx"
    dash_duo.driver.refresh()
    wait_until(lambda: column(dash_duo, table, "market") == ["okx:USDT/ARS"],
               message="okx alone after a reload")
    assert dash_duo.get_logs() == []


def test_ovw004_sorting_a_column_of_the_markets_grid_holds_through_refreshes(
        dash_duo, app, start_as, p2p_data):  # noqa: F811
    updates = CallbackCounter(app, ids.OVERVIEW_MARKETS_TABLE)
    start_as("kiosk")
    table = ids.OVERVIEW_MARKETS_TABLE
    wait_until(lambda: column(dash_duo, table, "market") == MARKETS, message="the markets")

    sort_by(dash_duo, table, "market")
    wait_until(lambda: column(dash_duo, table, "market") == sorted(MARKETS),
               message="markets A to Z")
    sort_by(dash_duo, table, "best_ask")
    wait_until(lambda: column(dash_duo, table, "market")[-1] == "binance:BTC/ARS",
               message="the dearest ask last")
    asks = [number(ask) for ask in column(dash_duo, table, "best_ask")]
    assert asks == sorted(asks), "by number, not by text"
    assert header(dash_duo, table, "best_ask").get_attribute("aria-sort") == "ascending"
    assert header(dash_duo, table, "market").get_attribute("aria-sort") == "none"

    sort_by(dash_duo, table, "best_ask")
    wait_until(lambda: column(dash_duo, table, "market")[0] == "binance:BTC/ARS",
               message="the dearest ask first")
    descending = column(dash_duo, table, "market")
    updates.wait_for_more(updates.count + 1)  # two refreshes: the first one is drawn by now
    assert column(dash_duo, table, "market") == descending, "the sort survived a refresh"
    asks = [number(ask) for ask in column(dash_duo, table, "best_ask")]
    assert asks == sorted(asks, reverse=True)
    assert dash_duo.get_logs() == []


def test_sprd006_payment_filter_from_the_url_holds(dash_duo, start_as,
                                                   p2p_data):  # noqa: F811
    start_as("analyst", "/spread?payment=mercadopago&range=1h")
    table = ids.SPREAD_ADVERTS
    for _load in ("first", "again, with the dropdown's code cached"):
        wait_until(lambda: (methods := column(dash_duo, table, "methods"))
                   and all("mercadopago" in cell for cell in methods),
                   message="only adverts paid by mercadopago")
        dash_duo.wait_for_text_to_equal(f"#{ids.SPREAD_PAYMENT} .dash-dropdown-value",
                                        "mercadopago", timeout=10)
        assert "payment=mercadopago" in url_query(dash_duo)
        dash_duo.driver.refresh()
    assert dash_duo.get_logs() == []
