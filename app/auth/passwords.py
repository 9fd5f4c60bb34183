"""Password hashing with argon2id (memory-hard); nothing else ever sees a password."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.auth.errors import PasswordPolicyError
from app.config import MIN_PASSWORD_LENGTH

# argon2-cffi's defaults follow RFC 9106's second recommendation (64 MiB, 3 passes).
_hasher = PasswordHasher()
# Compared against when the username is unknown, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("p2pdash-no-such-user")


def check_policy(password: str) -> None:
    """Refuse passwords that are too short or blank."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise PasswordPolicyError("a password cannot be only spaces")


def hash_password(password: str) -> str:
    """Hash a password that meets the policy."""
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash` (None: an unknown user, always False)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)
