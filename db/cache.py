"""Memoize query functions in the app's flask-caching cache, keyed by arguments and time bucket.

A page refreshing every few seconds on a hundred screens asks the same questions over and
over; `memoized(seconds)` answers each (function, arguments, bucket of `seconds`) once per
database, whatever the number of screens or processes (the cache is Redis when REDIS_URL is
set). The wrapped function gets the engine of the current app first and, if it declares a
`now` parameter, the end of the current bucket, so "the last 24 hours" means the same rows
for every caller within a bucket.

The app factory hands this module its cache and the way to the current app's engine once,
with `bind(store, engine)`, so db/ imports nothing from app/.

`in_process` answers (the settled parts of the charts, read once a minute and served on
every live tick) are also kept in each process for the rest of their bucket, as they came
from the cache: unpickling a day of columns from Redis on every tick was the largest single
cost of a worker (py-spy). Such answers are shared by every caller: they must not change them.

A burst of misses on a fresh bucket runs the query once: the first caller takes a short lock
in the cache (an atomic add). The others are served the previous bucket's answer while it
runs (one bucket older, so a live screen never stalls on a slow query); with no previous
answer they wait for the first caller's, up to WAIT_SECONDS, before querying themselves.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PREFIX = "p2pdash:q"
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.02
LOCK_SECONDS = 30
# In-process answers kept at most, the oldest dropped first: 40 live views hold about 120;
# a day of 1m candle columns is ~0.4 MB, so a worker holds at most ~50 MB of them.
LOCAL_ENTRIES = 128

P = ParamSpec("P")
R = TypeVar("R")
# Called with (query name, hit) on every lookup; the app sets it to count them (app/metrics.py).
on_lookup: Callable[[str, bool], None] | None = None


class _Unbound:
    """What the cache is before the app binds one: every use says so."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("db.cache is not bound: the app factory calls db.cache.bind()")


def _no_engine() -> Any:
    raise RuntimeError("db.cache is not bound: the app factory calls db.cache.bind()")


cache: Any = _Unbound()  # the flask-caching Cache (get, set, add, delete)
current_engine: Callable[[], Any] = _no_engine
_local: dict[str, tuple[float, Any]] = {}  # key: (when its bucket ends, answer)
_local_lock = threading.Lock()


def bind(store: Any, engine: Callable[[], Any]) -> None:
    """Use `store` (flask-caching's Cache, Redis or in-process) and `engine()` (the engine
    of the app handling the call) for every memoized query."""
    global cache, current_engine
    cache, current_engine = store, engine
    with _local_lock:
        _local.clear()


def clear() -> None:
    """Forget every answer, in the cache and in this process."""
    cache.clear()
    with _local_lock:
        _local.clear()


def _local_get(key: str) -> tuple[Any, ...] | None:
    entry = _local.get(key)
    return (entry[1],) if entry is not None and entry[0] > time.time() else None


def _local_put(key: str, until: float, value: Any) -> None:
    with _local_lock:
        _local[key] = (until, value)
        if len(_local) > LOCAL_ENTRIES:
            now = time.time()
            for old in [old for old, (ends, _) in _local.items() if ends <= now]:
                del _local[old]
            while len(_local) > LOCAL_ENTRIES:
                del _local[next(iter(_local))]


