"""Volume page in Chromium on data the real ingestion stored from the local fake exchange."""

from __future__ import annotations

from db.intervals import INTERVALS
from layouts import ids
from tests.browser.spot_fixtures import fake, feed, settings  # noqa: F401
from tests.browser.views_helpers import choose, click_option, pick, url_query, wait_traces

GRAPH = ids.VOLUME_GRAPH


def test_vol001_symbols_bucket_and_range_change_the_chart_and_the_url_restores_them(
        dash_duo, start_as, feed):  # noqa: F811
    start_as("analyst", "/volume")
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 6)
    assert [trace["name"] for trace in found[::3]] == ["BTCUSDT", "ETHUSDT"]
    assert [trace["yaxis"] for trace in found[:3]] == ["y", "y2", "y3"]

    choose(dash_duo, ids.VOLUME_INTERVAL, "5m")
    click_option(dash_duo, ids.VOLUME_RANGE, "1h")
    pick(dash_duo, f"#{ids.VOLUME_SYMBOLS}", "ETHUSDT")  # toggles it off
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3 and len(t[0]["x"]) > 1
                        and t[0]["x"][1] - t[0]["x"][0] == INTERVALS["5m"],
                        message="BTCUSDT alone in 5m buckets")
    assert found[0]["name"] == "BTCUSDT" and len(found[0]["x"]) <= 13
    assert url_query(dash_duo) == "?symbols=BTCUSDT&range=1h&bucket=5m"

    dash_duo.driver.refresh()
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 3, message="the restored chart")
    assert found[0]["name"] == "BTCUSDT" and found[0]["x"][1] - found[0]["x"][0] == 300_000
    dash_duo.wait_for_contains_text(f"#{ids.VOLUME_P2P_NOTE}", "No P2P market is configured")
    assert dash_duo.get_logs() == []
