"""Who may call what: the one registry the auth gate and the route-walk test both read.

Every Flask endpoint and every server-side Dash callback declares a Rule next to itself:
`@access.allow(*roles)`, `@access.public` or `@access.api_key(scope)` on a view, and
`access.callback(dash_app, ..., roles=...)` instead of `dash_app.callback(...)`. Endpoints
that other libraries add (Dash, static files) have their rules in FOREIGN_ENDPOINTS below.
Anything without a rule is refused: deny by default.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from dash import Dash
from dash.exceptions import CallbackException
from flask import Flask, request
from sqlalchemy.exc import StatementError
from werkzeug.exceptions import BadRequest

ROLES = ("kiosk", "trader", "analyst", "admin")
EVERYONE = ROLES
ADMINS = ("admin",)
SCOPES = ("read", "export", "ingest", "alerts")
# The widest API scopes a user of each role may hold (DESIGN.md section 5).
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "kiosk": (),
    "trader": ("alerts",),
    "analyst": ("read", "export", "alerts"),
    "admin": ("read", "export", "ingest", "alerts"),
}


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """One access rule.

    kind: "public" (anyone), "user" (a signed-in user of `roles`), "api" (an API key
    holding one of `scopes`; any key when there are none), "callbacks" (the Dash callback
    route: per-callback rules), "pages" (Dash page routes: per-page roles from the page registry).
    """

    kind: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()

    def admits(self, role: str | None) -> bool:
        """Whether a signed-in user with `role` passes a "user" rule."""
        return role is not None and role in self.roles

    def grants(self, held: Iterable[str]) -> bool:
        """Whether a key holding the scopes `held` passes an "api" rule."""
        return not self.scopes or bool(self.scopes & set(held))


PUBLIC = Rule("public")
NOBODY = Rule("user")
SIGNED_IN = Rule("user", frozenset(ROLES))
DASH_CALLBACKS = Rule("callbacks")
DASH_PAGES = Rule("pages")
ATTRIBUTE = "__access_rule__"

# Endpoints registered by Flask, Dash and spectree themselves.
FOREIGN_ENDPOINTS: dict[str, Rule] = {
    "static": PUBLIC,
    "vendor.static": PUBLIC,
    "_dash_assets.static": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,
    "/_favicon.ico": PUBLIC,
    "/_dash-layout": SIGNED_IN,
    "/_dash-dependencies": SIGNED_IN,
    "/_reload-hash": SIGNED_IN,
    "/_dash-update-component": DASH_CALLBACKS,
    "/": DASH_PAGES,
    "/<path:path>": DASH_PAGES,
}
# Callbacks other libraries register: Dash's pages router (each layout checks its own
# roles), and the theme-changer widget of dash-bootstrap-templates, which p2pdash never
# shows (importing the package registers it globally).
FOREIGN_CALLBACKS: dict[str, Rule] = {
    ".._pages_content.children..._pages_store.data..": SIGNED_IN,
    '{"aio_id":["MATCH"],"component":"ThemeChangerAIO","subcomponent":"offcanvas"}.is_open':
        NOBODY,
}
CALLBACK_RULES = "p2pdash.callback_rules"


def _mark(rule: Rule) -> Callable[[Callable], Callable]:
    def decorate(view: Callable) -> Callable:
        setattr(view, ATTRIBUTE, rule)
        return view

    return decorate


def allow(*roles: str) -> Callable[[Callable], Callable]:
    """Let signed-in users of these roles call the decorated view."""
    return _mark(Rule("user", _roles(roles)))


def public(view: Callable) -> Callable:
    """Let anyone call the decorated view (login, health)."""
    return _mark(PUBLIC)(view)


def api_key(*scopes: str) -> Callable[[Callable], Callable]:
    """Let a valid API key call the decorated view; with scopes, only keys holding one."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return _mark(Rule("api", scopes=frozenset(scopes)))


def _roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(roles)
    unknown = chosen - set(ROLES)
    if unknown or not chosen:
        raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {sorted(chosen)}")
    return chosen


