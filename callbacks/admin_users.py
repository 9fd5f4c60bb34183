"""Admin tab, users: the list, creating a user, changing role, disabling, resetting passwords,
signing a user out everywhere."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from app import access
from app.auth import commands, users
from app.auth.errors import AccountError
from callbacks.admin import acting_admin, engine, feedback, table, when
from layouts import ids


def users_table(rows: list[users.User]) -> dbc.Table:
    """Every user with role, state and last sign-in."""
    return table(["User", "Role", "State", "Last login", "Created"], [
        [user.username, user.role,
         dbc.Badge("active", color="success") if user.is_active
         else dbc.Badge("disabled", color="secondary"),
         when(user.last_login_at), when(user.created_at)]
        for user in rows], ids.ADMIN_USERS_TABLE + "-rows")


def user_options(rows: list[users.User]) -> list[dict[str, str]]:
    """Dropdown options naming each user with role and state."""
    return [{"label": f"{u.username} ({u.role}{'' if u.is_active else ', disabled'})",
             "value": u.username} for u in rows]


def key_owner_options(rows: list[users.User]) -> list[dict[str, str]]:
    """Users who may hold an API key: active, of a role with scopes."""
    return [{"label": f"{u.username} ({u.role}: {', '.join(access.ROLE_SCOPES[u.role])})",
             "value": u.username} for u in rows
            if u.is_active and access.ROLE_SCOPES[u.role]]


def manage(action: str | None, username: str | None, role: str | None,
           password: str | None) -> str:
    """Carry out one manage-form action; return what was done."""
    if not username:
        raise AccountError("choose a user first")
    actor = acting_admin()
    if action == ids.ADMIN_SET_ROLE:
        user = commands.set_role(engine(), actor, username, role or "")
        return f"{user.username} is now {user.role}."
    if action in (ids.ADMIN_DISABLE_USER, ids.ADMIN_ENABLE_USER):
        active = action == ids.ADMIN_ENABLE_USER
        user = commands.set_active(engine(), actor, username, active)
        return f"{user.username} {'enabled' if active else 'disabled'}."
    if action == ids.ADMIN_RESET_PASSWORD_GO:
        user = commands.reset_password(engine(), actor, username, password or "")
        return f"Password of {user.username} reset; their sessions have ended."
    if action == ids.ADMIN_SIGN_OUT_USER:
        ended = commands.sign_out_everywhere(engine(), actor, username)
        return f"{username} is signed out everywhere ({ended} session{'s' * (ended != 1)})."
    if action == ids.ADMIN_RESET_2FA:
        ended = commands.reset_two_factor(engine(), actor, username)
        return (f"Two-factor sign-in of {username} is off; {ended} session"
                f"{'s' * (ended != 1)} ended. They enrol again at their next sign-in.")
    raise PreventUpdate


def register(dash_app: Dash) -> None:
    """List users, and act on the create and manage forms."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_USERS_TABLE, "children"),
        Output(ids.ADMIN_MANAGE_USER, "options"),
        Output(ids.ADMIN_KEY_USER, "options"),
        Input(ids.ADMIN_USERS_VERSION, "data"),
        roles=access.ADMINS,
    )
    def update_users(_version: int | None):
        rows = users.all_users(engine())
        return users_table(rows), user_options(rows), key_owner_options(rows)

    @access.callback(
        dash_app,
        Output(ids.ADMIN_USER_FEEDBACK, "children"),
        Output(ids.ADMIN_USERS_VERSION, "data", allow_duplicate=True),
        Output(ids.ADMIN_NEW_PASSWORD, "value"),
        inputs={"clicks": Input(ids.ADMIN_CREATE_USER, "n_clicks")},
        state={"username": State(ids.ADMIN_NEW_USERNAME, "value"),
               "email": State(ids.ADMIN_NEW_EMAIL, "value"),
               "role": State(ids.ADMIN_NEW_ROLE, "value"),
               "password": State(ids.ADMIN_NEW_PASSWORD, "value"),
               "version": State(ids.ADMIN_USERS_VERSION, "data")},
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_create_user(*, clicks, username, email, role, password, version):
        if not clicks:
            raise PreventUpdate
        try:
            user = commands.create_user(engine(), acting_admin(), username or "",
                                        password or "", role or "", email=email)
        except AccountError as error:
            return feedback(False, str(error)), no_update, no_update
        return feedback(True, f"Created {user.username} ({user.role})."), (version or 0) + 1, ""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_MANAGE_FEEDBACK, "children"),
        Output(ids.ADMIN_USERS_VERSION, "data", allow_duplicate=True),
        Output(ids.ADMIN_RESET_PASSWORD, "value"),
        Input(ids.ADMIN_SET_ROLE, "n_clicks"),
        Input(ids.ADMIN_DISABLE_USER, "n_clicks"),
        Input(ids.ADMIN_ENABLE_USER, "n_clicks"),
        Input(ids.ADMIN_RESET_PASSWORD_GO, "n_clicks"),
        Input(ids.ADMIN_SIGN_OUT_USER, "n_clicks"),
        Input(ids.ADMIN_RESET_2FA, "n_clicks"),
        State(ids.ADMIN_MANAGE_USER, "value"),
        State(ids.ADMIN_MANAGE_ROLE, "value"),
        State(ids.ADMIN_RESET_PASSWORD, "value"),
        State(ids.ADMIN_USERS_VERSION, "data"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_manage_user(_role, _disable, _enable, _reset, _sign_out, _reset_2fa, username, role,
                       password, version):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        try:
            done = manage(ctx.triggered_id, username, role, password)
        except AccountError as error:
            return feedback(False, str(error)), no_update, no_update
        return feedback(True, done), (version or 0) + 1, ""
