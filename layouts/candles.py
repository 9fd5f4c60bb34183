"""Candles: candlesticks with volume, any interval from 1m to 1w, the book's bid and ask, and
for a fiat the implied USDT rate (P2P BTC/fiat over spot BTCUSDT) against P2P USDT."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from app import access
from db.intervals import INTERVALS
from layouts import ids
from layouts.controls import (
    RANGES,
    buttons,
    chart,
    fiats,
    field,
    note_area,
    p2p_markets,
    select,
    spot_symbols,
)
from layouts.download import chart_header
from layouts.urlstate import location, pick, pick_flag

PATH = "/candles"
NAME = "Candles"
TITLE = "Candles · p2pdash"
ORDER = 40
ROLES = access.EVERYONE

DEFAULT_INTERVAL = "1m"
DEFAULT_RANGE = "1d"


def implied_fiats() -> list[str]:
    """Fiats with both a P2P BTC and a P2P USDT market configured."""
    markets = p2p_markets()
    assets = {(market.asset, market.fiat) for market in markets}
    return [fiat for fiat in fiats(markets) if {("BTC", fiat), ("USDT", fiat)} <= assets]


def controls(params: dict[str, str]) -> dbc.Row:
    """Symbol, interval, range and the bid/ask overlay, from the URL or the defaults."""
    symbols = spot_symbols()
    symbol = pick(params, "symbol", symbols, symbols[0] if symbols else None)
    return dbc.Row([
        field("Symbol", select(ids.CANDLES_SYMBOL, symbols, symbol), 2),
        field("Interval", select(ids.CANDLES_INTERVAL, INTERVALS,
                                 pick(params, "interval", INTERVALS, DEFAULT_INTERVAL)), 2),
        field("Range", buttons(ids.CANDLES_RANGE, RANGES,
                               pick(params, "range", RANGES, DEFAULT_RANGE)), "auto"),
        field("Overlay", dbc.Switch(id=ids.CANDLES_OVERLAY, label="book bid/ask",
                                    value=pick_flag(params, "bidask")), "auto"),
    ], className="align-items-end")


def implied_block(params: dict[str, str]) -> dbc.Card:
    """The implied-rate chart and its fiat choice."""
    choices = implied_fiats()
    fiat = pick(params, "fiat", choices, choices[0] if choices else None)
    return dbc.Card([
        dbc.CardHeader(dbc.Row([
            dbc.Col(html.H3("Implied USDT rate and premium", className="h6 mb-0"),
                    className="align-self-center"),
            dbc.Col(select(ids.CANDLES_FIAT, choices, fiat), width="auto"),
        ])),
        dbc.CardBody([note_area(ids.CANDLES_IMPLIED_NOTE),
                      chart(ids.CANDLES_IMPLIED_GRAPH, height="40vh")]),
    ], className="mt-3")


def layout(**params: str) -> html.Div:
    """Controls, an OHLCV readout, the candle chart, then the implied rate."""
    return html.Div([
        location(ids.CANDLES_URL),
        html.H2("Candles", className="h4 mb-3"),
        controls(params),
        html.Div(id=ids.CANDLES_READOUT, className="small font-monospace mb-1",
                 style={"minHeight": "1.5em"}),
        note_area(ids.CANDLES_NOTE),
        chart_header(None, ids.DOWNLOAD_CANDLES),
        chart(ids.CANDLES_GRAPH, height="62vh", marks_id=ids.CANDLES_MARKS),
        implied_block(params),
    ])
