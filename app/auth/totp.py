"""Two-factor sign-in: TOTP (RFC 6238, checked with pyotp) and single-use recovery codes.

The TOTP secret is a user secret: stored as a Fernet token under a key derived from
SECRET_KEY, shown only while enrolling (QR code and manual key) and never again. A code is
accepted once: the newest accepted time step is kept, and one UPDATE ... WHERE
last_step < step takes it, so a replayed code (even in parallel) is refused. Recovery codes
carry 80 random bits; only their SHA-256 is stored, and using one marks it used atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import UTC, datetime

import pyotp
import segno
from cryptography.fernet import InvalidToken
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import audit
from app.alerts.secrets import fernet_for
from app.auth.errors import AccountError
from app.auth.users import User
from db.schema import user_recovery_codes, user_totp

log = logging.getLogger(__name__)
ISSUER = "p2pdash"
PURPOSE = "p2pdash totp secrets"
RECOVERY_CODES = 10
ENROLMENT_SECONDS = 600  # how long a secret being enrolled is offered again (page reloads)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_TOTP_CODE = re.compile(r"^\d{6}$")


class WrongCode(AccountError):
    """The code does not match (or was used already)."""


def _seal(secret_key: str, secret: str) -> bytes:
    return fernet_for(secret_key, PURPOSE).encrypt(secret.encode())


def _unseal(secret_key: str, token: bytes) -> str | None:
    try:
        return fernet_for(secret_key, PURPOSE).decrypt(bytes(token)).decode()
    except InvalidToken:
        log.error("a TOTP secret was saved under another SECRET_KEY: it cannot be checked")
        return None


def is_enabled(bind: Engine | Connection, user_id: int) -> bool:
    """Whether the user signs in with a second factor."""
    query = select(func.count()).select_from(user_totp).where(
        user_totp.c.user_id == user_id, user_totp.c.confirmed_at.is_not(None))
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return bool(connection.scalar(query))
    return bool(bind.scalar(query))


def begin_enrolment(engine: Engine, secret_key: str, user: User) -> tuple[str, str]:
    """The secret a user without TOTP is enrolling with (a new one unless one was made in
    the last ENROLMENT_SECONDS), and its otpauth URI."""
    with engine.begin() as connection:
        row = connection.execute(select(user_totp).where(user_totp.c.user_id == user.id)
                                 .with_for_update()).first()
        if row is not None and row.confirmed_at is not None:
            raise AccountError("two-factor sign-in is on already; turn it off first")
        fresh = row is not None and \
            (datetime.now(UTC) - row.created_at).total_seconds() < ENROLMENT_SECONDS
        secret = _unseal(secret_key, row.secret) if fresh else None
        if secret is None:
            secret = pyotp.random_base32()
            statement = pg_insert(user_totp).values(user_id=user.id,
                                                    secret=_seal(secret_key, secret))
            connection.execute(statement.on_conflict_do_update(
                index_elements=[user_totp.c.user_id],
                set_={"secret": statement.excluded.secret, "created_at": func.now(),
                      "last_step": 0}))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return secret, uri


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (made here: no outside service sees it)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")


def confirm_enrolment(engine: Engine, secret_key: str, user: User, code: str) -> list[str]:
    """Turn TOTP on once the user proves the app has the secret; return new recovery codes."""
    with engine.begin() as connection:
        row = connection.execute(select(user_totp).where(
            user_totp.c.user_id == user.id, user_totp.c.confirmed_at.is_(None))
            .with_for_update()).first()
        secret = _unseal(secret_key, row.secret) if row else None
        step = _matching_step(secret, code) if secret else None
        if step is None:
            raise WrongCode("that code does not match; check the time on your phone")
        connection.execute(update(user_totp).where(user_totp.c.user_id == user.id)
                           .values(confirmed_at=func.now(), last_step=step))
        codes = _replace_recovery_codes(connection, user.id)
        audit.record(connection, user.username, "2fa.enable", user.username)
    return codes


def disable(engine: Engine, actor: str, user: User) -> None:
    """Turn TOTP off and drop the recovery codes."""
    with engine.begin() as connection:
        remove(connection, user.id)
        audit.record(connection, actor, "2fa.disable", user.username)


def remove(connection: Connection, user_id: int) -> bool:
    """Drop a user's TOTP secret (enrolled or being enrolled) and recovery codes; return
    whether there was one."""
    removed = connection.execute(delete(user_totp).where(user_totp.c.user_id == user_id))
    connection.execute(delete(user_recovery_codes)
                       .where(user_recovery_codes.c.user_id == user_id))
    return bool(removed.rowcount)


def check_code(engine: Engine, secret_key: str, user_id: int, code: str) -> str:
    """Accept a TOTP or recovery code once; return which it was, or raise WrongCode."""
    entered = re.sub(r"[\s-]", "", code or "").lower()[:64]
    if _TOTP_CODE.match(entered):
        if _take_totp_step(engine, secret_key, user_id, entered):
            return "totp"
    elif _use_recovery_code(engine, user_id, entered):
        return "recovery code"
    raise WrongCode("wrong code")


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (now, or one either side for clock drift) whose code this is."""
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return totp.timecode(at)
    return None


def _take_totp_step(engine: Engine, secret_key: str, user_id: int, code: str) -> bool:
    with engine.begin() as connection:
        row = connection.execute(select(user_totp).where(
            user_totp.c.user_id == user_id, user_totp.c.confirmed_at.is_not(None))).first()
        secret = _unseal(secret_key, row.secret) if row else None
        step = _matching_step(secret, code) if secret else None
        if step is None:
            return False
        taken = connection.execute(update(user_totp).where(
            user_totp.c.user_id == user_id, user_totp.c.last_step < step)
            .values(last_step=step).returning(user_totp.c.user_id)).first()
    return taken is not None


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _replace_recovery_codes(connection: Connection, user_id: int) -> list[str]:
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    connection.execute(delete(user_recovery_codes)
                       .where(user_recovery_codes.c.user_id == user_id))
    connection.execute(insert(user_recovery_codes), [
        {"user_id": user_id, "code_hash": _code_hash(code.replace("-", ""))} for code in codes])
    return codes


def new_recovery_codes(engine: Engine, user: User) -> list[str]:
    """Replace the user's recovery codes; return the new ones (shown once)."""
    with engine.begin() as connection:
        if not is_enabled(connection, user.id):
            raise AccountError("turn two-factor sign-in on first")
        codes = _replace_recovery_codes(connection, user.id)
        audit.record(connection, user.username, "2fa.recovery_codes", user.username)
    return codes


def _use_recovery_code(engine: Engine, user_id: int, code: str) -> bool:
    with engine.begin() as connection:
        used = connection.execute(update(user_recovery_codes).where(
            user_recovery_codes.c.user_id == user_id,
            user_recovery_codes.c.code_hash == _code_hash(code),
            user_recovery_codes.c.used_at.is_(None))
            .values(used_at=datetime.now(UTC)).returning(user_recovery_codes.c.id)).first()
    return used is not None


def recovery_codes_left(engine: Engine, user_id: int) -> int:
    """How many unused recovery codes the user has."""
    query = select(func.count()).select_from(user_recovery_codes).where(
        user_recovery_codes.c.user_id == user_id, user_recovery_codes.c.used_at.is_(None))
    with engine.connect() as connection:
        return connection.scalar(query) or 0
