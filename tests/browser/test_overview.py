"""Overview in Chromium: spot tickers and feed health from the real ingestion, stale feeds in
red, and what it says with no P2P market configured."""

from __future__ import annotations

from datetime import timedelta

from layouts import ids
from tests.browser.spot_fixtures import fake, feed, settings  # noqa: F401
from tests.views_support import backfill


def test_ovw001_tickers_and_fresh_feeds_from_the_stream(dash_duo, start_as,
                                                       feed):  # noqa: F811
    start_as("kiosk")
    dash_duo.wait_for_contains_text(f"#{ids.OVERVIEW_TICKERS}", "BTCUSDT", timeout=30)
    table = dash_duo.find_element(f"#{ids.OVERVIEW_TICKERS}").text
    assert "ETHUSDT" in table and "Quote vol." in table
    assert dash_duo.find_elements(f"#{ids.OVERVIEW_TICKERS} img"), "24h sparklines"
    dash_duo.wait_for_contains_text(f"#{ids.OVERVIEW_FEEDS}", "BTCUSDT")
    assert len(dash_duo.find_elements(f"#{ids.OVERVIEW_FEEDS} .badge.fresh")) == 6
    assert "No P2P market is configured" in dash_duo.find_element(
        f"#{ids.OVERVIEW_MARKETS}").text
    assert dash_duo.get_logs() == []


def test_ovw002_feeds_without_recent_data_are_red(dash_duo, app, start_as, fake):  # noqa: F811
    engine = app.extensions["p2pdash"].engine
    backfill(engine, fake, "BTCUSDT", hours=1, ago=timedelta(hours=2))
    start_as("trader")
    dash_duo.wait_for_contains_text(f"#{ids.OVERVIEW_FEEDS}", "BTCUSDT", timeout=30)
    stale = [badge.text for badge in
             dash_duo.find_elements(f"#{ids.OVERVIEW_FEEDS} .badge.stale.bg-danger")]
    assert len(stale) == 6 and stale.count("never") == 5, stale
    assert next(text for text in stale if text != "never") == "2 h", "the candles' age"
    assert dash_duo.find_elements(f"#{ids.OVERVIEW_FEEDS} .badge.fresh") == []
    assert "No 24h tickers stored yet" in dash_duo.find_element(f"#{ids.OVERVIEW_TICKERS}").text
    assert dash_duo.get_logs() == []
