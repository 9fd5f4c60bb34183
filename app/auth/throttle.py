"""Throttling of API calls per key.

Built on `limits` (the engine under Flask-Limiter) with a moving window. Counters live in
Redis when REDIS_URL is set (shared by every process), else in this process. Sign-in
attempts are counted in PostgreSQL instead (app/auth/attempts.py), which every process
shares whether or not Redis is there, atomically.
"""

from __future__ import annotations

import math
import time

from flask import current_app
from limits import RateLimitItem, RateLimitItemPerMinute
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
    """The API limits of one app."""

    def __init__(self, settings: Settings) -> None:
        self.storage = storage_from_string(storage_uri(settings.redis_url))
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.api_limit: RateLimitItem = RateLimitItemPerMinute(settings.api_rate_per_minute)

    def api_retry_after(self, key_id: int) -> int | None:
        """Count one API call of a key; seconds to wait when it is over its rate, else None."""
        if self.limiter.hit(self.api_limit, "api-key", str(key_id)):
            return None
        return self._wait(self.api_limit, "api-key", str(key_id))

    def _wait(self, item: RateLimitItem, *scope: str) -> int:
        reset_at = self.limiter.get_window_stats(item, *scope).reset_time
        return max(1, math.ceil(reset_at - time.time()))
