"""Account actions shared by the CLI and the admin tab: each validates, acts and audits.

Every action runs in one transaction with its audit entry, so an action that fails leaves
neither a change nor a log line, and one that succeeds always leaves both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine

from app import audit
from app.api import keys
from app.auth import sessions, totp, users
from app.auth.errors import AccountError, UnknownUser
from app.auth.users import User


class LastAdminError(AccountError):
    """The action would leave no active admin."""


def create_user(engine: Engine, actor: str, username: str, password: str, role: str, *,
                email: str | None = None) -> User:
    """Create a user and log it."""
    with engine.begin() as connection:
        user = users.insert_user(connection, username, password, role, email)
        audit.record(connection, actor, "user.create", user.username, {"role": role})
    return user


def set_role(engine: Engine, actor: str, username: str, role: str) -> User:
    """Give a user another role (never taking the last admin's); their sessions end."""
    users.validate_role(role)
    with engine.begin() as connection:
        user = _existing(connection, username)
        if user.role == "admin" and role != "admin":
            _keep_an_admin(connection, user)
        changed = users.change(connection, user.id, role=role)
        ended = sessions.end_all(connection, user.id, "role changed") if role != user.role \
            else 0
        audit.record(connection, actor, "user.set_role", user.username,
                     {"from": user.role, "to": role, "sessions_ended": ended})
    return changed


def set_active(engine: Engine, actor: str, username: str, active: bool) -> User:
    """Disable (sessions and keys stop working) or enable a user."""
    with engine.begin() as connection:
        user = _existing(connection, username)
        if not active and user.role == "admin":
            _keep_an_admin(connection, user)
        changed = users.change(connection, user.id, is_active=active)
        if not active:
            sessions.end_all(connection, user.id, "disabled")
        audit.record(connection, actor, "user.enable" if active else "user.disable",
                     user.username)
    return changed


def reset_password(engine: Engine, actor: str, username: str, password: str) -> User:
    """Set a new password; the user's sessions and remember cookies end."""
    with engine.begin() as connection:
        user = _existing(connection, username)
        changed = users.change(connection, user.id, password=password)
        ended = sessions.end_all(connection, user.id, "password reset")
        audit.record(connection, actor, "user.reset_password", user.username,
                     {"sessions_ended": ended})
    return changed


def change_own_password(engine: Engine, user: User, new_password: str) -> int:
    """Set the signed-in user's new password; end their other sessions, return how many."""
    with engine.begin() as connection:
        users.change(connection, user.id, password=new_password)
        ended = sessions.end_all(connection, user.id, "password changed", keep=user.session_id)
        audit.record(connection, user.username, "user.change_password", user.username,
                     {"sessions_ended": ended})
    return ended


def sign_out_everywhere(engine: Engine, actor: str, username: str) -> int:
    """End every session and remember cookie of a user; return how many were live."""
    with engine.begin() as connection:
        user = _existing(connection, username)
        ended = sessions.end_all(connection, user.id, f"signed out everywhere by {actor}")
        audit.record(connection, actor, "user.sign_out_everywhere", user.username,
                     {"sessions_ended": ended})
    return ended


def reset_two_factor(engine: Engine, actor: str, username: str) -> int:
    """Turn off a user's two-factor sign-in (a lost phone) and end their sessions, which
    may be the thief's; return how many sessions ended. They enrol again at next sign-in
    when their role requires it."""
    with engine.begin() as connection:
        user = _existing(connection, username)
        if not totp.remove(connection, user.id):
            raise AccountError(f"{user.username} does not use two-factor sign-in")
        ended = sessions.end_all(connection, user.id, f"two-factor reset by {actor}")
        audit.record(connection, actor, "2fa.reset", user.username, {"sessions_ended": ended})
    return ended


def create_key(engine: Engine, actor: str, username: str, name: str, scopes: list[str], *,
               expires_days: int | None = None) -> tuple[dict[str, Any], str]:
    """Create an API key for a user; return its row and the key (shown once)."""
    with engine.begin() as connection:
        user = _existing(connection, username)
        if not user.is_active:
            raise AccountError(f"{user.username} is disabled")
        row, key = keys.insert_key(connection, user, name, scopes, expires_days)
        audit.record(connection, actor, "key.create", user.username,
                     {"key_id": row["id"], "prefix": row["prefix"], "scopes": row["scopes"],
                      "expires_at": row["expires_at"].isoformat() if row["expires_at"]
                      else None})
    return row, key


def revoke_key(engine: Engine, actor: str, key_id: int) -> dict[str, Any]:
    """Revoke an API key: from now on it gets 401."""
    with engine.begin() as connection:
        row = keys.revoke(connection, key_id)
        audit.record(connection, actor, "key.revoke", row["prefix"], {"key_id": key_id})
    return row


def _existing(connection: Connection, username: str) -> User:
    user = users.find(connection, username.strip())
    if user is None:
        raise UnknownUser(f"no user named {username!r}")
    return user


def _keep_an_admin(connection: Connection, user: User) -> None:
    if user.is_active and users.count(connection, role="admin", active=True) <= 1:
        raise LastAdminError(f"{user.username} is the last active admin; "
                             "make another admin first")
