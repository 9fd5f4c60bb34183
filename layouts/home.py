"""Status: the real state of the system (database, extension, feeds) or what to do first.

(It was the landing page; the Overview took "/" since traders open the markets first.)
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids

PATH = "/status"
NAME = "Status"
TITLE = "Status · p2pdash"
ORDER = 80
ROLES = ("kiosk", "trader", "analyst", "admin")

REFRESH_MS = 15_000


def _card(title: str, body_id: str) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title),
                     dbc.CardBody(dcc.Loading(html.Div(id=body_id), type="dot"))],
                    className="h-100")


def layout(**_params: str) -> html.Div:
    """The status page: warnings on top, then database and feed cards, refreshed live."""
    return html.Div([
        html.H2("System status", className="h4 mb-3"),
        html.Div(id=ids.HOME_WARNINGS),
        dbc.Row([
            dbc.Col(_card("Database", ids.HOME_DATABASE), md=5, className="mb-3"),
            dbc.Col(_card("Feeds", ids.HOME_FEEDS), md=7, className="mb-3"),
        ]),
        dcc.Interval(id=ids.HOME_REFRESH, interval=REFRESH_MS),
    ])
