"""The one server-side gate: before every request, apply the access rule of its target.

Pages and Dash routes need a signed-in user; each Dash callback POST is checked against
the rule of the callback it names (the body's "output"); API routes need an API key with
the route's scope. Anything without a rule is refused.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from dash._pages import _path_to_page
from flask import current_app, g, redirect, render_template, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from app import access, state
from app.api.errors import error_response
from app.api.keys import KeyRejected, authenticate
from app.auth import throttle
from app.auth.users import current_role

log = logging.getLogger(__name__)


def check_access():
    """Answer 401/403 (or redirect to the login page) when the caller may not go on."""
    if request.endpoint is None:
        return None  # no such route: Flask answers 404 or 405
    rule = access.rule_for_endpoint(current_app, request.endpoint)
    if rule is None:
        log.error("no access rule for endpoint %s: refused", request.endpoint)
        rule = access.NOBODY
    elif rule.kind == "public":
        return None
    if rule.kind == "api":
        return _check_api(rule)
    page = request.method in ("GET", "HEAD") and (rule.kind == "pages" or _browser_navigation())
    if not current_user.is_authenticated:
        return _unauthenticated(page)
    if not _user_rule(rule).admits(current_role()):
        return _forbidden(page)
    return None


def _user_rule(rule: access.Rule) -> access.Rule:
    """The rule for a signed-in user: the callback's or the page's where the route defers."""
    if rule.kind == "callbacks":
        rule = access.rule_for_callback(current_app, _callback_output()) or access.NOBODY
    elif rule.kind == "pages":
        rule = page_rule(request.path) or access.NOBODY
    return rule


def page_rule(path: str) -> access.Rule | None:
    """The rule of the Dash page at `path` (its `roles`); unknown paths show Dash's 404."""
    dash_app = current_app.extensions["dash"]
    page, _variables = _path_to_page(dash_app.strip_relative_path(path))
    if not page:
        return access.SIGNED_IN
    roles = page.get("roles")
    return access.Rule("user", frozenset(roles)) if roles else None


def _browser_navigation() -> bool:
    """Whether a browser asked for a page (a redirect helps), not a script (JSON helps)."""
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _callback_output() -> str | None:
    body = request.get_json(silent=True)
    return body.get("output") if isinstance(body, dict) else None


def _unauthenticated(page: bool):
    if page:
        target = request.full_path.rstrip("?")
        return redirect(f"/login?next={quote(target, safe='/')}")
    return error_response(401, "unauthenticated", "sign in first")


def _forbidden(page: bool):
    if page:
        message = "Your role may not open this page."
        return render_template("forbidden.html", message=message), 403
    return error_response(403, "forbidden", "your role may not do this")


def _presented_key() -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_api(rule: access.Rule):
    presented = _presented_key()
    challenge = {"WWW-Authenticate": 'Bearer realm="p2pdash"'}
    if not presented:
        return error_response(401, "unauthenticated",
                              "send an API key in X-API-Key or Authorization: Bearer",
                              headers=challenge)
    try:
        principal = authenticate(state.current().engine, presented)
    except KeyRejected as rejected:
        return error_response(401, "invalid_key", str(rejected), headers=challenge)
    except SQLAlchemyError:
        return error_response(503, "database_unreachable", "cannot check the key now")
    g.api_principal = principal
    if not rule.grants(principal.scopes):
        required = sorted(rule.scopes)
        return error_response(403, "insufficient_scope",
                              f"this route needs the {' or '.join(map(repr, required))} scope",
                              {"required": required, "granted": list(principal.scopes)})
    wait = throttle.current().api_retry_after(principal.key_id)
    if wait is not None:
        return error_response(429, "rate_limited", f"too many calls; retry in {wait} s",
                              headers={"Retry-After": str(wait)})
    return None
