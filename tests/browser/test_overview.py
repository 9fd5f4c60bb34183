"""Overview in Chromium: spot tickers and feed health from the real ingestion, changes signed
and coloured, fresh feeds in green and stale ones in red, and what it says with no P2P market
configured."""

from __future__ import annotations

import re
from datetime import timedelta

from layouts import ids
from tests.browser.spot_fixtures import fake, feed, settings  # noqa: F401
from tests.browser.views_helpers import cells, column
from tests.spot_support import wait_until
from tests.views_support import backfill

UP, DOWN = "rgba(38, 166, 154, 1)", "rgba(239, 83, 80, 1)"
GREEN, RED = "rgba(25, 135, 84, 1)", "rgba(220, 53, 69, 1)"


def test_ovw001_tickers_and_fresh_feeds_from_the_stream(dash_duo, start_as,
                                                       feed):  # noqa: F811
    start_as("kiosk")
    tickers = ids.OVERVIEW_TICKERS_TABLE
    wait_until(lambda: column(dash_duo, tickers, "symbol") == ["BTCUSDT", "ETHUSDT"],
               message="the tickers table")
    assert all(float(last.replace(",", "")) > 0 for last in column(dash_duo, tickers, "last"))
    assert all(len(trend) >= 2 and set(trend) <= set("▁▂▃▄▅▆▇█ ")
               for trend in column(dash_duo, tickers, "trend")), "24h sparklines"
    for change in cells(dash_duo, tickers, "change_pct"):
        rising = change.text.startswith("+")  # signed, three decimals
        assert re.fullmatch(r"[+\u2212]\d+\.\d{3}", change.text), change.text
        assert change.value_of_css_property("color") == (UP if rising else DOWN)
    wait_until(lambda: column(dash_duo, ids.OVERVIEW_FEEDS_TABLE, "state") == ["fresh"] * 6,
               message="six fresh feeds")
    assert column(dash_duo, ids.OVERVIEW_FEEDS_TABLE, "feed")[:3] == [
        "BTCUSDT book ticker", "BTCUSDT 24h ticker", "BTCUSDT 1m candle"]
    state = cells(dash_duo, ids.OVERVIEW_FEEDS_TABLE, "state")[0]
    assert state.value_of_css_property("background-color") == GREEN, "green"
    dash_duo.wait_for_contains_text(f"#{ids.OVERVIEW_MARKETS}", "No P2P market is configured")
    assert dash_duo.get_logs() == []


def test_ovw002_feeds_without_recent_data_are_red(dash_duo, app, start_as, fake):  # noqa: F811
    engine = app.extensions["p2pdash"].engine
    backfill(engine, fake, "BTCUSDT", hours=1, ago=timedelta(hours=2))
    start_as("trader")
    feeds = ids.OVERVIEW_FEEDS_TABLE
    wait_until(lambda: len(column(dash_duo, feeds, "state")) == 6, message="the feeds")
    assert column(dash_duo, feeds, "state") == ["stale"] * 6
    ages = column(dash_duo, feeds, "age")
    assert ages.count("never") == 5 and ages[2] == "2 h", "the candles' age"
    cell = cells(dash_duo, feeds, "state")[2]
    assert cell.value_of_css_property("background-color") == RED, "red"
    assert "No 24h tickers stored yet" in dash_duo.find_element(f"#{ids.OVERVIEW_TICKERS}").text
    assert dash_duo.get_logs() == []
