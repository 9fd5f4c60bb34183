"""Depth page, P2P part, in Chromium: cumulative depth of books the real pollers stored from
the local fake P2P exchange, in asset or fiat units, by payment method, at a chosen time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from layouts import ids
from tests.browser.p2p_fixtures import (  # noqa: F401
    fake,
    p2p_clock,
    p2p_data,
    p2p_url,
    settings,
)
from tests.browser.views_helpers import choose, click_option, pick, url_query, wait_traces
from tests.spot_support import wait_until

GRAPH = ids.DEPTH_GRAPH


def snapshot_time(dash_duo) -> datetime | None:
    """The capture time the note names ("Snapshot of 2024-05-01 12:00:00 (UTC)")."""
    notes = dash_duo.find_elements(f"#{ids.DEPTH_NOTE}")
    match = re.search(r"Snapshot of (\S+ \S+) \(UTC\)", notes[0].text if notes else "")
    return datetime.fromisoformat(match[1]).replace(tzinfo=UTC) if match else None


def cumulative(trace: dict) -> bool:
    return all(b >= a for a, b in zip(trace["y"], trace["y"][1:], strict=False))


def test_dpth002_depth_in_units_by_method_and_at_a_time(dash_duo, start_as,
                                                        p2p_data):  # noqa: F811
    start_as("trader", "/depth")
    bids, asks = wait_traces(dash_duo, GRAPH, lambda t: len(t) == 2 and len(t[1]["x"]) >= 10)
    assert bids["name"] == "bids" and asks["name"] == "asks"
    assert max(bids["x"]) < min(asks["x"]), "bids below asks"
    assert asks["x"] == sorted(asks["x"]) and bids["x"] == sorted(bids["x"], reverse=True)
    assert cumulative(asks) and cumulative(bids)
    in_asset = asks["y"][-1]

    click_option(dash_duo, ids.DEPTH_UNIT, "fiat")
    _, asks = wait_traces(dash_duo, GRAPH, lambda t: t[1]["y"][-1] > in_asset * 100,
                          message="depth in ARS")
    dash_duo.wait_for_contains_text(f"#{ids.DEPTH_NOTE}", "Snapshot of")

    pick(dash_duo, f"#{ids.DEPTH_PAYMENT}", "mercadopago")
    wait_traces(dash_duo, GRAPH, lambda t: len(t[1]["x"]) < len(asks["x"]),
                message="fewer levels with one payment method")

    earlier = (datetime.now(UTC) - timedelta(minutes=45)).replace(second=0, microsecond=0)
    dash_duo.find_element(f"#{ids.DEPTH_AT}").send_keys(earlier.strftime("%Y-%m-%d %H:%M\n"))
    wait_until(lambda: (shown := snapshot_time(dash_duo)) is not None
               and earlier - timedelta(minutes=3) <= shown <= earlier,
               message="the snapshot of 45 minutes ago (polls were 3 minutes apart)")
    query = url_query(dash_duo)
    assert "unit=fiat" in query and "payment=mercadopago" in query and "at=" in query

    shown = snapshot_time(dash_duo)
    dash_duo.driver.refresh()
    wait_until(lambda: snapshot_time(dash_duo) == shown, message="the same snapshot again")
    choose(dash_duo, ids.DEPTH_MARKET, "okx:USDT/ARS")
    dash_duo.wait_for_contains_text(f"#{ids.DEPTH_NOTE}", "No adverts of okx:USDT/ARS match")
    query = url_query(dash_duo)
    assert "market=okx" in query and "payment=mercadopago" in query, "the reload kept the filter"
    assert dash_duo.get_logs() == []
