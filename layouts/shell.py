"""The frame around every page: navbar, theme switch, time zone, live refresh, page container.

The time zone and the refresh period are the viewer's, not the page's: chosen in the navbar,
kept in the browser (localStorage), shared by every page. One dcc.Interval (ids.LIVE) drives
every page's live updates.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app import state
from app.auth.users import current_role
from layouts import ids

# Set the colour mode before first paint, so a dark-mode wall screen never flashes white.
INDEX_STRING = """<!DOCTYPE html>
<html data-bs-theme="light">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        <script src="/static/theme.js"></script>
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>{%config%}{%scripts%}{%renderer%}</footer>
    </body>
</html>"""


def _nav_links(role: str | None) -> list[dbc.NavItem]:
    pages = sorted(dash.page_registry.values(), key=lambda page: page["order"])
    return [dbc.NavItem(dbc.NavLink(page["name"], href=page["path"], active="exact"))
            for page in pages if role in page.get("roles", ())]


def bell() -> html.Div:
    """How many alert rules the viewer can see are alerting; the list of them on a click."""
    return html.Div([
        dbc.Button([html.I(className="bi bi-bell"),
                    dbc.Badge("0", id=ids.NAV_BELL_COUNT, color="secondary", pill=True,
                              className="ms-1 align-text-top")],
                   id=ids.NAV_BELL, color="link", className="nav-bell p-0 me-3",
                   title="Alerting rules"),
        dbc.Popover([dbc.PopoverHeader("Alerting now"),
                     dbc.PopoverBody(html.Div(id=ids.NAV_BELL_LIST))],
                    id=ids.NAV_BELL_POPOVER, target=ids.NAV_BELL, trigger="legacy",
                    placement="bottom-end"),
    ])


def _account() -> html.Div:
    """The alerts bell, the signed-in user's name and role, and a way out."""
    if not current_user or not current_user.is_authenticated:
        return html.Div()
    return html.Div([
        bell(),
        html.Span([html.I(className="bi bi-person-circle me-1"), current_user.username,
                   dbc.Badge(current_user.role, color="secondary", className="ms-2")],
                  id=ids.NAV_USER, className="navbar-text me-3"),
        html.A("Account", href="/account", id=ids.NAV_ACCOUNT,
               title="Your sessions, password and two-factor sign-in",
               className="btn btn-sm btn-outline-light me-2"),
        logout_form(),
    ], className="d-flex align-items-center ms-3")


def logout_form() -> html.Form:
    """Sign out: a POST with the CSRF token, so no link on another site can sign you out."""
    return html.Form([
        dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
        html.Button("Sign out", type="submit", id=ids.NAV_LOGOUT,
                    className="btn btn-sm btn-outline-light"),
    ], action="/logout", method="POST", className="mb-0")


def forbidden_block() -> dbc.Alert:
    """What a page shows to a role that may not see it."""
    return dbc.Alert([html.H2("Not allowed", className="h5"),
                      html.P("Your role may not open this page.", className="mb-0")],
                     color="warning", id=ids.FORBIDDEN)


def _demo_badge() -> list[dbc.Badge]:
    if not state.current().settings.demo:
        return []
    return [dbc.Badge("DEMO", id=ids.DEMO_BADGE, color="warning", text_color="dark",
                      className="ms-2 align-middle",
                      title="Simulated exchanges on this machine: prices are not real")]


TIMEZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Istanbul", "Europe/Kyiv",
             "Europe/Moscow", "Africa/Lagos", "Africa/Nairobi", "Asia/Dubai", "Asia/Kolkata",
             "Asia/Almaty", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
             "America/New_York", "America/Chicago", "America/Los_Angeles",
             "America/Mexico_City", "America/Bogota", "America/Caracas", "America/Sao_Paulo",
             "America/Argentina/Buenos_Aires")
REFRESH_CHOICES = {"0": "Live: off", "2": "Live: 2 s", "5": "Live: 5 s", "15": "Live: 15 s",
                   "30": "Live: 30 s", "60": "Live: 1 min"}
DEFAULT_REFRESH_SECONDS = 5


def viewer_controls() -> html.Div:
    """The time zone and live refresh choices (applied from the browser's storage on load)."""
    return html.Div([
        html.Div(dbc.Select(id=ids.TZ_SELECT, size="sm",
                            options=[{"label": name, "value": name} for name in TIMEZONES]),
                 title="Time zone of every chart and table", className="me-2",
                 style={"width": "11rem"}),
        html.Div(dbc.Select(id=ids.REFRESH_SELECT, size="sm",
                            options=[{"label": label, "value": value}
                                     for value, label in REFRESH_CHOICES.items()]),
                 title="How often the pages refresh", style={"width": "7.5rem"}),
    ], className="d-flex align-items-center ms-3")


def navbar() -> dbc.Navbar:
    """The top bar: brand, page links, time zone, live refresh and the light/dark switch."""
    theme_switch = dbc.Switch(id=ids.THEME_SWITCH, label=html.I(className="bi bi-moon-stars"),
                              value=False, className="mb-0 ms-3")
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand([html.I(className="bi bi-graph-up-arrow me-2"), "p2pdash",
                             *_demo_badge()], href="/"),
            dbc.Nav(_nav_links(current_role()), id=ids.NAV_LINKS, className="me-auto",
                    navbar=True),
            viewer_controls(),
            theme_switch,
            _account(),
        ], fluid=True, className="flex-wrap row-gap-2"),  # wraps instead of scrolling
        className="border-bottom mb-3",
    )


def shell() -> html.Div:
    """Navbar, the current page and the stores every page shares."""
    return html.Div([
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.THEME_STORE, storage_type="local"),
        dcc.Store(id=ids.TZ_STORE, storage_type="local"),
        dcc.Store(id=ids.REFRESH_STORE, storage_type="local"),
        dcc.Interval(id=ids.LIVE, interval=DEFAULT_REFRESH_SECONDS * 1000),
        navbar(),
        dbc.Container(dash.page_container, fluid=True, className="pb-4"),
    ])
