"""Users: data access for the users table, and the object flask-login keeps per request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_login import current_user
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.access import ROLES
from app.auth.errors import AccountError, UnknownUser, UserExists
from app.auth.passwords import hash_password
from app.config import USERNAME
from db.schema import users


@dataclass(frozen=True)
class User:
    """A row of `users` (never the password hash), as flask-login wants a user."""

    id: int
    username: str
    role: str
    is_active: bool
    email: str | None
    created_at: datetime
    last_login_at: datetime | None
    # The server-side session this request runs in (app/auth/sessions.py), when signed in.
    session_id: int | None = None
    session_token: str | None = field(default=None, repr=False)

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        # The session and remember cookies carry only the session's random token: ending
        # the session's row ends both.
        return self.session_token or ""


def from_row(row: Any) -> User:
    """The User of a users row."""
    return User(id=row.id, username=row.username, role=row.role, is_active=row.is_active,
                email=row.email, created_at=row.created_at, last_login_at=row.last_login_at)


def current_role() -> str | None:
    """The role of the signed-in user of this request, or None."""
    if current_user and current_user.is_authenticated:
        return current_user.role
    return None


def validate_role(role: str) -> str:
    """Return `role` if it is one of the four roles."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return role


def validate_username(username: str) -> str:
    """Return the trimmed username if it is acceptable."""
    name = username.strip()
    if not USERNAME.match(name):
        raise AccountError("usernames are 1-64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


def get(bind: Engine | Connection, user_id: int) -> User | None:
    """The user with this id, or None."""
    return _one(bind, select(users).where(users.c.id == user_id))


def find(bind: Engine | Connection, username: str) -> User | None:
    """The user with this name (any case), or None."""
    return _one(bind, select(users).where(func.lower(users.c.username) == username.lower()))


def password_hash_of(bind: Engine | Connection, username: str) -> tuple[User, str] | None:
    """The user and stored hash for a login check, or None."""
    query = select(users).where(func.lower(users.c.username) == username.strip().lower())
    row = _row(bind, query)
    return (from_row(row), row.password_hash) if row else None


def all_users(bind: Engine | Connection) -> list[User]:
    """Every user, by name."""
    query = select(users).order_by(func.lower(users.c.username))
    return [from_row(row) for row in _rows(bind, query)]


def count(bind: Engine | Connection, *, role: str | None = None, active: bool = False) -> int:
    """How many users (of a role; only active ones when asked)."""
    query = select(func.count()).select_from(users)
    if role:
        query = query.where(users.c.role == role)
    if active:
        query = query.where(users.c.is_active)
    return _scalar(bind, query)


def insert_user(connection: Connection, username: str, password: str, role: str,
                email: str | None = None) -> User:
    """Insert a user with a hashed password; UserExists when the name is taken."""
    values = {"username": validate_username(username), "role": validate_role(role),
              "password_hash": hash_password(password), "email": email or None}
    try:
        with connection.begin_nested():
            row = connection.execute(insert(users).values(**values).returning(users)).one()
    except IntegrityError:
        raise UserExists(f"a user named {values['username']!r} exists already") from None
    return from_row(row)


def change(connection: Connection, user_id: int, **values: Any) -> User:
    """Update columns of one user and return it; UnknownUser when it does not exist."""
    if "password" in values:
        values["password_hash"] = hash_password(values.pop("password"))
    row = connection.execute(
        update(users).where(users.c.id == user_id).values(**values).returning(users)).first()
    if row is None:
        raise UnknownUser(f"no user with id {user_id}")
    return from_row(row)


def touch_login(engine: Engine, user_id: int) -> None:
    """Remember when the user last signed in."""
    with engine.begin() as connection:
        connection.execute(update(users).where(users.c.id == user_id)
                           .values(last_login_at=func.now()))


def _rows(bind: Engine | Connection, query: Any) -> list[Any]:
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return list(connection.execute(query))
    return list(bind.execute(query))


def _row(bind: Engine | Connection, query: Any) -> Any:
    rows = _rows(bind, query)
    return rows[0] if rows else None


def _one(bind: Engine | Connection, query: Any) -> User | None:
    row = _row(bind, query)
    return from_row(row) if row else None


def _scalar(bind: Engine | Connection, query: Any) -> int:
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return connection.scalar(query) or 0
    return bind.scalar(query) or 0
