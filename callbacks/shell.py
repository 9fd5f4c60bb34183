"""Callbacks of the frame: the light/dark switch, kept in the browser."""

from dash import Dash, Input, Output, State

from layouts import ids

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


def register(dash_app: Dash) -> None:
    """Apply the stored theme on load and whenever the switch moves."""
    dash_app.clientside_callback(
        APPLY_THEME,
        Output(ids.THEME_STORE, "data"),
        Output(ids.THEME_SWITCH, "value"),
        Input(ids.THEME_SWITCH, "value"),
        State(ids.THEME_STORE, "data"),
    )
