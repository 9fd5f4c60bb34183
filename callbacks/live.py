"""Live refresh of time-series charts: send the new tail as a Patch, not the whole figure.

A chart that refreshes every few seconds on a wall screen changes at its end only: the last
point (an open candle, the current bucket) moves and new points arrive while the oldest fall
out of the window. `tail_patch` turns a freshly built figure into a Patch that removes the
old last point, appends the new tail and drops as many points from the front, so each
refresh carries a few hundred bytes and the browser holds a window of constant size (weeks
on a kiosk without growing). The chart's "marks" (per trace: point count and last x) travel
in a dcc.Store next to it. Anything unexpected (a filter change, a trace count change, a
point that vanished, a big jump) falls back to the full figure, and so does every
FULL_EVERY-th tick, which also picks up late corrections inside the window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

from dash import Input, Patch, ctx

from layouts import ids

FULL_EVERY = 12
MAX_DROP = 50
# The inputs every live chart takes besides its filters: the tick, the zone and the theme.
VIEWER = {"ticks": Input(ids.LIVE, "n_intervals"), "tz": Input(ids.TZ_STORE, "data"),
          "theme": Input(ids.THEME_STORE, "data")}


def marks(figure: Mapping[str, Any], key: str) -> dict[str, Any]:
    """What the browser will hold after this figure: per trace, point count and last x."""
    traces = []
    for trace in figure.get("data", []):
        xs = trace.get("x") or []
        traces.append({"n": len(xs), "last": xs[-1] if xs else None})
    return {"key": key, "traces": traces}


def _arrays(trace: Mapping[str, Any], length: int) -> list[tuple[str, ...]]:
    """Paths of the per-point arrays of a trace (x, y, open, ..., marker.color)."""
    paths: list[tuple[str, ...]] = []
    for name, value in trace.items():
        if isinstance(value, list) and len(value) == length:
            paths.append((name,))
        elif isinstance(value, dict):
            paths += [(name, inner) for inner, item in value.items()
                      if isinstance(item, list) and len(item) == length]
    return paths


def _get(trace: Mapping[str, Any], path: Sequence[str]) -> list[Any]:
    value: Any = trace
    for step in path:
        value = value[step]
    return value


def _tail_start(xs: Sequence[Any], old: Mapping[str, Any]) -> int | None:
    """Where the new points start (at the old last x), or None when no patch fits."""
    if not old["n"] or not xs or old["last"] is None:
        return None
    start = bisect_left(xs, old["last"])
    if start >= len(xs) or xs[start] != old["last"]:
        return None
    drop = old["n"] - 1 - start
    return start if 0 <= drop <= MAX_DROP else None


def tail_patch(figure: Mapping[str, Any], old: Mapping[str, Any] | None,
               key: str) -> Patch | None:
    """A Patch that brings the charted `old` state to `figure`, or None to send it whole."""
    data = figure.get("data", [])
    if not old or old.get("key") != key or len(old.get("traces", [])) != len(data):
        return None
    starts = [_tail_start(trace.get("x") or [], mark)
              for trace, mark in zip(data, old["traces"], strict=True)]
    if any(start is None for start in starts):
        return None
    patch = Patch()
    for index, (trace, mark, start) in enumerate(zip(data, old["traces"], starts, strict=True)):
        drop = mark["n"] - 1 - start
        for path in _arrays(trace, len(trace["x"])):
            target = patch["data"][index]
            for step in path:
                target = target[step]
            del target[mark["n"] - 1]
            target.extend(_get(trace, path)[start:])
            for _ in range(drop):
                del target[0]
    return patch


def is_tick() -> bool:
    """Whether the live refresh (not a filter) fired this callback."""
    return ctx.triggered_id == ids.LIVE


def refresh(figure: dict[str, Any], old: Mapping[str, Any] | None, key: str,
            ticks: int | None) -> tuple[Any, dict[str, Any]]:
    """The figure or its tail Patch, and the marks to keep for the next refresh."""
    new_marks = marks(figure, key)
    if is_tick() and (ticks or 0) % FULL_EVERY:
        patch = tail_patch(figure, old, key)
        if patch is not None:
            return patch, new_marks
    return figure, new_marks
