"""The wall screen, /kiosk/<playlist>: a player that rotates through the playlist's views
with no navbar and no controls, in large type on a dark ground, with a clock.

Each view is a block of the stage: the wall (panels filled by callbacks/kiosk.py), a page
of the app in a frame (loaded when its turn comes, emptied after), or a notice where an
entry names a page or market that does not exist. assets/kiosk.js runs the rotation, the
clock, the data ages and STALE marks, the OFFLINE overlay and the check-ins; the data
attributes of the root tell it the playlist, its hash, the build and the timings.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app import state
from app.kiosk import build, playlists
from db import kiosk as store
from layouts import ids
from layouts.controls import market_keys, spot_symbols

PATH = "/kiosk/wall"
PATH_TEMPLATE = "/kiosk/<playlist>"
NAME = "Wall"
TITLE = "Wall · p2pdash"
ORDER = 95
ROLES = ("kiosk", "admin")
NOT_SHOWN = ("/kiosk", "/admin", "/exports", "/account")


def _notice(index: int, dwell: int, title: str, text: str) -> html.Div:
    return html.Div([html.H2(title), html.P(text)], className="kiosk-view kiosk-notice",
                    **{"data-dwell": str(dwell), "data-title": title, "data-index": str(index)})


def _listed(params: dict[str, list[str]], name: str) -> list[str]:
    return [item.strip() for value in params.get(name, []) for item in value.split(",")
            if item.strip()]


def wall_config(params: dict[str, list[str]]) -> dict[str, Any]:
    """The markets and symbols a wall shows (all configured ones unless named), and the
    names that are not configured."""
    known_markets, known_symbols = market_keys(), list(spot_symbols())
    markets = _listed(params, "market") or known_markets
    symbols = [symbol.upper() for symbol in _listed(params, "symbol")] or known_symbols
    missing = [name for name in markets if name not in known_markets] + \
        [name for name in symbols if name not in known_symbols]
    return {"markets": [name for name in markets if name in known_markets],
            "symbols": [name for name in symbols if name in known_symbols],
            "missing": missing}


def _panel(title: str, body: Any, class_name: str = "") -> html.Section:
    return html.Section([html.H3(title, className="kiosk-panel-title"), body],
                        className=f"kiosk-box {class_name}".strip())


def wall_view(index: int, dwell: int, params: dict[str, list[str]]) -> html.Div:
    """The wall: market cards, the spread chart, spot tickers, feeds and alerts."""
    view = {"type": ids.KIOSK_WALL_CONFIG, "index": index}
    return html.Div([
        dcc.Store(id=view, data=wall_config(params)),
        html.Div(id={"type": ids.KIOSK_WALL_PANELS, "index": index}, className="kiosk-wall"),
        html.Section([
            html.Div(id={"type": ids.KIOSK_SPREAD_HEAD, "index": index}),
            dcc.Graph(id={"type": ids.KIOSK_SPREAD, "index": index}, className="kiosk-graph",
                      config={"staticPlot": True, "displayModeBar": False},
                      figure={"data": [], "layout": {"xaxis": {"visible": False},
                                                     "yaxis": {"visible": False}}}),
            dcc.Store(id={"type": ids.KIOSK_SPREAD_MARKS, "index": index}),
        ], className="kiosk-box kiosk-spread"),
    ], className="kiosk-view kiosk-wall-view",
        **{"data-dwell": str(dwell), "data-title": "Wall", "data-index": str(index)})


def _page_problem(path: str, params: dict[str, list[str]]) -> str | None:
    """Why a page view cannot be shown, or None."""
    pages = {page["path"]: page for page in dash.page_registry.values()}
    page = pages.get(path)
    if page is None or path.startswith(NOT_SHOWN) or "kiosk" not in page.get("roles", ()):
        return f"There is no page {path} a wall screen may show."
    missing = [name for name in _listed(params, "market") if name not in market_keys()] + \
        [name for name in _listed(params, "symbol") if name.upper() not in spot_symbols()]
    if missing:
        return f"{', '.join(missing)} is not configured any more."
    return None


def view_block(index: int, entry: dict[str, Any]) -> html.Div:
    """One playlist entry as a block of the stage."""
    path, params = playlists.split(entry["view"])
    dwell = int(entry["dwell"])
    if path == playlists.WALL:
        return wall_view(index, dwell, params)
    problem = _page_problem(path, params)
    if problem:
        return _notice(index, dwell, "This view is not available", f"{problem} The playlist "
                       "goes on; an administrator can change it in Admin, Wall screens.")
    title = next((page["name"] for page in dash.page_registry.values()
                  if page["path"] == path), path)
    return html.Div(html.Iframe(className="kiosk-frame", title=title,
                                **{"data-src": entry["view"]}),
                    className="kiosk-view kiosk-page",
                    **{"data-dwell": str(dwell), "data-title": title, "data-index": str(index)})


def _views(name: str) -> list[dict[str, Any]] | None:
    try:
        with state.current().engine.connect() as connection:
            return store.playlist_views(connection, name)
    except SQLAlchemyError:
        return list(playlists.WALL_ONLY)


def header() -> html.Header:
    """The strip on top: what is shown, the clock and its zone (filled by kiosk.js)."""
    return html.Header([
        html.Span("p2pdash", className="kiosk-brand"),
        html.Span(id=ids.KIOSK_TITLE, className="kiosk-title"),
        html.Span([html.Span(id=ids.KIOSK_CLOCK, className="kiosk-clock"),
                   html.Span(id=ids.KIOSK_ZONE, className="kiosk-zone")]),
    ], className="kiosk-header")


def offline_overlay() -> html.Div:
    """Shown by kiosk.js while the server cannot be reached."""
    return html.Div([html.Div("OFFLINE", className="kiosk-offline-word"),
                     html.Div(["The server cannot be reached. Last contact: ",
                               html.Span(id=ids.KIOSK_OFFLINE_SINCE),
                               ". Retrying by itself."])],
                    id=ids.KIOSK_OFFLINE, className="kiosk-offline", role="alert")


def layout(playlist: str | None = None, **_params: str) -> html.Div:
    """The player of playlist `playlist` (the wall alone for "wall")."""
    settings = state.current().settings
    name = (playlist or playlists.WALL).strip().lower()
    views = _views(name)
    stage = [view_block(index, entry) for index, entry in enumerate(views)] if views else \
        [_notice(0, 30, "No such playlist", f"There is no playlist named {name!r}.")]
    attributes = {"data-playlist": name, "data-playlist-hash":
                  playlists.fingerprint(views or []), "data-build":
                  build.current(current_app), "data-timezone":
                  settings.kiosk.timezone, "data-heartbeat-ms":
                  str(int(settings.kiosk.heartbeat_seconds * 1000))}
    return html.Div([
        header(),
        html.Main(stage, id=ids.KIOSK_STAGE, className="kiosk-stage"),
        dcc.Interval(id=ids.KIOSK_TICK, interval=int(settings.kiosk.refresh_seconds * 1000)),
        offline_overlay(),
    ], id=ids.KIOSK_ROOT, className="kiosk-root", **attributes)
