"""Server-side sessions: one row per sign-in, behind both the session and remember cookies.

The cookies carry only a random token; the row (found by the token's SHA-256) says whose it
is, when it started, when it was last seen, from where, and when it ends. A session ends
when its row is revoked (logout, password or role change, disable, "sign out everywhere"),
when it was idle too long (remember-me sessions excepted: a wall screen sleeps at night)
or when it reaches its absolute expiry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, insert, or_, select, update

from app.auth import users
from app.config import Settings
from db.schema import sessions
from db.schema import users as users_table

MAX_ADDRESS = 64
KEEP_ENDED = timedelta(days=30)  # ended sessions stay listed this long, then go
MAX_AGENT = 256
# last_seen_at is written at most this often, not on every Dash callback.
TOUCH_EVERY = timedelta(seconds=60)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Session:
    """A session row as the account page shows it (never the token)."""

    id: int
    remember: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


def clean_text(value: str | None, limit: int) -> str | None:
    """Text from outside, without control characters and at most `limit` long."""
    if not value:
        return None
    return _CONTROL.sub("", value)[:limit].strip() or None


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(engine: Engine, user: users.User, settings: Settings, *, remember: bool,
          ip: str | None, user_agent: str | None) -> users.User:
    """Open a session for `user`; return the user carrying its id and token."""
    token = secrets.token_urlsafe(32)
    days = settings.remember_days if remember else settings.session_max_days
    values = {"user_id": user.id, "token_hash": token_hash(token), "remember": remember,
              "expires_at": datetime.now(UTC) + timedelta(days=days),
              "ip": clean_text(ip, MAX_ADDRESS), "user_agent": clean_text(user_agent, MAX_AGENT)}
    with engine.begin() as connection:
        session_id = connection.scalar(insert(sessions).values(**values)
                                       .returning(sessions.c.id))
    return replace(user, session_id=session_id, session_token=token)


# Built once: every request resolves its session, and building the statement each time cost
# more of a worker's CPU than running it (py-spy under bench/views_load.py).
_RESOLVE = (select(users_table, sessions.c.id.label("session_id"),
                   sessions.c.last_seen_at.label("session_seen"))
            .join(sessions, sessions.c.user_id == users_table.c.id)
            .where(sessions.c.token_hash == bindparam("token_hash"),
                   sessions.c.revoked_at.is_(None), sessions.c.expires_at > bindparam("now"),
                   users_table.c.is_active,
                   or_(sessions.c.remember, sessions.c.last_seen_at > bindparam("idle_since"))))


def resolve(engine: Engine, token: str, settings: Settings, ip: str | None) -> users.User | None:
    """The active user of a live session with this token, or None (and note it was seen)."""
    if not token or len(token) > 100:
        return None
    now = datetime.now(UTC)
    params = {"token_hash": token_hash(token), "now": now,
              "idle_since": now - timedelta(minutes=settings.session_idle_minutes)}
    with engine.connect() as connection:
        row = connection.execute(_RESOLVE, params).first()
    if row is None:
        from app.kiosk import session as device_session  # a kiosk device's session?

        return device_session.resolve(engine, token, ip)
    if datetime.now(UTC) - row.session_seen > TOUCH_EVERY:
        _touch(engine, row.session_id, ip)
    return replace(users.from_row(row), session_id=row.session_id, session_token=token)


def _touch(engine: Engine, session_id: int, ip: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.id == session_id)
                           .values(last_seen_at=datetime.now(UTC),
                                   ip=clean_text(ip, MAX_ADDRESS)))


def end(bind: Engine | Connection, user_id: int, session_id: int, reason: str) -> bool:
    """End one session of a user; whether it was live."""
    return _revoke(bind, and_(sessions.c.user_id == user_id, sessions.c.id == session_id),
                   reason) > 0


def end_all(bind: Engine | Connection, user_id: int, reason: str, *,
            keep: int | None = None) -> int:
    """End every session of a user (except `keep`); how many were live."""
    condition = sessions.c.user_id == user_id
    if keep is not None:
        condition = and_(condition, sessions.c.id != keep)
    return _revoke(bind, condition, reason)


def _revoke(bind: Engine | Connection, condition: Any, reason: str) -> int:
    statement = (update(sessions).where(condition, sessions.c.revoked_at.is_(None))
                 .values(revoked_at=datetime.now(UTC), revoked_reason=reason[:100]))
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return connection.execute(statement).rowcount
    return bind.execute(statement).rowcount


def prune(engine: Engine, user_id: int) -> None:
    """Delete a user's sessions that ended more than KEEP_ENDED ago."""
    cutoff = datetime.now(UTC) - KEEP_ENDED
    with engine.begin() as connection:
        connection.execute(sessions.delete().where(
            sessions.c.user_id == user_id,
            or_(sessions.c.revoked_at < cutoff, sessions.c.expires_at < cutoff)))


def live(engine: Engine, user_id: int, settings: Settings) -> list[Session]:
    """The user's sessions that still work, newest first."""
    idle_since = datetime.now(UTC) - timedelta(minutes=settings.session_idle_minutes)
    query = (select(sessions.c.id, sessions.c.remember, sessions.c.created_at,
                    sessions.c.last_seen_at, sessions.c.expires_at, sessions.c.ip,
                    sessions.c.user_agent)
             .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > datetime.now(UTC),
                    or_(sessions.c.remember, sessions.c.last_seen_at > idle_since))
             .order_by(sessions.c.created_at.desc()))
    with engine.connect() as connection:
        return [Session(**row) for row in connection.execute(query).mappings()]
