"""Contact point secrets encrypted at rest: Fernet tokens under a key derived from SECRET_KEY.

URLs of contact points carry tokens (a Telegram bot token, a Slack webhook path, a password
in an SMTP URL), so the whole URL and the signing secret are stored as one token and never
shown back. Changing SECRET_KEY makes stored contact points undecryptable: they are then
marked failing with a message that says so, and must be entered again.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(ValueError):
    """A stored secret that this SECRET_KEY cannot decrypt."""


@functools.lru_cache(maxsize=8)
def fernet_for(secret_key: str, purpose: str) -> Fernet:
    """A Fernet under a key derived from SECRET_KEY for one purpose (each gets its own key)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"p2pdash",
               info=purpose.encode()).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet(secret_key: str) -> Fernet:
    return fernet_for(secret_key, "p2pdash contact point secrets")


def seal(secret_key: str, values: dict[str, Any]) -> bytes:
    """Encrypt a small JSON object."""
    return _fernet(secret_key).encrypt(json.dumps(values).encode())


def unseal(secret_key: str, token: bytes) -> dict[str, Any]:
    """Decrypt what seal() made, or raise SecretUnreadable."""
    try:
        return json.loads(_fernet(secret_key).decrypt(bytes(token)))
    except InvalidToken:
        raise SecretUnreadable("this contact point was saved under another SECRET_KEY: "
                               "enter its URL again") from None
