"""Callbacks of the depth page: P2P cumulative depth, the spot book over time, the URL."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State

from app import access
from callbacks import common, live, p2p_views
from callbacks.alerts import depth_lines
from db import views
from layouts import ids
from layouts.controls import RANGES, spot_symbols
from layouts.depth import DEFAULT_BOOK_RANGE
from layouts.figures import book_figure, empty_figure, with_price_lines
from layouts.urlstate import search

# Bucket widths (seconds) for the book chart: the narrowest that keeps it under MAX_POINTS.
BOOK_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_POINTS = 1500


def book_width(span_seconds: int) -> int:
    """The bucket width that draws a window of `span_seconds` in at most MAX_POINTS."""
    return next((width for width in BOOK_WIDTHS if span_seconds / width <= MAX_POINTS),
                BOOK_WIDTHS[-1])


def book_view(symbol: str | None, range_key: str, *, tz: str,
              dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The spot best bid/ask figure and the notes to show above it."""
    if not symbol:
        return empty_figure(common.NO_SPOT, dark), [common.NO_SPOT]
    span = RANGES[range_key]
    rows = views.book(symbol, book_width(span), span)
    if not rows["t"]:
        reason = common.spot_gap_reason(symbol, span, "book_ticker")
        return empty_figure(reason, dark), [reason]
    notes = list(filter(None, [common.stale_note(symbol, "book_ticker")]))
    figure = book_figure(rows, symbol=symbol, tz=tz, dark=dark,
                         revision=f"{symbol}|{range_key}|{tz}")
    return figure, notes


def register(dash_app: Dash) -> None:
    """The depth chart, the live book chart and the URL of the depth page."""

    @access.callback(
        dash_app,
        output=[Output(ids.DEPTH_GRAPH, "figure"), Output(ids.DEPTH_NOTE, "children")],
        inputs={"market": Input(ids.DEPTH_MARKET, "value"), "at": Input(ids.DEPTH_AT, "value"),
                "unit": Input(ids.DEPTH_UNIT, "value"),
                "payment": Input(ids.DEPTH_PAYMENT, "value"),
                "merchant": Input(ids.DEPTH_MERCHANT, "value"), **live.VIEWER},
        roles=access.EVERYONE,
    )
    def update_depth(*, market, at, unit, payment, merchant, ticks, tz, theme):
        figure, notes = p2p_views.depth_view(
            market, at, unit, payment or [], bool(merchant), tz=common.tz_name(tz),
            dark=common.is_dark(theme))
        if figure["data"] and market:
            shown = p2p_views.offer_filter(payment=payment or [], merchant=bool(merchant))
            figure = with_price_lines(figure, depth_lines(market, shown))
        colours = ["info" if figure["data"] else "warning"] + ["warning"] * len(notes)
        return figure, [common.note(text, colour)
                        for text, colour in zip(notes, colours, strict=False)]

    @access.callback(
        dash_app,
        Output(ids.DEPTH_PAYMENT, "options"),
        Input(ids.DEPTH_MARKET, "value"),
        State(ids.DEPTH_PAYMENT, "value"),
        roles=access.EVERYONE,
    )
    def update_payment_options(market, selected):
        codes = views.p2p_method_codes((market.split(":")[0],)) if market else []
        return sorted(set(codes) | set(selected or []))

    @access.callback(
        dash_app,
        output=[Output(ids.DEPTH_BOOK_GRAPH, "figure"), Output(ids.DEPTH_BOOK_MARKS, "data"),
                Output(ids.DEPTH_BOOK_NOTE, "children")],
        inputs={"symbol": Input(ids.DEPTH_SYMBOL, "value"),
                "range_key": Input(ids.DEPTH_RANGE, "value"), **live.VIEWER},
        state={"old_marks": State(ids.DEPTH_BOOK_MARKS, "data")},
        roles=access.EVERYONE,
    )
    def update_book(*, symbol, range_key, ticks, tz, theme, old_marks):
        symbol = symbol if symbol in spot_symbols() else None
        range_key = range_key if range_key in RANGES else DEFAULT_BOOK_RANGE
        tz = common.tz_name(tz)
        figure, notes = book_view(symbol, range_key, tz=tz, dark=common.is_dark(theme))
        key = f"{symbol}|{range_key}|{tz}|{theme}"
        content, marks = live.refresh(figure, old_marks, key, ticks)
        return content, marks, [common.note(text) for text in notes]

    @access.callback(
        dash_app,
        Output(ids.DEPTH_URL, "search"),
        inputs={"market": Input(ids.DEPTH_MARKET, "value"), "at": Input(ids.DEPTH_AT, "value"),
                "unit": Input(ids.DEPTH_UNIT, "value"),
                "payment": Input(ids.DEPTH_PAYMENT, "value"),
                "merchant": Input(ids.DEPTH_MERCHANT, "value"),
                "symbol": Input(ids.DEPTH_SYMBOL, "value"),
                "range_key": Input(ids.DEPTH_RANGE, "value")},
        state={"tz": State(ids.TZ_STORE, "data")},
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_filters(*, market, at, unit, payment, merchant, symbol, range_key, tz):
        at = p2p_views.at_param(at, common.tz_name(tz))
        return search({"market": market, "at": at, "unit": unit,
                       "payment": payment, "merchant": bool(merchant), "symbol": symbol,
                       "range": range_key})
