"""Live tail patches: applied to the charted figure, they give exactly the new figure."""

from __future__ import annotations

import json

from callbacks.live import MAX_DROP, marks, tail_patch
from layouts.figures import candles_figure

MINUTE = 60_000


def candles(first: int, count: int, last_close: float | None = None) -> dict:
    """`count` one-minute candles from minute `first`; the last one may have moved."""
    t = [(first + n) * MINUTE for n in range(count)]
    close = [100.0 + n for n in range(first, first + count)]
    if last_close is not None:
        close[-1] = last_close
    return {"t": t, "open": [c - 1 for c in close], "high": [c + 2 for c in close],
            "low": [c - 3 for c in close], "close": close, "volume": [1.0] * count}


def figure(cols: dict) -> dict:
    return candles_figure(cols, symbol="BTCUSDT", tz="UTC", dark=False)


def apply(target: dict, patch) -> dict:
    """Apply a Patch's operations the way Dash's renderer does (Delete and Extend) to the
    figure as the browser holds it (parsed JSON: no list is shared between traces)."""
    result = json.loads(json.dumps(target))
    for operation in patch.to_plotly_json()["operations"]:
        *path, last = operation["location"]
        node = result
        for step in path:
            node = node[step]
        if operation["operation"] == "Delete":
            del node[last]
        elif operation["operation"] == "Extend":
            node[last].extend(operation["params"]["value"])
        else:
            raise AssertionError(f"unexpected operation {operation['operation']}")
    return result


def test_a_moved_last_candle_and_new_ones_patch_to_the_new_window():
    before = figure(candles(0, 1440))
    after = figure(candles(2, 1440, last_close=999.0))  # a day of minutes, two minutes on
    patch = tail_patch(after, marks(before, "k"), "k")
    assert patch is not None
    assert apply(before, patch)["data"] == after["data"]
    operations = json.dumps(patch.to_plotly_json()["operations"])
    assert len(operations) < len(json.dumps(after["data"])) / 20, "a patch is small"


def test_the_window_keeps_its_size_over_many_refreshes():
    shown = figure(candles(0, 30))
    for minute in range(1, 200):
        new = figure(candles(minute, 30))
        shown = apply(shown, tail_patch(new, marks(shown, "k"), "k"))
    assert shown["data"] == figure(candles(199, 30))["data"]
    assert all(len(trace["x"]) == 30 for trace in shown["data"])


def test_anything_unexpected_sends_the_whole_figure():
    before = figure(candles(0, 60))
    old = marks(before, "k")
    assert tail_patch(figure(candles(0, 60)), old, "other filters") is None
    assert tail_patch(figure(candles(MAX_DROP + 2, 60)), old, "k") is None, "a big jump"
    assert tail_patch(figure(candles(100, 60)), old, "k") is None, "the last point is gone"
    assert tail_patch(figure({**candles(0, 0)}), old, "k") is None, "nothing left"
    assert tail_patch(figure(candles(0, 60)), None, "k") is None, "nothing charted yet"
    with_book = candles_figure(candles(0, 60), symbol="BTCUSDT", tz="UTC", dark=False,
                               book={"t": [0], "bid": [1.0], "ask": [2.0]})
    assert tail_patch(with_book, old, "k") is None, "a trace more"


def test_an_unchanged_figure_patches_only_its_last_point():
    before = figure(candles(0, 10))
    patch = tail_patch(figure(candles(0, 10)), marks(before, "k"), "k")
    assert apply(before, patch)["data"] == before["data"]
    locations = {tuple(op["location"][:3]) for op in patch.to_plotly_json()["operations"]}
    assert ("data", 0, "x") in locations and ("data", 1, "marker") in locations