def bucket_of(seconds: int, at: float | None = None) -> int:
    """The number of the time bucket of `seconds` holding `at` (default: now)."""
    return int((time.time() if at is None else at) // seconds)


def bucket_end(seconds: int, bucket: int) -> datetime:
    """The instant a bucket ends (exclusive), as an aware UTC datetime."""
    return datetime.fromtimestamp((bucket + 1) * seconds, UTC)


def database_identity() -> str:
    """Which database the current app reads (without the password), for cache keys."""
    url = current_engine().url
    return f"{url.host}:{url.port}/{url.database}"


def cache_key(name: str, seconds: int, bucket: int, args: tuple, kwargs: dict) -> str:
    """A cache key for one call: function, database, bucket and a digest of the arguments."""
    call = repr((args, sorted(kwargs.items())))
    digest = hashlib.sha1(f"{database_identity()}|{call}".encode()).hexdigest()
    return f"{PREFIX}:{name}:{seconds}:{bucket}:{digest}"


def _get(key: str) -> tuple[Any, ...] | None:
    """The boxed value under `key`, or None; a cache that is down counts as a miss."""
    try:
        return cache.get(key)
    except RedisError as error:
        log.warning("cache unreachable: %s", error, extra={"key": key})
        return None


def _try(action: Callable[[], Any], default: Any = None) -> Any:
    try:
        return action()
    except RedisError as error:
        log.warning("cache unreachable: %s", error)
        return default


def _await(key: str) -> tuple[Any, ...] | None:
    """Wait for another caller's answer under `key`; None when it does not come in time."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        boxed = _get(key)
        if boxed is not None:
            return boxed
    return None


def _store(key: str, seconds: int, run: Callable[[], Any]) -> Any:
    value = run()
    # Boxed, so a function may return None and still be cached.
    _try(lambda: cache.set(key, (value,), timeout=max(2 * seconds, 10)))
    return value


def _compute(key: str, previous: str, seconds: int, run: Callable[[], Any]
             ) -> tuple[Any, bool]:
    """The answer under `key`, and whether it is that bucket's own (not the previous one's,
    served while another caller computes it)."""
    lock = key + ":lock"
    if _try(lambda: cache.add(lock, 1, timeout=LOCK_SECONDS), default=True):
        try:
            # A caller that missed with us may have stored its answer and let go of the lock
            # before our add: serve that answer rather than asking the database again.
            boxed = _get(key)
            return (boxed[0] if boxed is not None else _store(key, seconds, run)), True
        finally:
            _try(lambda: cache.delete(lock))
    boxed = _get(previous)
    if boxed is not None:
        return boxed[0], False
    boxed = _await(key)
    if boxed is not None:
        return boxed[0], True
    log.warning("cache: waited in vain for another caller's answer", extra={"key": key})
    return _store(key, seconds, run), True


def stagger(name: str, seconds: int, args: tuple, kwargs: dict) -> float:
    """How far (s) the buckets of one call of a staggered function are shifted: the same in
    every process, spread over the calls."""
    call = repr((name, args, sorted(kwargs.items())))
    return int(hashlib.sha1(call.encode()).hexdigest()[:8], 16) % (seconds * 1000) / 1000


def memoized(seconds: int, *, staggered: bool = False, in_process: bool = False
             ) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Cache a query function `(engine, *args, [now], **kwargs)` per arguments and bucket.

    `staggered` shifts each call's buckets by its own `stagger`, so that the answers of a
    slow function with many arguments do not all expire at once (a minute's worth of
    recomputing in its first seconds stalled every screen). `in_process` keeps each answer
    in this process too, until its bucket ends (see the module)."""

    def decorate(query: Callable[..., R]) -> Callable[..., R]:
        name = f"{query.__module__}.{query.__qualname__}"
        wants_now = "now" in inspect.signature(query).parameters

        @wraps(query)
        def cached(*args: Any, **kwargs: Any) -> R:
            shift = stagger(name, seconds, args, kwargs) if staggered else 0.0
            bucket = bucket_of(seconds, time.time() + shift)
            key = cache_key(name, seconds, bucket, args, kwargs)
            local = _local_get(key) if in_process else None
            boxed = local or _get(key)
            if on_lookup is not None:
                on_lookup(name, boxed is not None)
            own = True
            if boxed is None:
                extra = ({"now": bucket_end(seconds, bucket) - timedelta(seconds=shift)}
                         if wants_now else {})
                previous = cache_key(name, seconds, bucket - 1, args, kwargs)
                value, own = _compute(key, previous, seconds,
                                      lambda: query(current_engine(), *args, **kwargs, **extra))
                boxed = (value,)
            if in_process and own and local is None:  # never the previous bucket's answer
                _local_put(key, (bucket + 1) * seconds - shift, boxed[0])
            return boxed[0]

        cached.uncached = query  # type: ignore[attr-defined]
        return cached

    return decorate
