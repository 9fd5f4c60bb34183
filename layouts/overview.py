"""Overview, the landing page: every P2P market's best prices, spread and liquidity, the spot
tickers, and how fresh each feed's data is, at a glance and live."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from layouts import ids
from layouts.controls import LOADING_DELAY_MS, field, note_area, p2p_markets
from layouts.urlstate import location, pick_many

PATH = "/"
NAME = "Overview"
TITLE = "p2pdash"
ORDER = 0
ROLES = access.EVERYONE


def _card(title: str, body_id: str) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(html.H3(title, className="h6 mb-0")),
                     dbc.CardBody(dcc.Loading(html.Div(id=body_id), delay_show=LOADING_DELAY_MS,
                                              type="dot"), className="p-2")],
                    className="mb-3")


def filters(params: dict[str, str]) -> dbc.Row:
    """Which P2P markets to list: by exchange and by fiat (all when none is chosen)."""
    markets = p2p_markets()
    exchanges = list(dict.fromkeys(market.exchange for market in markets))
    fiats = list(dict.fromkeys(market.fiat for market in markets))
    return dbc.Row([
        field("Exchanges", dcc.Dropdown(id=ids.OVERVIEW_EXCHANGES, options=exchanges, multi=True,
                                        value=pick_many(params, "exchange", exchanges),
                                        placeholder="all"), 4),
        field("Fiats", dcc.Dropdown(id=ids.OVERVIEW_FIATS, options=fiats, multi=True,
                                    value=pick_many(params, "fiat", fiats),
                                    placeholder="all"), 4),
    ])


def layout(**params: str) -> html.Div:
    """Filters, then the P2P markets, the spot tickers and the feeds, refreshed live."""
    return html.Div([
        location(ids.OVERVIEW_URL),
        html.H2("Overview", className="h4 mb-3"),
        filters(params),
        note_area(ids.OVERVIEW_NOTE),
        _card("P2P markets", ids.OVERVIEW_MARKETS),
        dbc.Row([
            dbc.Col(_card("Spot", ids.OVERVIEW_TICKERS), lg=8),
            dbc.Col(_card("Feed health", ids.OVERVIEW_FEEDS), lg=4),
        ]),
    ])
