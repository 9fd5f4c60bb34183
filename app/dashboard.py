"""Mount Dash on the Flask server: pages from layouts/, callbacks from callbacks/."""

from __future__ import annotations

from pathlib import Path

import dash
from dash_bootstrap_templates import load_figure_template
from flask import Flask

import callbacks
import layouts
from app.access import guard_layout, refuse_bad_callback_input
from app.vendor import STYLESHEETS
from layouts.shell import INDEX_STRING, forbidden_block, shell

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def mount(server: Flask) -> dash.Dash:
    """Create the Dash app on `server`, register its pages and callbacks."""
    load_figure_template(["bootstrap", "bootstrap_dark"])
    dash_app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        external_stylesheets=STYLESHEETS,
        title="p2pdash",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    dash_app.index_string = INDEX_STRING
    for page in layouts.PAGES:
        dash.register_page(page.__name__, path=page.PATH, name=page.NAME, title=page.TITLE,
                           order=page.ORDER, roles=page.ROLES,
                           path_template=getattr(page, "PATH_TEMPLATE", None),
                           layout=guard_layout(page.layout, page.ROLES, forbidden_block))
    dash_app.layout = shell
    callbacks.register(dash_app)
    refuse_bad_callback_input(server)
    _set_up_before_serving(server)
    server.extensions["dash"] = dash_app
    return dash_app


# Dash's own hooks that set it up on the first request (dash/dash.py): the pages router
# registers its callback, then the server set-up copies and checks the callback map.
FIRST_REQUEST_HOOKS = ("router_sync", "_setup_server")


def _set_up_before_serving(server: Flask) -> None:
    """Run Dash's first-request set-up now, once. Dash runs it in before_request hooks whose
    run-once flag is unguarded: a threaded worker taking its first requests at once ran it
    in two threads, one registering the router's callback while the other iterated the
    callback map (a 500, "dictionary changed size during iteration", seen in
    bench/views_load.py)."""
    hooks = [hook for hook in server.before_request_funcs.get(None, [])
             if getattr(hook, "__name__", "") in FIRST_REQUEST_HOOKS]
    if len(hooks) != len(FIRST_REQUEST_HOOKS):
        raise RuntimeError("Dash's first-request hooks were not found: check the dash version")
    with server.test_request_context("/"):
        for hook in hooks:  # in the order a request would run them
            hook()
