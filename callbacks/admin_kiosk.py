"""Admin tab, wall screens: the device and playlist tables, creating a device (its setup
link shown once), changing its playlist, a new link, revoking, editing playlists."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app import access, state
from app.cli_kiosk import device_state
from app.kiosk import devices, playlists
from callbacks.admin import acting_admin, engine, feedback, table, when
from db import kiosk as store
from layouts import ids

STATE_COLOURS = {"signed in": "success", "awaiting setup": "info", "link expired": "warning",
                 "revoked": "secondary"}
KIOSK_ERRORS = (devices.DeviceError, playlists.PlaylistError)


def devices_table(rows: list[dict[str, Any]]) -> Any:
    """Every screen: what it shows, its state, last contact, address and current view."""
    return table(["Name", "Playlist", "State", "Last contact", "Address", "Showing",
                  "Created"], [
        [row["name"], row["playlist"] or playlists.WALL,
         dbc.Badge(device_state(row), color=STATE_COLOURS[device_state(row)]),
         when(row["last_seen_at"]), row["last_ip"] or "-", row["showing"] or "-",
         when(row["created_at"])] for row in rows])


def playlists_table(rows: list[dict[str, Any]]) -> Any:
    """Every playlist with its views and dwell times."""
    return table(["Name", "Views"], [
        [row["name"], "; ".join(f"{entry['view']} ({entry['dwell']} s)"
                                for entry in row["views"])] for row in rows])


def link_block(name: str, link: str) -> dbc.Alert:
    """A setup link with a copy button, and the warning that it is shown once."""
    hours = state.current().settings.kiosk.link_hours
    return dbc.Alert([
        html.P([html.Strong(f"Open this link on the screen of {name}: "), "it is shown only "
                f"once, works once, and expires in {hours} h."], className="mb-2"),
        html.Div([html.Code(link, id=ids.ADMIN_KIOSK_LINK_TEXT,
                            className="user-select-all me-2 text-break"),
                  dcc.Clipboard(target_id=ids.ADMIN_KIOSK_LINK_TEXT, title="Copy",
                                className="btn btn-sm btn-outline-secondary")],
                 className="d-flex align-items-center"),
    ], color="info", className="mb-0")


def _choices(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"label": "the wall", "value": playlists.WALL}] + \
        [{"label": row["name"], "value": row["name"]} for row in rows]


def _manage(action: str, name: str, playlist: str | None) -> Any:
    """Do one manage action on screen `name`; the note or link block to show."""
    if action == ids.ADMIN_KIOSK_SET_PLAYLIST:
        devices.set_playlist(engine(), acting_admin(), name, playlist)
        return feedback(True, f"{name} shows {playlist or playlists.WALL} from its next "
                              "check-in.")
    if action == ids.ADMIN_KIOSK_NEW_LINK:
        return link_block(name, devices.new_link(engine(), state.current().settings,
                                                 acting_admin(), name))
    ended = devices.revoke(engine(), acting_admin(), name)
    return feedback(True, f"{name} revoked ({ended} session(s) ended); it stops at its next "
                          "check-in.")


def register(dash_app: Dash) -> None:
    """Tables and choices, create, manage, and playlist editing."""
    register_devices(dash_app)
    register_playlists(dash_app)


def register_devices(dash_app: Dash) -> None:
    """The tables and choices, creating a screen and managing one."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KIOSK_DEVICES, "children"),
        Output(ids.ADMIN_KIOSK_PLAYLIST_TABLE, "children"),
        Output(ids.ADMIN_KIOSK_DEVICE, "options"),
        Output(ids.ADMIN_KIOSK_PLAYLIST, "options"),
        Output(ids.ADMIN_KIOSK_MANAGE_PLAYLIST, "options"),
        Output(ids.ADMIN_KIOSK_PLAYLISTS, "options"),
        Input(ids.ADMIN_KIOSK_VERSION, "data"),
        Input(ids.ADMIN_KIOSK_REFRESH, "n_intervals"),
        roles=access.ADMINS,
    )
    def update_kiosk_tables(_version, _ticks):
        screens, lists = store.all_devices(engine()), store.all_playlists(engine())
        names = [{"label": row["name"], "value": row["name"]} for row in screens
                 if not row["revoked_at"]]
        return (devices_table(screens), playlists_table(lists), names, _choices(lists),
                _choices(lists), [row["name"] for row in lists])

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KIOSK_RESULT, "children"),
        Output(ids.ADMIN_KIOSK_VERSION, "data", allow_duplicate=True),
        Input(ids.ADMIN_KIOSK_CREATE, "n_clicks"),
        State(ids.ADMIN_KIOSK_NAME, "value"),
        State(ids.ADMIN_KIOSK_PLAYLIST, "value"),
        State(ids.ADMIN_KIOSK_VERSION, "data"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_create_device(clicks, name, playlist, version):
        if not clicks:
            raise PreventUpdate
        try:
            _device, link = devices.create(engine(), state.current().settings, acting_admin(),
                                           str(name or ""), playlist)
        except KIOSK_ERRORS as error:
            return feedback(False, str(error)), no_update
        return link_block(str(name).strip(), link), (version or 0) + 1

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KIOSK_RESULT, "children", allow_duplicate=True),
        Output(ids.ADMIN_KIOSK_VERSION, "data", allow_duplicate=True),
        Input(ids.ADMIN_KIOSK_SET_PLAYLIST, "n_clicks"),
        Input(ids.ADMIN_KIOSK_NEW_LINK, "n_clicks"),
        Input(ids.ADMIN_KIOSK_REVOKE, "n_clicks"),
        State(ids.ADMIN_KIOSK_DEVICE, "value"),
        State(ids.ADMIN_KIOSK_MANAGE_PLAYLIST, "value"),
        State(ids.ADMIN_KIOSK_VERSION, "data"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_manage_device(_set, _link, _revoke, name, playlist, version):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        if not name:
            return feedback(False, "Choose a screen first."), no_update
        try:
            note = _manage(str(ctx.triggered_id), str(name), playlist)
        except KIOSK_ERRORS as error:
            return feedback(False, str(error)), no_update
        return note, (version or 0) + 1


def register_playlists(dash_app: Dash) -> None:
    """Open a playlist into the form; save or delete it."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KIOSK_PLAYLIST_NAME, "value"),
        Output(ids.ADMIN_KIOSK_PLAYLIST_TEXT, "value"),
        Input(ids.ADMIN_KIOSK_PLAYLISTS, "value"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_open_playlist(name):
        with engine().connect() as connection:
            found = store.playlist_named(connection, str(name)) if name else None
        if found is None:
            raise PreventUpdate
        return found["name"], playlists.as_text(found["views"])

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KIOSK_PLAYLIST_RESULT, "children"),
        Output(ids.ADMIN_KIOSK_VERSION, "data", allow_duplicate=True),
        Input(ids.ADMIN_KIOSK_PLAYLIST_SAVE, "n_clicks"),
        Input(ids.ADMIN_KIOSK_PLAYLIST_DELETE, "n_clicks"),
        State(ids.ADMIN_KIOSK_PLAYLIST_NAME, "value"),
        State(ids.ADMIN_KIOSK_PLAYLIST_TEXT, "value"),
        State(ids.ADMIN_KIOSK_VERSION, "data"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_save_playlist(_save, _delete, name, text, version):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        try:
            if ctx.triggered_id == ids.ADMIN_KIOSK_PLAYLIST_DELETE:
                devices.delete_playlist(engine(), acting_admin(), str(name or "").strip())
                note = f"Playlist {name} deleted; its screens show the wall."
            else:
                views = devices.save_playlist(engine(), acting_admin(), str(name or ""),
                                              str(text or ""))
                note = f"Playlist saved: {len(views)} views. Its screens reload at their " \
                       "next check-in."
        except KIOSK_ERRORS as error:
            return feedback(False, str(error)), no_update
        return feedback(True, note), (version or 0) + 1
