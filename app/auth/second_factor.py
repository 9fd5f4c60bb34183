"""The second step of signing in: a TOTP or recovery code, or enrolling when it is required.

Codes are throttled like passwords (app/auth/attempts.py: per address, per address and user,
and a hard cap per user, since only someone holding the password gets here), and every
attempt is audited, never with the code.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app import access, audit, state
from app.auth import attempts, totp
from app.auth.views import complete_sign_in, pending_user, throttled_page

bp = Blueprint("second_factor", __name__)
THROTTLED = "Too many wrong codes. Try again in {wait} seconds."


class CodeForm(FlaskForm):
    """A six-digit code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired(), Length(max=64)])


@bp.route("/login/2fa", methods=["GET", "POST"])
@access.public
def challenge():
    """Ask for the code; on POST check it, unless this user or address is throttled."""
    found = pending_user("code")
    if found is None:
        return redirect(url_for("auth.login"))
    user, pending = found
    form = CodeForm()
    if request.method == "GET":
        return render_template("two_factor.html", form=form)
    if not form.validate_on_submit():
        return render_template("two_factor.html", form=form, error="Enter a code."), 400
    engine, settings = state.current().engine, state.current().settings
    counters = attempts.second_factor_counters(engine, settings)
    address, subject = audit.client_ip() or "-", str(user.id)
    try:
        counters.begin(address, subject)
    except attempts.Throttled as throttled:
        audit.record(engine, user.username, "2fa.throttled", user.username,
                     {"retry_after": throttled.retry_after, "scope": throttled.scope})
        return throttled_page("two_factor.html", throttled.retry_after, THROTTLED, form=form)
    try:
        kind = totp.check_code(engine, settings.secret_key, user.id, form.code.data)
    except totp.WrongCode:
        audit.record(engine, user.username, "2fa.failure", user.username)
        return render_template("two_factor.html", form=form, error="Wrong code."), 401
    counters.succeeded(address, subject)
    details = {"kind": kind}
    if kind == "recovery code":
        details["recovery_codes_left"] = totp.recovery_codes_left(engine, user.id)
    audit.record(engine, user.username, "2fa.success", user.username, details)
    return complete_sign_in(user, pending["remember"], pending["next"], kind)


@bp.route("/login/2fa/setup", methods=["GET", "POST"])
@access.public
def enrol():
    """An admin who must use two factors and has none sets one up before signing in."""
    found = pending_user("enrol")
    if found is None:
        return redirect(url_for("auth.login"))
    user, pending = found
    engine, settings = state.current().engine, state.current().settings
    form = CodeForm()
    if request.method == "GET" or not form.validate_on_submit():
        return setup_page(engine, settings.secret_key, user, form, action=url_for(".enrol"))
    try:
        codes = totp.confirm_enrolment(engine, settings.secret_key, user, form.code.data)
    except totp.WrongCode as wrong:
        audit.record(engine, user.username, "2fa.failure", user.username, {"enrolling": True})
        return setup_page(engine, settings.secret_key, user, form, action=url_for(".enrol"),
                          error=str(wrong).capitalize() + ".", status=401)
    complete_sign_in(user, pending["remember"], pending["next"], "totp enrolled")
    return render_template("recovery_codes.html", codes=codes, next=pending["next"])


def setup_page(engine, secret_key: str, user, form: CodeForm, action: str, *,
               ask_password: bool = False, error: str | None = None, status: int = 200):
    """The enrolment page: a fresh secret as a QR code and as text, and a code to confirm."""
    secret, uri = totp.begin_enrolment(engine, secret_key, user)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("two_factor_setup.html", form=form, action=action, error=error,
                           qr=totp.qr_svg(uri), manual_key=grouped,
                           ask_password=ask_password), status
