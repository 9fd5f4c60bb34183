"""The kiosk routes: the setup link, the screens' check-in, and the page a stopped screen shows.

- GET /kiosk/setup/<token> signs the browser in as the device, once per link, with no form;
  a wrong, used, expired or revoked token gets a plain page and no sign-in, and counts
  like a failed login (app/auth/attempts.py), audited either way.
- GET /kiosk/api/heartbeat is what assets/kiosk.js polls: the server's time and build, and
  for a device its state, playlist and that playlist's hash; it also renews the device's
  session and notes its last contact. It is public so that a revoked or signed-out screen
  learns it is (and stops) instead of being sent to a login page nobody will fill in; such
  callers get only their state and the time.
- GET /kiosk/stopped: where a revoked or signed-out screen rests.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session
from flask_login import current_user, login_user
from flask_login.utils import decode_cookie
from sqlalchemy.exc import SQLAlchemyError

from app import access, audit, state
from app.auth import attempts
from app.auth.sessions import MAX_ADDRESS, MAX_AGENT, clean_text, token_hash
from app.kiosk import build, playlists
from app.kiosk import session as device_session
from db import kiosk as store

log = logging.getLogger(__name__)
bp = Blueprint("kiosk", __name__, template_folder="templates")
SUBJECT = "kiosk-setup"  # the attempt counters' subject: one for every link
MAX_TOKEN = 100
CONTACT_EVERY = 30.0  # seconds between writes of a device's last contact
STOPPED = {
    "revoked": ("Revoked", "This screen was revoked by an administrator. Ask for a new "
                           "device and open its setup link here."),
    "signed_out": ("Signed out", "This screen is no longer signed in. Ask an administrator "
                                 "for a new setup link and open it here."),
}
PROBLEMS = {
    "unknown": (404, "This setup link is not valid", "Check the link, or ask for a new one."),
    "used": (410, "This setup link was used already", "A setup link works once. Ask an "
                                                       "administrator for a new one."),
    "expired": (410, "This setup link has expired", "Ask an administrator for a new one."),
    "revoked": (410, "This device was revoked", "Ask an administrator for a new device."),
}


def _message(title: str, text: str, status: int = 200, headers: dict[str, str] | None = None):
    page = render_template("kiosk_message.html", title=title, text=text)
    return page, status, {"Cache-Control": "no-store", **(headers or {})}


def _problem(device: dict[str, Any] | None) -> str | None:
    """Why a setup link's device cannot be signed in, or None."""
    if device is None:
        return "unknown"
    if device["revoked_at"]:
        return "revoked"
    if device["setup_used_at"]:
        return "used"
    if device["setup_expires_at"] is None or device["setup_expires_at"] <= datetime.now(UTC):
        return "expired"
    return None


@bp.get("/kiosk/setup/<token>")
@access.public
def setup(token: str):
    """Sign this browser in as the device of a setup link, once."""
    try:
        return _setup(token)
    except SQLAlchemyError as error:
        log.error("kiosk setup: database unreachable: %s", getattr(error, "orig", error))
        return _message("The server cannot check this link now",
                        "Its database is unreachable. Reload this page in a minute.", 503)


def _setup(token: str):
    engine, settings = state.current().engine, state.current().settings
    address = audit.client_ip() or "-"
    counters = attempts.Counters(engine, attempts.Limits.from_settings(settings), "kiosk",
                                 cap_user=False)
    try:
        delay = counters.begin(address, SUBJECT)
    except attempts.Throttled as throttled:
        audit.record(engine, None, "kiosk.setup.throttled", None,
                     {"retry_after": throttled.retry_after, "scope": throttled.scope})
        return _message("Too many wrong setup links",
                        f"Try again in {throttled.retry_after} seconds.", 429,
                        {"Retry-After": str(throttled.retry_after)})
    if delay:
        time.sleep(delay)
    with engine.begin() as connection:
        device = store.device_by_setup_hash(connection, token_hash(token)) \
            if len(token) <= MAX_TOKEN else None
        problem = _problem(device)
        if problem is None and device and not store.use_setup_token(connection, device["id"]):
            problem = "used"  # another browser took it in the same instant
    if problem or device is None:
        counters.failed(SUBJECT)
        audit.record(engine, None, "kiosk.setup.failure", device["name"] if device else None,
                     {"reason": problem})
        status, title, text = PROBLEMS[problem or "unknown"]
        return _message(title, text, status)
    counters.succeeded(address, SUBJECT)
    return _sign_in(device)


