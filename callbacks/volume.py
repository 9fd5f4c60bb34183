"""Callbacks of the volume page: spot volume per symbol and P2P liquidity, live; the URL."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State

from app import access
from callbacks import common, live, p2p_views
from db import views
from layouts import ids
from layouts.controls import BUCKETS, RANGES, spot_symbols
from layouts.figures import empty_figure, volume_figure
from layouts.urlstate import search
from layouts.volume import DEFAULT_BUCKET, DEFAULT_RANGE

NO_SYMBOLS = "Choose one or more spot symbols."


def volume_view(symbols: list[str], bucket: str, range_key: str, *, tz: str,
                dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The spot volume figure and the notes to show above it."""
    if not spot_symbols():
        return empty_figure(common.NO_SPOT, dark), [common.NO_SPOT]
    if not symbols:
        return empty_figure(NO_SYMBOLS, dark), [NO_SYMBOLS]
    span = RANGES[range_key]
    series = {symbol: views.candles(symbol, bucket, span) for symbol in symbols}
    notes = [common.spot_gap_reason(symbol, span) for symbol, cols in series.items()
             if not cols["t"]]
    notes += filter(None, (common.stale_note(symbol) for symbol, cols in series.items()
                           if cols["t"]))
    drawn = {symbol: cols for symbol, cols in series.items() if cols["t"]}
    if not drawn:
        return empty_figure(notes[0], dark), notes
    figure = volume_figure(drawn, tz=tz, dark=dark,
                           revision=f"{','.join(symbols)}|{bucket}|{range_key}|{tz}")
    return figure, notes


def _choices(bucket: str | None, range_key: str | None) -> tuple[str, str]:
    return (bucket if bucket in BUCKETS else DEFAULT_BUCKET,
            range_key if range_key in RANGES else DEFAULT_RANGE)


def register(dash_app: Dash) -> None:
    """Both charts (live), and the URL of the volume page."""

    @access.callback(
        dash_app,
        output=[Output(ids.VOLUME_GRAPH, "figure"), Output(ids.VOLUME_MARKS, "data"),
                Output(ids.VOLUME_NOTE, "children")],
        inputs={"symbols": Input(ids.VOLUME_SYMBOLS, "value"),
                "bucket": Input(ids.VOLUME_INTERVAL, "value"),
                "range_key": Input(ids.VOLUME_RANGE, "value"), **live.VIEWER},
        state={"old_marks": State(ids.VOLUME_MARKS, "data")},
        roles=access.EVERYONE,
    )
    def update_volume(*, symbols, bucket, range_key, ticks, tz, theme, old_marks):
        bucket, range_key = _choices(bucket, range_key)
        symbols = [symbol for symbol in symbols or [] if symbol in spot_symbols()]
        tz = common.tz_name(tz)
        figure, notes = volume_view(symbols, bucket, range_key, tz=tz,
                                    dark=common.is_dark(theme))
        key = f"{symbols}|{bucket}|{range_key}|{tz}|{theme}"
        content, marks = live.refresh(figure, old_marks, key, ticks)
        return content, marks, [common.note(text) for text in notes]

    @access.callback(
        dash_app,
        output=[Output(ids.VOLUME_P2P_GRAPH, "figure"), Output(ids.VOLUME_P2P_MARKS, "data"),
                Output(ids.VOLUME_P2P_NOTE, "children")],
        inputs={"markets": Input(ids.VOLUME_MARKETS, "value"),
                "bucket": Input(ids.VOLUME_INTERVAL, "value"),
                "range_key": Input(ids.VOLUME_RANGE, "value"), **live.VIEWER},
        state={"old_marks": State(ids.VOLUME_P2P_MARKS, "data")},
        roles=access.EVERYONE,
    )
    def update_liquidity(*, markets, bucket, range_key, ticks, tz, theme, old_marks):
        bucket, range_key = _choices(bucket, range_key)
        tz = common.tz_name(tz)
        figure, notes = p2p_views.liquidity_view(markets or [], bucket, range_key, tz=tz,
                                                 dark=common.is_dark(theme))
        key = f"{markets}|{bucket}|{range_key}|{tz}|{theme}"
        content, marks = live.refresh(figure, old_marks, key, ticks)
        return content, marks, [common.note(text) for text in notes]

    @access.callback(
        dash_app,
        Output(ids.VOLUME_URL, "search"),
        Input(ids.VOLUME_SYMBOLS, "value"),
        Input(ids.VOLUME_MARKETS, "value"),
        Input(ids.VOLUME_RANGE, "value"),
        Input(ids.VOLUME_INTERVAL, "value"),
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_filters(symbols, markets, range_key, bucket):
        return search({"symbols": symbols, "markets": markets, "range": range_key,
                       "bucket": bucket})
