"""Candles page in Chromium, on data the real stream, gap repair and backfill stored from the
local fake exchange: filters change the chart, the URL keeps them, refreshes keep the zoom."""

from __future__ import annotations

from db.intervals import INTERVALS
from layouts import figures, ids
from tests.browser.spot_fixtures import fake, feed, settings  # noqa: F401
from tests.browser.views_helpers import (
    CallbackCounter,
    choose,
    layout,
    set_live_refresh,
    traces,
    url_query,
    wait_traces,
    zoom_to,
)
from tests.spot_support import wait_until

GRAPH = ids.CANDLES_GRAPH


def spacing(trace: dict) -> int:
    """The time between the first two candles (ms)."""
    return trace["x"][1] - trace["x"][0]


def chart_theme(dash_duo) -> str:
    """The font colour of the candle chart's template (differs between light and dark)."""
    return layout(dash_duo, GRAPH)["template"]["layout"]["font"]["color"]


def candle_trace(found: list[dict]) -> dict:
    return next(trace for trace in found if trace["type"] == "candlestick")


def test_cndl001_interval_and_symbol_change_the_chart_and_the_url_restores_them(
        dash_duo, start_as, feed):  # noqa: F811
    start_as("trader", "/candles")
    first = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 2 and len(t[0]["x"]) >= 100)
    assert first[0]["type"] == "candlestick" and first[0]["name"] == "BTCUSDT"
    assert spacing(first[0]) == INTERVALS["1m"] and first[1]["yaxis"] == "y2", "volume pane"

    choose(dash_duo, ids.CANDLES_INTERVAL, "5m")
    choose(dash_duo, ids.CANDLES_SYMBOL, "ETHUSDT")
    wait_traces(dash_duo, GRAPH, lambda t: t[0]["name"] == "ETHUSDT"
                and spacing(t[0]) == INTERVALS["5m"], message="5m ETHUSDT candles")
    assert url_query(dash_duo) == "?symbol=ETHUSDT&interval=5m&range=1d"

    dash_duo.driver.refresh()
    restored = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 2, message="the chart again")
    assert restored[0]["name"] == "ETHUSDT" and spacing(restored[0]) == INTERVALS["5m"]
    assert dash_duo.find_element(f"#{ids.CANDLES_INTERVAL}").get_attribute("value") == "5m"
    assert dash_duo.get_logs() == []


def test_cndl002_a_live_refresh_keeps_the_zoom_and_the_window_size(
        dash_duo, app, start_as, feed):  # noqa: F811
    updates = CallbackCounter(app, GRAPH)
    start_as("analyst", "/candles?range=1h")
    before = wait_traces(dash_duo, GRAPH, lambda t: len(t[0]["x"]) >= 55)
    xs = before[0]["x"]
    zoom = [xs[10], xs[30]]
    zoom_to(dash_duo, GRAPH, zoom)
    set_live_refresh(dash_duo, "2")
    seen = updates.count
    updates.wait_for_more(seen + 3)
    after = traces(dash_duo, GRAPH)
    assert layout(dash_duo, GRAPH)["xaxis"]["range"] == zoom, "the zoom survived refreshes"
    assert updates.patches >= 2, "refreshes sent the new tail, not the whole chart"
    assert abs(len(after[0]["x"]) - len(xs)) <= 1, "the window keeps its size"
    assert after[0]["x"][-1] >= xs[-1]
    assert dash_duo.get_logs() == []


def test_cndl003_overlay_zone_and_theme(dash_duo, start_as, feed):  # noqa: F811
    start_as("kiosk", "/candles?range=1h&bidask=1")
    found = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 4, message="bid/ask overlay")
    assert [trace["name"] for trace in found[2:]] == ["bid", "ask"]
    utc_first = candle_trace(found)["x"][0]
    choose(dash_duo, ids.TZ_SELECT, "Asia/Tokyo")
    shifted = wait_traces(dash_duo, GRAPH, lambda t: candle_trace(t)["x"][0] - utc_first > 3600_000,
                          message="times in Tokyo")
    assert layout(dash_duo, GRAPH)["xaxis"]["title"]["text"] == "time (Asia/Tokyo)"
    # A minute may roll over between the two reads and slide the 1h window, so
    # compare the sets of candle times rather than the first one alone.
    utc_times = set(candle_trace(found)["x"])
    tokyo_times = {x - 9 * 3600_000 for x in candle_trace(shifted)["x"]}
    assert len(utc_times & tokyo_times) >= len(utc_times) - 2, "every candle moved by +9 h"
    light = chart_theme(dash_duo)
    dash_duo.find_element(f"#{ids.THEME_SWITCH}").click()
    wait_until(lambda: chart_theme(dash_duo) != light, message="the dark chart theme")
    assert chart_theme(dash_duo) == figures.template(True)["layout"]["font"]["color"]
    assert dash_duo.get_logs() == []


def test_cndl004_empty_states_say_why(dash_duo, start_as):
    start_as("trader", "/candles")
    dash_duo.wait_for_contains_text(f"#{ids.CANDLES_NOTE}", "No data for BTCUSDT yet",
                                    timeout=30)
    assert traces(dash_duo, GRAPH) == []
    assert dash_duo.get_logs() == []
