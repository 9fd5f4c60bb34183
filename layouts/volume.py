"""Volume: spot volume, quote volume and trades per symbol over time; P2P liquidity per side,
advert and advertiser counts over time."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from layouts import ids
from layouts.controls import (
    BUCKETS,
    RANGES,
    buttons,
    chart,
    field,
    market_keys,
    note_area,
    select,
    spot_symbols,
)
from layouts.download import chart_header
from layouts.urlstate import location, pick, pick_many

PATH = "/volume"
NAME = "Volume"
TITLE = "Volume · p2pdash"
ORDER = 30
ROLES = access.EVERYONE

DEFAULT_RANGE = "1d"
DEFAULT_BUCKET = "1h"


def controls(params: dict[str, str]) -> dbc.Row:
    """Symbols and markets to compare, the range and the bucket, from the URL or defaults."""
    symbols, markets = spot_symbols(), market_keys()
    return dbc.Row([
        field("Spot symbols", dcc.Dropdown(
            id=ids.VOLUME_SYMBOLS, options=list(symbols), multi=True,
            value=pick_many(params, "symbols", symbols, symbols[:2])), 4),
        field("P2P markets", dcc.Dropdown(
            id=ids.VOLUME_MARKETS, options=markets, multi=True,
            value=pick_many(params, "markets", markets, markets[:1])), 4),
        field("Range", buttons(ids.VOLUME_RANGE, RANGES,
                               pick(params, "range", RANGES, DEFAULT_RANGE)), "auto"),
        field("Bucket", select(ids.VOLUME_INTERVAL, BUCKETS,
                               pick(params, "bucket", BUCKETS, DEFAULT_BUCKET)), 1),
    ], className="align-items-end")


def _section(title: str, note_id: str, graph_id: str, marks_id: str, height: str,
             *, menu_id: str | None = None) -> html.Div:
    heading = (chart_header(title, menu_id, "h6 mb-0") if menu_id
               else html.H3(title, className="h6"))
    return html.Div([html.Div(heading, className="mt-3"), note_area(note_id),
                     chart(graph_id, height=height, marks_id=marks_id)])


def layout(**params: str) -> html.Div:
    """Controls, the spot volume chart, then the P2P liquidity chart."""
    return html.Div([
        location(ids.VOLUME_URL),
        html.H2("Volume and liquidity", className="h4 mb-3"),
        controls(params),
        _section("Spot volume, quote volume and trades", ids.VOLUME_NOTE, ids.VOLUME_GRAPH,
                 ids.VOLUME_MARKS, "60vh",
                 menu_id=ids.DOWNLOAD_VOLUME),
        _section("P2P liquidity, adverts and advertisers", ids.VOLUME_P2P_NOTE,
                 ids.VOLUME_P2P_GRAPH, ids.VOLUME_P2P_MARKS, "50vh"),
    ])
