"""Throttling: failed logins per address and per username, and API calls per key.

Built on `limits` (the engine under Flask-Limiter) with a moving window, so "5 failures in
15 minutes" means exactly that. Counters live in Redis when REDIS_URL is set (shared by
every process), else in this process. Only failures count against a login: the check
happens before the password is looked at, the hit after it turned out wrong.
"""

from __future__ import annotations

import math
import time

from flask import current_app
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.config import Settings

EXTENSION = "p2pdash.throttle"


def current() -> Throttle:
    """The throttle of the app handling this request."""
    return current_app.extensions[EXTENSION]


def storage_uri(redis_url: str | None) -> str:
    """The `limits` storage URI for REDIS_URL (None: this process's memory)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+" + redis_url
    return redis_url


class Throttle:
    """The login and API limits of one app."""

    def __init__(self, settings: Settings) -> None:
        self.storage = storage_from_string(storage_uri(settings.redis_url))
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.login_limit: RateLimitItem = RateLimitItemPerSecond(
            settings.login_max_failures, settings.login_window_seconds)
        self.api_limit: RateLimitItem = RateLimitItemPerMinute(settings.api_rate_per_minute)

    def login_retry_after(self, address: str, username: str) -> int | None:
        """Seconds to wait when this address or username has failed too often, else None."""
        waits = [self._wait(self.login_limit, *scope)
                 for scope in self._login_scopes(address, username)
                 if not self.limiter.test(self.login_limit, *scope)]
        return max(waits) if waits else None

    def login_failed(self, address: str, username: str) -> None:
        """Count one failed login against the address and the username."""
        for scope in self._login_scopes(address, username):
            self.limiter.hit(self.login_limit, *scope)

    def api_retry_after(self, key_id: int) -> int | None:
        """Count one API call of a key; seconds to wait when it is over its rate, else None."""
        if self.limiter.hit(self.api_limit, "api-key", str(key_id)):
            return None
        return self._wait(self.api_limit, "api-key", str(key_id))

    @staticmethod
    def _login_scopes(address: str, username: str) -> list[tuple[str, str]]:
        return [("login-ip", address or "-"), ("login-user", username.strip().lower() or "-")]

    def _wait(self, item: RateLimitItem, *scope: str) -> int:
        reset_at = self.limiter.get_window_stats(item, *scope).reset_time
        return max(1, math.ceil(reset_at - time.time()))