def _sign_in(device: dict[str, Any]):
    engine, settings = state.current().engine, state.current().settings
    user = device_session.start(engine, device, settings, ip=audit.client_ip(),
                                user_agent=request.user_agent.string)
    login_user(user, remember=True, duration=timedelta(days=settings.kiosk.session_days))
    audit.record(engine, user.username, "kiosk.setup.success", device["name"],
                 {"session_id": user.session_id,
                  "user_agent": clean_text(request.user_agent.string, MAX_AGENT)})
    return redirect(f"/kiosk/{device['playlist'] or playlists.WALL}")


@bp.get("/kiosk")
@access.public
def start():
    """The address a kiosk machine starts at after its setup: the device's own playlist."""
    user = current_user._get_current_object()
    if isinstance(user, device_session.DeviceUser):
        try:
            with state.current().engine.connect() as connection:
                device = store.device_by_id(connection, user.device_id)
        except SQLAlchemyError:
            device = None  # the database is down: the wall, which shows STALE until it is back
        return redirect(f"/kiosk/{(device or {}).get('playlist') or playlists.WALL}")
    found = _signed_out_state()
    if found == "unknown":  # the database is down: try again, do not rest on "signed out"
        return _message("The server cannot check this screen now",
                        "Its database is unreachable. This page retries by itself.", 503,
                        {"Refresh": "30", "Retry-After": "30"})
    return redirect(f"/kiosk/stopped?why={found}")


@bp.get("/kiosk/stopped")
@access.public
def stopped():
    """The plain page of a screen that was revoked or signed out: nothing more happens."""
    title, text = STOPPED.get(request.args.get("why", ""), STOPPED["signed_out"])
    return _message(title, text)


@bp.get("/kiosk/api/heartbeat")
@access.public
def heartbeat():
    """The check-in of a screen: server time and build, device state, playlist and hash."""
    body: dict[str, Any] = {"server_time": int(time.time() * 1000)}
    if current_user.is_authenticated:
        body.update(build=build.current(current_app), device="user")
        if isinstance(current_user._get_current_object(), device_session.DeviceUser):
            body.update(_device_check_in())
    else:
        body["device"] = _signed_out_state()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _presented_token() -> str | None:
    """The session token the caller's cookies carry, whether or not it still works."""
    token = session.get("_user_id")
    if token:
        return str(token)
    cookie = request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME",
                                                        "remember_token"))
    return decode_cookie(cookie) if cookie else None


def _signed_out_state() -> str:
    try:
        found = device_session.state_of(state.current().engine, _presented_token())
    except SQLAlchemyError:
        return "unknown"  # the database is down: nothing is known, the screen waits
    return "revoked" if found == "revoked" else "signed_out"


def _device_check_in() -> dict[str, Any]:
    engine, settings = state.current().engine, state.current().settings
    user = current_user._get_current_object()
    try:
        with engine.begin() as connection:
            device = store.device_by_id(connection, user.device_id)
            views = _views_of(connection, device)
            _note_contact(connection, user.device_id)
        renewed = device_session.renew(engine, user, settings)
    except SQLAlchemyError:
        return {"device": "unknown"}
    if renewed is not None:  # the remember cookie follows the session's new expiry
        login_user(user, remember=True, duration=timedelta(days=settings.kiosk.session_days))
    name = (device or {}).get("playlist") or playlists.WALL
    return {"device": "ok", "name": (device or {}).get("name"), "playlist": name,
            "playlist_hash": playlists.fingerprint(views)}


def _views_of(connection, device: dict[str, Any] | None) -> list[dict[str, Any]]:
    views = store.playlist_views(connection, (device or {}).get("playlist"))
    return views if views is not None else list(playlists.WALL_ONLY)


_last_contact: dict[int, tuple[float, str | None]] = {}


def _note_contact(connection, device_id: int) -> None:
    """Write the device's last contact and what it shows, at most every CONTACT_EVERY s."""
    showing = clean_text(request.args.get("showing"), 200)
    noted_at, noted = _last_contact.get(device_id, (0.0, None))
    if showing == noted and time.monotonic() - noted_at < CONTACT_EVERY:
        return
    store.note_contact(connection, device_id, clean_text(audit.client_ip(), MAX_ADDRESS),
                       clean_text(request.user_agent.string, MAX_AGENT), showing)
    _last_contact[device_id] = (time.monotonic(), showing)
