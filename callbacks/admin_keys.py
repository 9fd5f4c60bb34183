"""Admin tab, API keys: the list with revoke buttons, and creating a key shown only once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app import access
from app.api import keys
from app.auth import commands
from app.auth.errors import AccountError
from callbacks.admin import acting_admin, engine, feedback, table, when
from layouts import ids


def key_state(row: dict[str, Any]) -> str:
    """'revoked', 'expired' or 'active'."""
    if row["revoked_at"]:
        return "revoked"
    if row["expires_at"] and row["expires_at"] <= datetime.now(UTC):
        return "expired"
    return "active"


def _revoke_button(row: dict[str, Any]) -> html.Span | dbc.Button:
    if key_state(row) != "active":
        return html.Span()
    return dbc.Button("Revoke", id={"type": ids.ADMIN_REVOKE_KEY, "index": row["id"]},
                      size="sm", color="danger", outline=True)


def keys_table(rows: list[dict[str, Any]]) -> dbc.Table:
    """Every key: prefix, owner, scopes, use and expiry; never the key itself."""
    colours = {"active": "success", "revoked": "secondary", "expired": "warning"}
    return table(["Prefix", "Name", "User", "Scopes", "Created", "Last used", "Expires",
                  "State", ""], [
        [html.Code(row["prefix"]), row["name"], row["username"], ", ".join(row["scopes"]),
         when(row["created_at"]), when(row["last_used_at"]), when(row["expires_at"]) if
         row["expires_at"] else "never",
         dbc.Badge(key_state(row), color=colours[key_state(row)]), _revoke_button(row)]
        for row in rows], ids.ADMIN_KEYS_TABLE + "-rows")


def new_key_block(row: dict[str, Any], key: str) -> dbc.Alert:
    """The new key with a copy button, and the warning that it will not be shown again."""
    return dbc.Alert([
        html.P([html.Strong("Copy this key now: "), "it is shown only once and cannot be "
                f"recovered. Prefix {row['prefix']}, scopes {', '.join(row['scopes'])}."],
               className="mb-2"),
        html.Div([html.Code(key, id=ids.ADMIN_NEW_KEY_TEXT, className="user-select-all me-2"),
                  dcc.Clipboard(target_id=ids.ADMIN_NEW_KEY_TEXT, title="Copy",
                                className="btn btn-sm btn-outline-secondary")],
                 className="d-flex align-items-center"),
    ], color="info", className="mb-0")


def _expiry_days(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AccountError("expiry must be a whole number of days") from None


def register(dash_app: Dash) -> None:
    """List keys, create one, revoke one."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KEYS_TABLE, "children"),
        Input(ids.ADMIN_KEYS_VERSION, "data"),
        roles=access.ADMINS,
    )
    def update_keys(_version: int | None):
        return keys_table(keys.list_keys(engine()))

    @access.callback(
        dash_app,
        Output(ids.ADMIN_NEW_KEY, "children"),
        Output(ids.ADMIN_KEYS_VERSION, "data", allow_duplicate=True),
        inputs={"clicks": Input(ids.ADMIN_CREATE_KEY, "n_clicks")},
        state={"username": State(ids.ADMIN_KEY_USER, "value"),
               "name": State(ids.ADMIN_KEY_NAME, "value"),
               "scopes": State(ids.ADMIN_KEY_SCOPES, "value"),
               "expires": State(ids.ADMIN_KEY_EXPIRES, "value"),
               "version": State(ids.ADMIN_KEYS_VERSION, "data")},
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_create_key(*, clicks, username, name, scopes, expires, version):
        if not clicks:
            raise PreventUpdate
        try:
            if not username:
                raise AccountError("choose the key's user first")
            row, key = commands.create_key(engine(), acting_admin(), username, name or "key",
                                           list(scopes or []), expires_days=_expiry_days(expires))
        except AccountError as error:
            return feedback(False, str(error)), no_update
        return new_key_block(row, key), (version or 0) + 1

    @access.callback(
        dash_app,
        Output(ids.ADMIN_KEY_FEEDBACK, "children"),
        Output(ids.ADMIN_KEYS_VERSION, "data", allow_duplicate=True),
        Input({"type": ids.ADMIN_REVOKE_KEY, "index": ALL}, "n_clicks"),
        State(ids.ADMIN_KEYS_VERSION, "data"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_revoke_key(_clicks, version):
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        try:
            row = commands.revoke_key(engine(), acting_admin(), int(ctx.triggered_id["index"]))
        except AccountError as error:
            return feedback(False, str(error)), no_update
        return feedback(True, f"Key {row['prefix']} revoked."), (version or 0) + 1
