"""The account page: a user's own sessions, password and two-factor sign-in.

Every change is a POST with the CSRF token; the current password guards the password and
the second factor, and its checks count against the same throttle as the login form.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from app import access, audit, state
from app.auth import attempts, commands, sessions, totp, users
from app.auth.errors import AccountError
from app.auth.passwords import verify_password
from app.auth.second_factor import CodeForm, setup_page

bp = Blueprint("account", __name__)


class PasswordForm(FlaskForm):
    """The current password, to confirm a sensitive change."""

    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])


class NewPasswordForm(PasswordForm):
    """The current password and a new one, twice."""

    new = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    again = PasswordField("New password again", validators=[DataRequired(), Length(max=1024)])


def _back(message: str, category: str = "success"):
    flash(message, category)
    return redirect(url_for("account.page"))


@bp.route("/account")
@access.allow(*access.EVERYONE)
def page():
    """Sessions, password and two-factor sign-in of the signed-in user."""
    engine, settings = state.current().engine, state.current().settings
    enabled = totp.is_enabled(engine, current_user.id)
    return render_template(
        "account.html", user=current_user, sessions=sessions.live(engine, current_user.id,
                                                                    settings),
        totp_enabled=enabled, codes_left=totp.recovery_codes_left(engine, current_user.id),
        totp_required=settings.require_admin_2fa and current_user.role == "admin",
        password_form=NewPasswordForm(), confirm_form=PasswordForm())


@bp.route("/account/sessions/<session_ref>/end", methods=["POST"])
@access.allow(*access.EVERYONE)
def end_session(session_ref: str):
    """End one of the user's sessions (this one too: then they are signed out)."""
    if not session_ref.isascii() or not session_ref.isdigit() or len(session_ref) > 18:
        abort(404)
    engine, session_id = state.current().engine, int(session_ref)
    ended = sessions.end(engine, current_user.id, session_id, "ended by its user")
    if ended:
        audit.record(engine, current_user.username, "session.end", current_user.username,
                     {"session_id": session_id})
    if session_id == current_user.session_id:
        logout_user()
        return redirect("/login")
    return _back("Session ended." if ended else "That session had ended already.")


@bp.route("/account/sessions/end-others", methods=["POST"])
@access.allow(*access.EVERYONE)
def end_other_sessions():
    """End every session of the user but this one."""
    engine = state.current().engine
    ended = sessions.end_all(engine, current_user.id, "ended by its user",
                             keep=current_user.session_id)
    audit.record(engine, current_user.username, "session.end_others", current_user.username,
                 {"sessions_ended": ended})
    return _back(f"Signed out everywhere else ({ended} session{'s' * (ended != 1)}).")


def _password_confirmed(form: PasswordForm) -> str | None:
    """Why the current password does not confirm the change (None: it does)."""
    if not form.validate_on_submit():
        return "Enter your current password."
    engine, settings = state.current().engine, state.current().settings
    counters = attempts.login_counters(engine, settings)
    address, subject = audit.client_ip() or "-", current_user.username.lower()
    try:
        delay = counters.begin(address, subject)
    except attempts.Throttled as throttled:
        return f"Too many wrong passwords. Try again in {throttled.retry_after} seconds."
    time.sleep(delay)
    found = users.password_hash_of(engine, current_user.username)
    if not found or not verify_password(found[1], form.current.data):
        counters.failed(subject)
        audit.record(engine, current_user.username, "account.wrong_password",
                     current_user.username, {"for": request.endpoint})
        return "That is not your current password."
    counters.succeeded(address, subject)
    return None


@bp.route("/account/password", methods=["POST"])
@access.allow(*access.EVERYONE)
def change_password():
    """Set a new password; every other session of the user ends."""
    form = NewPasswordForm()
    problem = _password_confirmed(form)
    if problem is None and form.new.data != form.again.data:
        problem = "The new passwords differ."
    if problem:
        return _back(problem, "danger")
    try:
        ended = commands.change_own_password(state.current().engine, current_user,
                                             form.new.data)
    except AccountError as error:
        return _back(str(error).capitalize() + ".", "danger")
    return _back(f"Password changed; {ended} other session{'s' * (ended != 1)} ended.")


@bp.route("/account/2fa/setup", methods=["GET", "POST"])
@access.allow(*access.EVERYONE)
def enrol():
    """Show a new secret as a QR code and text; on POST turn TOTP on with a first code."""
    engine, settings = state.current().engine, state.current().settings
    form = CodeForm()
    show = {"action": url_for(".enrol"), "ask_password": True}
    try:
        if request.method == "GET" or not form.validate_on_submit():
            return setup_page(engine, settings.secret_key, current_user, form, **show)
        # A borrowed session must not put its own second factor on someone's account.
        problem = _password_confirmed(PasswordForm())
        if problem:
            return setup_page(engine, settings.secret_key, current_user, form, **show,
                              error=problem, status=401)
        codes = totp.confirm_enrolment(engine, settings.secret_key, current_user,
                                       form.code.data)
    except totp.WrongCode as wrong:
        return setup_page(engine, settings.secret_key, current_user, form, **show,
                          error=str(wrong).capitalize() + ".", status=401)
    except AccountError as error:
        return _back(str(error).capitalize() + ".", "danger")
    return render_template("recovery_codes.html", codes=codes, next=url_for(".page"))


@bp.route("/account/2fa/disable", methods=["POST"])
@access.allow(*access.EVERYONE)
def disable_two_factor():
    """Turn TOTP off (not for admins when P2PDASH_REQUIRE_ADMIN_2FA is on)."""
    settings = state.current().settings
    if settings.require_admin_2fa and current_user.role == "admin":
        return _back("Admins must keep two-factor sign-in on this server.", "danger")
    problem = _password_confirmed(PasswordForm())
    if problem:
        return _back(problem, "danger")
    totp.disable(state.current().engine, current_user.username, current_user)
    return _back("Two-factor sign-in is off.")


@bp.route("/account/2fa/recovery-codes", methods=["POST"])
@access.allow(*access.EVERYONE)
def renew_recovery_codes():
    """Replace the recovery codes (the old ones stop working); show the new ones once."""
    problem = _password_confirmed(PasswordForm())
    if problem:
        return _back(problem, "danger")
    try:
        codes = totp.new_recovery_codes(state.current().engine, current_user)
    except AccountError as error:
        return _back(str(error).capitalize() + ".", "danger")
    return render_template("recovery_codes.html", codes=codes, next=url_for(".page"))
