"""Admin tab "Wall screens": kiosk devices (create with a setup link shown once, change the
playlist, new link, revoke) and playlists (one view a line, `VIEW [DWELL]`)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids

DEVICES_REFRESH_MS = 15_000
PLAYLIST_HELP = ("One view a line: VIEW [DWELL seconds]. VIEW is `wall` (optionally "
                 "`wall?market=binance:USDT/ARS,okx:USDT/ARS&symbol=BTCUSDT`) or a page with "
                 "its filters, e.g. `/spread?market=binance:USDT/ARS&range=1d`.")


def _field(label: str, control) -> html.Div:
    return html.Div([dbc.Label(label, html_for=getattr(control, "id", None)), control],
                    className="mb-2")


def create_card() -> dbc.Card:
    """Name and playlist of a new screen; its setup link appears once below."""
    return dbc.Card([dbc.CardHeader("New wall screen"), dbc.CardBody([
        _field("Name", dbc.Input(id=ids.ADMIN_KIOSK_NAME, placeholder="e.g. lobby")),
        _field("Shows", dbc.Select(id=ids.ADMIN_KIOSK_PLAYLIST, value="wall",
                                   options=[{"label": "the wall", "value": "wall"}])),
        dbc.Button("Create and get the setup link", id=ids.ADMIN_KIOSK_CREATE,
                   color="primary"),
        html.Div(id=ids.ADMIN_KIOSK_RESULT, className="mt-2"),
    ])], className="mb-3")


def manage_card() -> dbc.Card:
    """Change what a screen shows, give it a new setup link, or revoke it."""
    return dbc.Card([dbc.CardHeader("Manage a wall screen"), dbc.CardBody([
        _field("Screen", dbc.Select(id=ids.ADMIN_KIOSK_DEVICE, options=[])),
        _field("Shows", dbc.Select(id=ids.ADMIN_KIOSK_MANAGE_PLAYLIST, value="wall",
                                   options=[{"label": "the wall", "value": "wall"}])),
        html.Div([
            dbc.Button("Set playlist", id=ids.ADMIN_KIOSK_SET_PLAYLIST, color="primary",
                       className="me-2"),
            dbc.Button("New setup link", id=ids.ADMIN_KIOSK_NEW_LINK, color="secondary",
                       outline=True, className="me-2",
                       title="For a replaced or wiped screen: the old link and session end"),
            dbc.Button("Revoke", id=ids.ADMIN_KIOSK_REVOKE, color="danger", outline=True,
                       title="The screen shows 'revoked' and stops; its link stops working"),
        ]),
    ])], className="mb-3")


def playlist_card() -> dbc.Card:
    """Edit a playlist: pick one to load it, or type a new name."""
    return dbc.Card([dbc.CardHeader("Playlist"), dbc.CardBody([
        _field("Open", dcc.Dropdown(id=ids.ADMIN_KIOSK_PLAYLISTS, placeholder="a playlist")),
        _field("Name", dbc.Input(id=ids.ADMIN_KIOSK_PLAYLIST_NAME, placeholder="e.g. lobby-loop")),
        _field("Views", dbc.Textarea(id=ids.ADMIN_KIOSK_PLAYLIST_TEXT, rows=6,
                                     placeholder="wall 30\n/spread?range=1d 20")),
        html.P(PLAYLIST_HELP, className="small text-body-secondary"),
        dbc.Button("Save", id=ids.ADMIN_KIOSK_PLAYLIST_SAVE, color="primary", className="me-2"),
        dbc.Button("Delete", id=ids.ADMIN_KIOSK_PLAYLIST_DELETE, color="danger", outline=True),
        html.Div(id=ids.ADMIN_KIOSK_PLAYLIST_RESULT, className="mt-2"),
    ])])


def kiosk_tab() -> html.Div:
    """Screens and playlists on the left, the forms on the right."""
    return html.Div([
        dcc.Store(id=ids.ADMIN_KIOSK_VERSION, data=0),
        dcc.Interval(id=ids.ADMIN_KIOSK_REFRESH, interval=DEVICES_REFRESH_MS),
        dbc.Row([
            dbc.Col([html.H3("Wall screens", className="h6"),
                     html.Div(id=ids.ADMIN_KIOSK_DEVICES),
                     html.H3("Playlists", className="h6 mt-3"),
                     html.Div(id=ids.ADMIN_KIOSK_PLAYLIST_TABLE)], lg=8),
            dbc.Col([create_card(), manage_card(), playlist_card()], lg=4),
        ], className="mt-3"),
    ])
