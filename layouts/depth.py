"""Depth: cumulative depth of both sides of a P2P market (latest or at a chosen time, in asset
or fiat units, by payment method and merchant), and a spot symbol's best bid and ask over
time from the book tickers."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from app import access
from layouts import ids
from layouts.controls import (
    RANGES,
    buttons,
    chart,
    field,
    market_keys,
    note_area,
    payment_dropdown,
    select,
    spot_symbols,
)
from layouts.download import chart_header
from layouts.urlstate import location, pick, pick_codes, pick_flag

PATH = "/depth"
NAME = "Depth"
TITLE = "Depth · p2pdash"
ORDER = 20
ROLES = access.EVERYONE

UNITS = {"asset": "asset units", "fiat": "fiat"}
DEFAULT_BOOK_RANGE = "1h"
AT_FORMAT = "YYYY-MM-DD HH:MM"


def p2p_controls(params: dict[str, str]) -> dbc.Row:
    """Market, time, unit, payment methods and merchants, from the URL or the defaults."""
    markets = market_keys()
    return dbc.Row([
        field("Market", select(ids.DEPTH_MARKET, markets,
                               pick(params, "market", markets, markets[0] if markets else None)),
              3),
        field(f"At ({AT_FORMAT}, your zone; empty: latest)",
              dbc.Input(id=ids.DEPTH_AT, value=params.get("at", ""), size="sm", debounce=True,
                        placeholder="latest"), 3),
        field("Units", buttons(ids.DEPTH_UNIT, UNITS, pick(params, "unit", UNITS, "asset")),
              "auto"),
        field("Payment methods", payment_dropdown(ids.DEPTH_PAYMENT,
                                                  pick_codes(params, "payment")), 3),
        field("Merchants", dbc.Switch(id=ids.DEPTH_MERCHANT, label="merchants only",
                                      value=pick_flag(params, "merchant")), "auto"),
    ], className="align-items-end")


def book_controls(params: dict[str, str]) -> dbc.Row:
    """Spot symbol and range of the book ticker chart."""
    symbols = spot_symbols()
    return dbc.Row([
        field("Spot symbol", select(ids.DEPTH_SYMBOL, symbols,
                                    pick(params, "symbol", symbols,
                                         symbols[0] if symbols else None)), 3),
        field("Range", buttons(ids.DEPTH_RANGE, RANGES,
                               pick(params, "range", RANGES, DEFAULT_BOOK_RANGE)), "auto"),
    ], className="align-items-end")


def layout(**params: str) -> html.Div:
    """The P2P depth chart with its filters, then the spot book chart with its own."""
    return html.Div([
        location(ids.DEPTH_URL),
        html.H2("Depth", className="h4 mb-3"),
        p2p_controls(params),
        note_area(ids.DEPTH_NOTE),
        chart_header(None, ids.DOWNLOAD_DEPTH),
        chart(ids.DEPTH_GRAPH, height="50vh"),
        html.H3("Spot best bid and ask", className="h6 mt-4"),
        book_controls(params),
        note_area(ids.DEPTH_BOOK_NOTE),
        chart(ids.DEPTH_BOOK_GRAPH, height="45vh", marks_id=ids.DEPTH_BOOK_MARKS),
    ])
