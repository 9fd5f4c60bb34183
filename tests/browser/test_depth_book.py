"""Depth page, spot part, in Chromium: best bid and ask from the book tickers the real stream
stored from the local fake exchange."""

from __future__ import annotations

from layouts import ids
from tests.browser.spot_fixtures import fake, feed, settings  # noqa: F401
from tests.browser.views_helpers import choose, click_option, url_query, wait_traces

GRAPH = ids.DEPTH_BOOK_GRAPH


def test_dpth001_book_tickers_show_bid_below_ask_per_symbol(dash_duo, start_as,
                                                            feed):  # noqa: F811
    start_as("kiosk", "/depth")
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3 and len(t[0]["x"]) >= 1)
    bid, ask, spread = found
    assert (bid["name"], ask["name"], spread["yaxis"]) == ("bid", "ask", "y2")
    assert all(b < a for b, a in zip(bid["y"], ask["y"], strict=True))
    dash_duo.wait_for_contains_text(f"#{ids.DEPTH_NOTE}", "No P2P market is configured")

    choose(dash_duo, ids.DEPTH_SYMBOL, "ETHUSDT")
    click_option(dash_duo, ids.DEPTH_RANGE, "1d")
    wait_traces(dash_duo, GRAPH, lambda t: t[0]["y"][-1] < 10_000, message="ETHUSDT prices")
    assert "symbol=ETHUSDT" in url_query(dash_duo) and "range=1d" in url_query(dash_duo)
    dash_duo.driver.refresh()
    dash_duo.wait_for_element(f"#{ids.DEPTH_SYMBOL}", timeout=20)
    assert dash_duo.find_element(f"#{ids.DEPTH_SYMBOL}").get_attribute("value") == "ETHUSDT"
    assert dash_duo.get_logs() == []
