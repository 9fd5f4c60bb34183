"""API keys: high-entropy secrets shown once, stored as a SHA-256 hash and a short prefix.

A key reads `p2pd_<8 hex>_<43 url-safe chars>` (256 random bits). The part before the
second underscore is the prefix: stored in clear, shown in lists, used to find the row;
the whole key is then compared by hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.access import ROLE_SCOPES, SCOPES
from app.auth.errors import AccountError
from app.auth.users import User
from db.schema import api_keys, users

KEY_PREFIX = "p2pd"
# last_used_at is written at most this often per key, so busy keys cost no write per call.
TOUCH_EVERY = timedelta(seconds=60)


class KeyRejected(Exception):
    """A presented key is unknown, malformed, revoked, expired or of a disabled user."""


class ScopeError(AccountError):
    """Asked-for scopes are unknown or wider than the user's role allows."""


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling the API: the key, its owner and the scopes it may use now."""

    key_id: int
    prefix: str
    user_id: int
    username: str
    role: str
    scopes: tuple[str, ...]


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = f"{KEY_PREFIX}_{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def check_scopes(role: str, scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return the scopes in canonical order if known and allowed for `role`."""
    wanted = [scope.strip() for scope in scopes if scope.strip()]
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown:
        raise ScopeError(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not wanted:
        raise ScopeError("a key needs at least one scope")
    allowed = ROLE_SCOPES[role]
    wider = sorted(set(wanted) - set(allowed))
    if wider:
        allowed_text = ", ".join(allowed) or "none"
        raise ScopeError(f"a {role} may not hold {', '.join(wider)} (allowed: {allowed_text})")
    return tuple(scope for scope in SCOPES if scope in wanted)


def insert_key(connection: Connection, user: User, name: str, scopes: list[str],
               expires_days: int | None = None) -> tuple[dict[str, Any], str]:
    """Create a key for `user`; return its row (no secret) and the key, to show once."""
    checked = check_scopes(user.role, scopes)
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise AccountError("expiry must be from 1 to 3650 days")
    expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    for _attempt in range(3):
        prefix, key = _new_key()
        values = {"user_id": user.id, "name": name.strip() or "key", "prefix": prefix,
                  "key_hash": hash_key(key), "scopes": list(checked), "expires_at": expires_at}
        try:
            with connection.begin_nested():
                row = connection.execute(insert(api_keys).values(**values)
                                         .returning(*_listed_columns())).mappings().one()
            return dict(row), key
        except IntegrityError:
            continue  # a prefix collision (1 in 4 billion): draw again
    raise AccountError("could not draw a unique key prefix; try again")


def _listed_columns() -> list[Any]:
    return [api_keys.c.id, api_keys.c.user_id, api_keys.c.name, api_keys.c.prefix,
            api_keys.c.scopes, api_keys.c.created_at, api_keys.c.last_used_at,
            api_keys.c.expires_at, api_keys.c.revoked_at]


def list_keys(engine: Engine, user_id: int | None = None) -> list[dict[str, Any]]:
    """Every key (of one user), newest first, with its owner's name; never a secret."""
    query = (select(*_listed_columns(), users.c.username)
             .join(users, users.c.id == api_keys.c.user_id)
             .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc()))
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def revoke(connection: Connection, key_id: int) -> dict[str, Any]:
    """Revoke a key (idempotent) and return its row; AccountError when there is none."""
    connection.execute(update(api_keys).where(api_keys.c.id == key_id,
                                              api_keys.c.revoked_at.is_(None))
                       .values(revoked_at=func.now()))
    row = connection.execute(select(*_listed_columns()).where(api_keys.c.id == key_id)) \
        .mappings().first()
    if row is None:
        raise AccountError(f"no API key with id {key_id}")
    return dict(row)


def authenticate(engine: Engine, presented: str) -> ApiPrincipal:
    """The principal behind a presented key; KeyRejected with the reason otherwise."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise KeyRejected("malformed API key")
    query = (select(api_keys, users.c.username, users.c.role, users.c.is_active)
             .join(users, users.c.id == api_keys.c.user_id)
             .where(api_keys.c.prefix == f"{parts[0]}_{parts[1]}"))
    with engine.connect() as connection:
        row = connection.execute(query).first()
    # Compare even when no row matched, so a miss takes as long as a wrong secret.
    stored = row.key_hash if row else hash_key("")
    if not hmac.compare_digest(stored, hash_key(presented.strip())) or row is None:
        raise KeyRejected("unknown API key")
    _check_usable(row)
    _touch(engine, row)
    scopes = tuple(s for s in row.scopes if s in ROLE_SCOPES.get(row.role, ()))
    return ApiPrincipal(key_id=row.id, prefix=row.prefix, user_id=row.user_id,
                        username=row.username, role=row.role, scopes=scopes)


def _check_usable(row: Any) -> None:
    if row.revoked_at is not None:
        raise KeyRejected("API key revoked")
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        raise KeyRejected("API key expired")
    if not row.is_active:
        raise KeyRejected("the key's user is disabled")


def _touch(engine: Engine, row: Any) -> None:
    now = datetime.now(UTC)
    if row.last_used_at is not None and now - row.last_used_at < TOUCH_EVERY:
        return
    with engine.begin() as connection:
        connection.execute(update(api_keys).where(api_keys.c.id == row.id)
                           .values(last_used_at=func.now()))
