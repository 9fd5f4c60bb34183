"""Device sessions: a kiosk device signed in is a row of `sessions` owned by the device.

Its browser holds the token in the session and remember cookies like any sign-in. The
session has no idle limit (a wall screen may be switched off at night) and an absolute
expiry P2PDASH_KIOSK_SESSION_DAYS ahead, which every check-in of a screen that is not
revoked moves forward again (at most once a day), so a screen in use never lapses into a
login page and one unplugged for longer than that needs a new setup link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from app.auth import users
from app.auth.sessions import MAX_ADDRESS, MAX_AGENT, TOUCH_EVERY, clean_text, token_hash
from app.config import Settings
from db import kiosk as store
from db.schema import sessions

RENEW_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class DeviceUser(users.User):
    """A kiosk device as flask-login's user: role kiosk, named `kiosk:<device>`."""

    device_id: int = 0
    session_expires_at: datetime | None = None


def actor(name: str) -> str:
    """How a device appears in the audit log."""
    return f"kiosk:{name}"


def _user(device: dict[str, Any], **session: Any) -> DeviceUser:
    return DeviceUser(id=-device["device_id"], username=actor(device["name"]), role="kiosk",
                      is_active=True, email=None, created_at=device["created_at"],
                      last_login_at=None, device_id=device["device_id"], **session)


def start(engine: Engine, device: dict[str, Any], settings: Settings, *, ip: str | None,
          user_agent: str | None) -> DeviceUser:
    """Open a session for a device (ending any it had: one screen per device)."""
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(days=settings.kiosk.session_days)
    values = {"device_id": device["id"], "token_hash": token_hash(token), "remember": True,
              "expires_at": expires_at, "ip": clean_text(ip, MAX_ADDRESS),
              "user_agent": clean_text(user_agent, MAX_AGENT)}
    with engine.begin() as connection:
        store.end_device_sessions(connection, device["id"], "replaced by a new setup")
        session_id = connection.scalar(insert(sessions).values(**values)
                                       .returning(sessions.c.id))
    found = {"device_id": device["id"], "name": device["name"],
             "created_at": device["created_at"]}
    return _user(found, session_id=session_id, session_token=token,
                 session_expires_at=expires_at)


def resolve(engine: Engine, token: str, ip: str | None) -> DeviceUser | None:
    """The device of a live device session with this token, or None."""
    with engine.connect() as connection:
        row = store.device_session(connection, token_hash(token))
    now = datetime.now(UTC)
    if row is None or row["revoked_at"] or row["device_revoked_at"] or row["expires_at"] <= now:
        return None
    if now - row["last_seen_at"] > TOUCH_EVERY:
        with engine.begin() as connection:
            store.touch_session(connection, row["session_id"], row["device_id"],
                                clean_text(ip, MAX_ADDRESS))
    return _user(row, session_id=row["session_id"], session_token=token,
                 session_expires_at=row["expires_at"])


def state_of(engine: Engine, token: str | None) -> str:
    """What became of the device session with this token: "revoked", "expired" or "none"."""
    if not token or len(token) > 100:
        return "none"
    with engine.connect() as connection:
        row = store.device_session(connection, token_hash(token))
    if row is None:
        return "none"
    if row["revoked_at"] or row["device_revoked_at"]:
        return "revoked"
    return "expired"


def renew(engine: Engine, user: DeviceUser, settings: Settings) -> datetime | None:
    """Move the session's expiry a full lifetime ahead when a day of it has passed; the new
    expiry, or None when it was fresh enough."""
    lifetime = timedelta(days=settings.kiosk.session_days)
    now = datetime.now(UTC)
    if user.session_expires_at and user.session_expires_at - now > lifetime - RENEW_EVERY:
        return None
    with engine.begin() as connection:
        store.extend_session(connection, user.session_id or 0, now + lifetime)
    return now + lifetime
