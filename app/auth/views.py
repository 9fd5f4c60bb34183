"""Sign in and sign out: the login form, throttled, with every attempt in the audit log."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app import access, audit, state
from app.auth import throttle, users
from app.auth.passwords import needs_rehash, verify_password

bp = Blueprint("auth", __name__)
WRONG = "Wrong username or password."
DATABASE_DOWN = "The database is unreachable, so nobody can sign in now; see /healthz."


class LoginForm(FlaskForm):
    """Username, password and remember-me."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else becomes '/'."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


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
    engine = state.current().engine
    limits = throttle.current()
    username, address = form.username.data.strip(), audit.client_ip() or "-"
    wait = limits.login_retry_after(address, username)
    if wait is not None:
        audit.record(engine, username, "login.throttled", username, {"retry_after": wait})
        response = _page(form, f"Too many failed attempts. Try again in {wait} seconds.", 429)
        return (*response, {"Retry-After": str(wait)})
    found = users.password_hash_of(engine, username)
    user, stored = found if found else (None, None)
    if not verify_password(stored, form.password.data) or user is None or not user.is_active:
        limits.login_failed(address, username)
        reason = "unknown user" if user is None else \
            "disabled" if not user.is_active else "wrong password"
        audit.record(engine, username, "login.failure", username, {"reason": reason})
        return _page(form, WRONG, 401)
    return _signed_in(user, stored, form)


def _signed_in(user: users.User, stored: str, form: LoginForm):
    engine = state.current().engine
    if needs_rehash(stored):
        with engine.begin() as connection:
            user = users.change(connection, user.id, password=form.password.data)
    login_user(user, remember=bool(form.remember.data))
    users.touch_login(engine, user.id)
    audit.record(engine, user.username, "login.success", user.username,
                 {"remember": bool(form.remember.data)})
    return redirect(safe_next(request.args.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
@access.allow(*access.EVERYONE)
def logout():
    """End the session (and the remember cookie) and go to the login page."""
    audit.record(state.current().engine, current_user.username, "logout", current_user.username)
    logout_user()
    return redirect("/login")
