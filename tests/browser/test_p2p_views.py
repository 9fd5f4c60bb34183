"""P2P parts of the volume, candles and overview pages in Chromium, on books the real
pollers stored from the local fake P2P exchange (and spot candles from the real backfill)."""

from __future__ import annotations

from layouts import ids
from tests.browser.p2p_fixtures import (  # noqa: F401
    fake,
    p2p_clock,
    p2p_data,
    p2p_url,
    settings,
)
from tests.browser.views_helpers import url_query, wait_traces
from tests.views_support import backfill


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
    dash_duo.select_dcc_dropdown(f"#{ids.VOLUME_MARKETS}", value="okx:USDT/ARS")
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
    table = f"#{ids.OVERVIEW_MARKETS}"
    dash_duo.wait_for_contains_text(table, "okx:USDT/ARS", timeout=30)
    rows = dash_duo.find_elements(f"{table} tbody tr")
    assert [row.find_element("css selector", "td").text for row in rows] == [
        "binance:USDT/ARS", "okx:USDT/ARS", "binance:BTC/ARS"]
    first = [cell.text for cell in rows[0].find_elements("css selector", "td")]
    assert float(first[1].replace(",", "")) > float(first[2].replace(",", "")), "ask > bid"
    assert first[4].endswith(" pt") or first[4] == "-"
    assert len(dash_duo.find_elements(f"{table} img")) == 3, "a 24h sparkline each"
    assert len(dash_duo.find_elements(f"#{ids.OVERVIEW_FEEDS}-p2p .badge.fresh")) == 3

    dash_duo.select_dcc_dropdown(f"#{ids.OVERVIEW_EXCHANGES}", value="okx")
    dash_duo.wait_for_text_to_equal(f"{table} tbody tr td", "okx:USDT/ARS", timeout=20)
    assert len(dash_duo.find_elements(f"{table} tbody tr")) == 1
    assert url_query(dash_duo) == "?exchange=okx"
    dash_duo.driver.refresh()
    dash_duo.wait_for_text_to_equal(f"{table} tbody tr td", "okx:USDT/ARS", timeout=30)
    assert dash_duo.get_logs() == []
