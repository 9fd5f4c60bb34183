"""Sign in and sign out: the login form, throttled, with every attempt in the audit log.

A right password either signs in (a new server-side session) or, for a user with two-factor
sign-in, leaves a short-lived "password passed" mark in the session cookie for the code
page (app/auth/second_factor.py). Signing out is a POST with the CSRF token only.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app import access, audit, state
from app.auth import attempts, sessions, totp, users
from app.auth.passwords import needs_rehash, verify_password

bp = Blueprint("auth", __name__)
WRONG = "Wrong username or password."
DATABASE_DOWN = "The database is unreachable, so nobody can sign in now; see /healthz."
PENDING = "p2pdash_pending"  # the session key of a sign-in waiting for its second factor
PENDING_SECONDS = 300


class LoginForm(FlaskForm):
    """Username, password and remember-me."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else becomes '/'."""
    if not target:
        return "/"
    if len(target) > 2000 or any(ord(char) < 0x20 or ord(char) == 0x7f for char in target) \
            or "\\" in target:  # CR LF would split the Location header; "/\\x" is "//x"
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def throttled_page(template: str, wait: int, message: str, **context: Any):
    """A 429 answer with Retry-After."""
    return render_template(template, error=message.format(wait=wait), **context), 429, \
        {"Retry-After": str(wait)}


def _page(form: LoginForm, error: str | None = None, status: int = 200):
    try:
        no_users = users.count(state.current().engine) == 0
    except SQLAlchemyError:
        no_users, error, status = False, DATABASE_DOWN, 503
    context = {"form": form, "error": error, "next": request.args.get("next"),
               "no_users": no_users, "remember_days": state.current().settings.remember_days}
    return render_template("login.html", **context), status


@bp.route("/login", methods=["GET", "POST"])
@access.public
def login():
    """Show the form; on POST check the password, unless the caller is throttled."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if request.method == "GET":
        return _page(form)
    if not form.validate_on_submit():
        return _page(form, "Enter a username and a password.", 400)
    try:
        return _attempt(form)
    except SQLAlchemyError:
        return _page(form, DATABASE_DOWN, 503)


def _attempt(form: LoginForm):
    engine, settings = state.current().engine, state.current().settings
    username, address = form.username.data.strip(), audit.client_ip() or "-"
    subject = username.lower()
    counters = attempts.login_counters(engine, settings)
    try:
        delay = counters.begin(address, subject)
    except attempts.Throttled as throttled:
        audit.record(engine, username, "login.throttled", username,
                     {"retry_after": throttled.retry_after, "scope": throttled.scope})
        message = f"Too many failed attempts. Try again in {throttled.retry_after} seconds."
        return (*_page(form, message, 429), {"Retry-After": str(throttled.retry_after)})
    if delay:
        audit.record(engine, username, "login.slowed", username, {"delay_seconds": delay})
        time.sleep(delay)
    found = users.password_hash_of(engine, username)
    user, stored = found if found else (None, None)
    if not verify_password(stored, form.password.data) or user is None or not user.is_active:
        counters.failed(subject)
        reason = "unknown user" if user is None else \
            "disabled" if not user.is_active else "wrong password"
        audit.record(engine, username, "login.failure", username, {"reason": reason})
        return _page(form, WRONG, 401)
    counters.succeeded(address, subject)
    return _password_passed(user, stored, form)


def _password_passed(user: users.User, stored: str, form: LoginForm):
    engine, settings = state.current().engine, state.current().settings
    if needs_rehash(stored):
        with engine.begin() as connection:
            user = users.change(connection, user.id, password=form.password.data)
    remember, next_path = bool(form.remember.data), request.args.get("next")
    if totp.is_enabled(engine, user.id):
        return _pending(user, remember, next_path, "code")
    if settings.require_admin_2fa and user.role == "admin":
        return _pending(user, remember, next_path, "enrol")
    return complete_sign_in(user, remember, next_path, "none")


def _pending(user: users.User, remember: bool, next_path: str | None, step: str):
    session[PENDING] = {"user_id": user.id, "remember": remember, "next": safe_next(next_path),
                        "step": step, "at": time.time()}
    audit.record(state.current().engine, user.username, "login.password_ok", user.username,
                 {"second_factor": step})
    endpoint = "second_factor.challenge" if step == "code" else "second_factor.enrol"
    return redirect(url_for(endpoint))


def pending_user(step: str) -> tuple[users.User, dict[str, Any]] | None:
    """The user whose password passed moments ago and who now owes `step`, or None."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or pending.get("step") != step or \
            time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    user = users.get(state.current().engine, int(pending["user_id"]))
    return (user, pending) if user and user.is_active else None


def complete_sign_in(user: users.User, remember: bool, next_path: str | None,
                     second_factor: str):
    """Open a server-side session, set the cookies and go on to the next page."""
    engine, settings = state.current().engine, state.current().settings
    session.pop(PENDING, None)
    signed_in = sessions.start(engine, user, settings, remember=remember,
                               ip=audit.client_ip(), user_agent=request.user_agent.string)
    login_user(signed_in, remember=remember)
    users.touch_login(engine, user.id)
    audit.record(engine, user.username, "login.success", user.username,
                 {"remember": remember, "second_factor": second_factor,
                  "session_id": signed_in.session_id})
    attempts.login_counters(engine, settings).sweep()
    sessions.prune(engine, user.id)
    return redirect(safe_next(next_path))


@bp.route("/logout", methods=["GET", "POST"])
@access.allow(*access.EVERYONE)
def logout():
    """GET asks to confirm (a link elsewhere cannot sign you out); POST ends the session."""
    if request.method == "GET":
        return render_template("logout.html")
    engine = state.current().engine
    sessions.end(engine, current_user.id, current_user.session_id, "logout")
    audit.record(engine, current_user.username, "logout", current_user.username,
                 {"session_id": current_user.session_id})
    logout_user()
    return redirect("/login")
