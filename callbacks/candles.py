"""Callbacks of the candles page: the chart (live, patched), the readout and the URL."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State

from app import access
from callbacks import live
from callbacks.alerts import candle_lines
from callbacks.common import is_dark, note, spot_gap_reason, stale_note, tz_name
from callbacks.p2p_views import implied_view
from db import views
from db.intervals import INTERVALS
from layouts import ids
from layouts.candles import DEFAULT_INTERVAL, DEFAULT_RANGE
from layouts.controls import RANGES, spot_symbols
from layouts.figures import candles_figure, empty_figure, with_alerts
from layouts.urlstate import search

MAX_CANDLES = 2500
NO_SYMBOL = "No spot symbols are configured: set SPOT_SYMBOLS to chart candles."

READOUT = """
function (hover) {
    if (!hover || !hover.points) { return ""; }
    const candle = hover.points.find(p => p.open !== undefined);
    if (!candle) { return ""; }
    const volume = hover.points.find(p => p.curveNumber === 1);
    return candle.x + "  O " + candle.open + "  H " + candle.high + "  L " + candle.low +
        "  C " + candle.close + (volume ? "  V " + volume.y : "");
}
"""


def fit_interval(interval: str, span_seconds: int) -> str:
    """The interval itself, or the finest wider one that draws at most MAX_CANDLES."""
    names = list(INTERVALS)
    for name in names[names.index(interval):]:
        if span_seconds * 1000 // INTERVALS[name] <= MAX_CANDLES:
            return name
    return names[-1]


def candles_view(symbol: str | None, interval: str, range_key: str, *, overlay: bool,
                 tz: str, dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The candle figure and the notes to show above it."""
    if not symbol:
        return empty_figure(NO_SYMBOL, dark), [NO_SYMBOL]
    span = RANGES[range_key]
    shown = fit_interval(interval, span)
    notes = [f"{interval} candles over {range_key} would be too many to draw: showing {shown}."
             ] if shown != interval else []
    rows = views.candles(symbol, shown, span)
    if not rows["t"]:
        reason = spot_gap_reason(symbol, span)
        return empty_figure(reason, dark), [*notes, reason]
    book = views.book(symbol, views.interval_seconds(shown), span) if overlay else None
    if overlay and not book["t"]:
        notes.append(f"No book tickers for {symbol} in this window: no bid/ask overlay.")
    notes += filter(None, [stale_note(symbol)])
    figure = candles_figure(rows, symbol=symbol, tz=tz, dark=dark, book=book,
                            revision=f"{symbol}|{shown}|{range_key}|{tz}")
    return figure, notes


def register(dash_app: Dash) -> None:
    """The live chart, the hover readout and the URL of the candles page."""

    @access.callback(
        dash_app,
        output=[Output(ids.CANDLES_GRAPH, "figure"), Output(ids.CANDLES_MARKS, "data"),
                Output(ids.CANDLES_NOTE, "children")],
        inputs={"symbol": Input(ids.CANDLES_SYMBOL, "value"),
                "interval": Input(ids.CANDLES_INTERVAL, "value"),
                "range_key": Input(ids.CANDLES_RANGE, "value"),
                "overlay": Input(ids.CANDLES_OVERLAY, "value"), **live.VIEWER},
        state={"old_marks": State(ids.CANDLES_MARKS, "data")},
        roles=access.EVERYONE,
    )
    def update_candles(*, symbol, interval, range_key, overlay, ticks, tz, theme, old_marks):
        interval = interval if interval in INTERVALS else DEFAULT_INTERVAL
        range_key = range_key if range_key in RANGES else DEFAULT_RANGE
        symbol = symbol if symbol in spot_symbols() else None
        tz = tz_name(tz)
        figure, notes = candles_view(symbol, interval, range_key, overlay=bool(overlay), tz=tz,
                                     dark=is_dark(theme))
        lines = candle_lines(symbol) if symbol and figure["data"] else []
        figure = with_alerts(figure, lines=lines) if lines else figure
        # The viewer's thresholds are part of the key: a change redraws instead of patching.
        key = f"{symbol}|{interval}|{range_key}|{bool(overlay)}|{tz}|{theme}|{lines}"
        content, marks = live.refresh(figure, old_marks, key, ticks)
        return content, marks, [note(text) for text in notes]

    @access.callback(
        dash_app,
        Output(ids.CANDLES_URL, "search"),
        Input(ids.CANDLES_SYMBOL, "value"),
        Input(ids.CANDLES_INTERVAL, "value"),
        Input(ids.CANDLES_RANGE, "value"),
        Input(ids.CANDLES_OVERLAY, "value"),
        Input(ids.CANDLES_FIAT, "value"),
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_filters(symbol, interval, range_key, overlay, fiat):
        return search({"symbol": symbol, "interval": interval, "range": range_key,
                       "bidask": bool(overlay), "fiat": fiat})

    @access.callback(
        dash_app,
        output=[Output(ids.CANDLES_IMPLIED_GRAPH, "figure"),
                Output(ids.CANDLES_IMPLIED_NOTE, "children")],
        inputs={"fiat": Input(ids.CANDLES_FIAT, "value"),
                "interval": Input(ids.CANDLES_INTERVAL, "value"),
                "range_key": Input(ids.CANDLES_RANGE, "value"), **live.VIEWER},
        roles=access.EVERYONE,
    )
    def update_implied(*, fiat, interval, range_key, ticks, tz, theme):
        interval = interval if interval in INTERVALS else DEFAULT_INTERVAL
        range_key = range_key if range_key in RANGES else DEFAULT_RANGE
        figure, notes = implied_view(fiat, fit_interval(interval, RANGES[range_key]),
                                     range_key, tz=tz_name(tz), dark=is_dark(theme))
        return figure, [note(text, "info" if figure["data"] else "warning") for text in notes]

    dash_app.clientside_callback(READOUT, Output(ids.CANDLES_READOUT, "children"),
                                 Input(ids.CANDLES_GRAPH, "hoverData"))
