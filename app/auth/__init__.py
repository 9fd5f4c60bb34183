"""Accounts and access: sessions, CSRF, the gate, throttling, two factors, the first admin.

`register(server, settings)` binds it all to an app; the gate goes in first, so an
unauthenticated request is answered 401 before CSRF or Dash look at it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, request
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from app import access, audit, state
from app.auth import sessions, throttle, users
from app.auth.cookies import SecureCookiesOverHttps
from app.auth.errors import UserExists
from app.config import Settings
from app.extensions import csrf, login_manager

log = logging.getLogger(__name__)
CSRF_COOKIE = "_csrf_token"  # Dash's renderer sends it back as the X-CSRFToken header


def register(server: Flask, settings: Settings) -> None:
    """Bind sessions, the gate, CSRF protection, throttling and the login views."""
    from app.auth.account import bp as account_bp
    from app.auth.gate import check_access
    from app.auth.second_factor import bp as second_factor_bp
    from app.auth.views import bp

    _configure_cookies(server, settings)
    wsgi = SecureCookiesOverHttps(server.wsgi_app)
    if settings.trusted_proxies:  # then X-Forwarded-For/-Proto say who called, and how
        wsgi = ProxyFix(wsgi, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    server.wsgi_app = wsgi  # type: ignore[method-assign]
    server.before_request(check_access)
    login_manager.init_app(server)
    csrf.init_app(server)
    server.extensions[throttle.EXTENSION] = throttle.Throttle(settings)
    server.register_blueprint(bp)
    server.register_blueprint(second_factor_bp)
    server.register_blueprint(account_bp)
    server.after_request(_csrf_cookie)


def _configure_cookies(server: Flask, settings: Settings) -> None:
    secure = settings.secure_cookies
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_DURATION=timedelta(days=settings.remember_days),
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        # A wall screen keeps one page open for weeks: the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
    )


@login_manager.user_loader
def _load_user(token: str) -> users.User | None:
    """The user of the live server-side session whose token the cookie carries."""
    current = state.current()
    try:
        return sessions.resolve(current.engine, token, current.settings, audit.client_ip())
    except SQLAlchemyError as error:
        # Without the users table no session can be checked: treat the caller as signed out.
        log.error("cannot check the session: %s", getattr(error, "orig", error))
        return None


def _csrf_cookie(response):
    """Hand signed-in page loads the CSRF token in a cookie Dash's renderer can read."""
    rule = access.rule_for_endpoint_name(request.endpoint)
    if rule is access.DASH_PAGES and request.method == "GET" and users.current_role():
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax",
                            secure=state.current().settings.secure_cookies)
    return response


def ensure_first_admin(engine: Engine, settings: Settings) -> None:
    """Create P2PDASH_ADMIN_USER from P2PDASH_ADMIN_PASSWORD when no admin exists yet."""
    from app.auth import commands

    if not settings.admin_password:
        return
    try:
        if users.count(engine, role="admin") or users.find(engine, settings.admin_user):
            return
        commands.create_user(engine, "system", settings.admin_user, settings.admin_password,
                             "admin")
        log.info("created the first admin", extra={"username": settings.admin_user})
    except UserExists:
        return  # another worker of the same start created it between our check and insert
    except SQLAlchemyError as error:
        log.error("could not create the first admin: %s", getattr(error, "orig", error))