def rule_for_endpoint(app: Flask, endpoint: str | None) -> Rule | None:
    """The rule of a Flask endpoint, or None when it has none (refused)."""
    if endpoint is None:
        return None
    if endpoint in FOREIGN_ENDPOINTS:
        return FOREIGN_ENDPOINTS[endpoint]
    view = app.view_functions.get(endpoint)
    return getattr(view, ATTRIBUTE, None)


def rule_for_endpoint_name(endpoint: str | None) -> Rule | None:
    """The rule of an endpoint that other libraries registered, if it is one."""
    return FOREIGN_ENDPOINTS.get(endpoint or "")


def callback_rules(app: Flask) -> dict[str, Rule]:
    """The per-callback rules of the Dash app mounted on `app`, keyed by output id."""
    return app.extensions.setdefault(CALLBACK_RULES, dict(FOREIGN_CALLBACKS))


def rule_for_callback(app: Flask, output: str | None) -> Rule | None:
    """The rule of the Dash callback writing `output`, or None (refused)."""
    if not output:
        return None
    return callback_rules(app).get(output)


def callback(dash_app: Dash, *dependencies: Any, roles: Iterable[str],
             **options: Any) -> Callable[[Callable], Callable]:
    """Register a Dash callback that only signed-in users of `roles` may trigger (and
    whose every call is timed, labelled by its output, in app/metrics.py)."""
    from app import metrics

    rule = Rule("user", _roles(roles))
    known = set(dash_app.callback_map)
    register = dash_app.callback(*dependencies, **options)
    # Dash files the callback under its output key as soon as it is declared.
    rules = callback_rules(dash_app.server)
    added = sorted(set(dash_app.callback_map) - known)
    for key in added:
        rules[key] = rule
    return metrics.timed_callback(register, added[0] if added else "unknown")


BAD_INPUT = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError,
             decimal.InvalidOperation)
DASH_CALLBACKS = "/_dash-update-component"


def refuse_bad_callback_input(server: Flask) -> None:
    """Answer 400, not 500, when a Dash callback (ours or Dash's own page router) fails on
    values its controls never send: a crafted request with a number where a list belongs,
    an object for a path, or outputs listed in another shape than the callback's (Dash then
    fails checking the return value against them). Each refusal is logged with its
    traceback, so a real bug of these kinds still shows; any other error, or anywhere else,
    stays a 500."""

    @server.errorhandler(Exception)
    def refuse(error: Exception):
        if request.path != DASH_CALLBACKS:
            raise error
        if isinstance(error, CallbackException) and _outputs_misshaped():
            log.warning("a Dash callback refused outputs of another shape than its own")
            return BadRequest("the body's outputs do not match the callback's outputs")
        if not isinstance(error, (*BAD_INPUT, StatementError)):
            raise error
        if isinstance(error, StatementError) and "cannot adapt" not in str(error.orig):
            raise error  # a query that failed for another reason than a value's type
        log.warning("a Dash callback refused its input: %s", type(error).__name__,
                    exc_info=True)
        return BadRequest("a callback input has the wrong type or value")


def _outputs_misshaped() -> bool:
    """Whether the callback body lists its outputs unlike the callback it names: a list for
    one output, one spec or another count for several (Dash's multi-output keys start with
    ".." and part their outputs with "...")."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return True
    key, outputs = body["output"], body.get("outputs")
    if not key.startswith(".."):
        return isinstance(outputs, list)
    return not isinstance(outputs, list) or len(outputs) != len(key.strip(".").split("..."))


def guard_layout(layout: Callable[..., Any], roles: Iterable[str],
                 refuse: Callable[[], Any]) -> Callable[..., Any]:
    """Wrap a page layout so a user whose role may not see it gets `refuse()` instead."""
    allowed = _roles(roles)

    @wraps(layout)
    def guarded(**params: Any) -> Any:
        from app.auth.users import current_role

        if current_role() not in allowed:
            return refuse()
        return layout(**params)

    return guarded
