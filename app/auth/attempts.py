"""Sign-in attempt counters in PostgreSQL: limits an attacker cannot turn against the user.

An attempt first takes a slot on its counters with one UPSERT ... RETURNING each, so thirty
parallel guesses get exactly the allowed number of checks, in every process. Scopes:
- address: failures from one address over every username. A NAT full of users is not locked
  by one user's typos (it takes many), a spraying address is.
- pair: failures of one username from one address. It locks the attacker's own address for
  that username, never the user's own address.
- user: failures of one username from anywhere. For passwords only a growing delay before
  the check, which the right password still passes; for second factors (which only someone
  holding the password can try) a hard cap as well.
A success gives its slots back and clears its pair, so only failures count. Windows are
fixed: an attacker who keeps trying does not extend a lock.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import Engine, text

from app.config import Settings

TAKE = text("""
INSERT INTO auth_counters AS c (scope, key, window_start, hits)
VALUES (:scope, :key, now(), 1)
ON CONFLICT (scope, key) DO UPDATE SET
    hits = CASE WHEN c.window_start <= now() - :window * interval '1 second' THEN 1
                ELSE c.hits + 1 END,
    window_start = CASE WHEN c.window_start <= now() - :window * interval '1 second'
                        THEN now() ELSE c.window_start END
RETURNING hits,
          extract(epoch FROM window_start + :window * interval '1 second' - now()) AS remaining
""")
GIVE_BACK = text("UPDATE auth_counters SET hits = greatest(hits - 1, 0) "
                 "WHERE scope = :scope AND key = :key")
CLEAR = text("DELETE FROM auth_counters WHERE scope = :scope AND key = :key")
COUNT = text("SELECT hits FROM auth_counters WHERE scope = :scope AND key = :key "
             "AND window_start > now() - :window * interval '1 second'")
SWEEP = text("DELETE FROM auth_counters WHERE window_start < now() - :window * interval '1 second'")
MAX_KEY = 200


@dataclass(frozen=True)
class Limits:
    """How many failures each scope allows per window, and the slow-down's ceiling."""

    pair: int
    address: int
    window_seconds: int
    slowdown_max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits the settings ask for."""
        return cls(settings.login_max_failures, settings.login_address_max_failures,
                   settings.login_window_seconds, settings.login_slowdown_max_seconds)


class Throttled(Exception):
    """Too many failures in this scope; retry after `retry_after` seconds."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"{scope} throttled for {retry_after} s")
        self.scope = scope
        self.retry_after = retry_after


def address_key(address: str | None) -> str:
    """The counter key of an address: IPv6 callers count per /64, which one host gets."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "-")[:MAX_KEY]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class Counters:
    """The attempt counters of one kind of secret ("login" or "2fa") in one database."""

    def __init__(self, engine: Engine, limits: Limits, kind: str, *, cap_user: bool) -> None:
        self.engine = engine
        self.limits = limits
        self.kind = kind
        self.cap_user = cap_user

    def begin(self, address: str | None, subject: str) -> float:
        """Take this attempt's slots; return the delay to wait before checking, or raise
        Throttled (holding no slot)."""
        scopes = [(self._scope("address", address_key(address)), self.limits.address),
                  (self._pair(address, subject), self.limits.pair)]
        if self.cap_user:
            scopes.append((self._scope("user", subject), self.limits.address))
        taken: list[dict[str, str]] = []
        try:
            for scope, limit in scopes:
                taken.append(scope)
                self._take(scope, limit)
        except Throttled:
            for scope in taken:
                self._give_back(scope)
            raise
        return self.delay(subject)

    def succeeded(self, address: str | None, subject: str) -> None:
        """Give the slots back: a success is not a failure."""
        self._give_back(self._scope("address", address_key(address)))
        self._execute(CLEAR, self._pair(address, subject))
        if self.cap_user:
            self._give_back(self._scope("user", subject))

    def failed(self, subject: str) -> None:
        """Count a failure against the subject from anywhere (the slow-down's counter)."""
        if not self.cap_user:
            with self.engine.begin() as connection:
                connection.execute(TAKE, {**self._scope("user", subject),
                                          "window": self.limits.window_seconds})

    def delay(self, subject: str) -> float:
        """Seconds to wait before checking a secret for a subject that failed often."""
        if self.cap_user:
            return 0.0
        with self.engine.connect() as connection:
            failures = connection.scalar(COUNT, {**self._scope("user", subject),
                                                 "window": self.limits.window_seconds}) or 0
        if failures < self.limits.pair:
            return 0.0
        return min(self.limits.slowdown_max_seconds, 0.25 * 2 ** (failures - self.limits.pair))

    def sweep(self) -> None:
        """Delete counters whose window is long over."""
        self._execute(SWEEP, {"window": self.limits.window_seconds})

    def _take(self, scope: dict[str, str], limit: int) -> None:
        with self.engine.begin() as connection:
            hits, remaining = connection.execute(
                TAKE, {**scope, "window": self.limits.window_seconds}).one()
        if hits > limit:
            raise Throttled(scope["scope"], max(1, math.ceil(float(remaining))))

    def _give_back(self, scope: dict[str, str]) -> None:
        self._execute(GIVE_BACK, scope)

    def _execute(self, statement, values: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(statement, values)

    def _scope(self, name: str, key: str) -> dict[str, str]:
        return {"scope": f"{self.kind}:{name}", "key": key[:MAX_KEY]}

    def _pair(self, address: str | None, subject: str) -> dict[str, str]:
        return self._scope("pair", f"{address_key(address)}|{subject}")


def login_counters(engine: Engine, settings: Settings) -> Counters:
    """Counters for passwords: per username only a slow-down."""
    return Counters(engine, Limits.from_settings(settings), "login", cap_user=False)


def second_factor_counters(engine: Engine, settings: Settings) -> Counters:
    """Counters for TOTP and recovery codes: per user a hard cap too (the password is known)."""
    return Counters(engine, Limits.from_settings(settings), "2fa", cap_user=True)
