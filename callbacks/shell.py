"""Callbacks of the frame: light/dark, time zone and live refresh, kept in the browser."""

from dash import Dash, Input, Output, State

from layouts import ids
from layouts.shell import DEFAULT_REFRESH_SECONDS

APPLY_THEME = """
function (dark, stored) {
    const ctx = window.dash_clientside.callback_context;
    let mode = stored || localStorage.getItem("p2pdash-theme") || "light";
    if (ctx.triggered.length && ctx.triggered[0].prop_id.startsWith("%(switch)s")) {
        mode = dark ? "dark" : "light";
    }
    document.documentElement.setAttribute("data-bs-theme", mode);
    localStorage.setItem("p2pdash-theme", mode);
    return [mode, mode === "dark"];
}
""".replace("%(switch)s", ids.THEME_SWITCH)


# Keep a choice in its store: on load take the stored one (the store may not have read
# localStorage yet, so read it directly too), later the one just made.
KEEP_CHOICE = """
function (chosen, stored) {
    const ctx = window.dash_clientside.callback_context;
    let value = stored;
    if (value === null || value === undefined) {
        try { value = JSON.parse(localStorage.getItem("%(store)s")); } catch (e) { value = null; }
    }
    if (ctx.triggered.length && ctx.triggered[0].prop_id.startsWith("%(select)s.") && chosen) {
        value = chosen;
    }
    if (value === null || value === undefined) { value = "%(default)s"; }
    return [value, value];
}
"""

APPLY_REFRESH = """
function (seconds) {
    const period = parseInt(seconds || "%(default)s", 10);
    return [Math.max(period, 1) * 1000, !(period > 0)];
}
"""


def _keep_choice(select: str, store: str, default: str) -> str:
    return KEEP_CHOICE % {"select": select, "store": store, "default": default}


def register(dash_app: Dash) -> None:
    """Apply the stored theme, zone and refresh on load, and whenever the viewer changes them."""
    for select, store, default in ((ids.TZ_SELECT, ids.TZ_STORE, "UTC"),
                                   (ids.REFRESH_SELECT, ids.REFRESH_STORE,
                                    str(DEFAULT_REFRESH_SECONDS))):
        dash_app.clientside_callback(_keep_choice(select, store, default),
                                     Output(store, "data"), Output(select, "value"),
                                     Input(select, "value"), State(store, "data"))
    dash_app.clientside_callback(
        APPLY_REFRESH % {"default": DEFAULT_REFRESH_SECONDS},
        Output(ids.LIVE, "interval"), Output(ids.LIVE, "disabled"),
        Input(ids.REFRESH_STORE, "data"))
    dash_app.clientside_callback(
        APPLY_THEME,
        Output(ids.THEME_STORE, "data"),
        Output(ids.THEME_SWITCH, "value"),
        Input(ids.THEME_SWITCH, "value"),
        State(ids.THEME_STORE, "data"),
    )
