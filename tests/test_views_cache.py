"""The views' query cache: one query per arguments and time bucket, shared through Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from sqlalchemy import select, update

from app import create_app
from db import cache as query_cache
from db import views
from db.bulk import copy_rows
from db.schema import candles, candles_live
from ingest.fake.server import FakeExchange
from tests.conftest import make_settings
from tests.test_throttle import redis_url  # noqa: F401  (the private Redis server fixture)
from tests.views_support import backfill, counting

SYMBOL = "BTCUSDT"
HOUR = 3600


@pytest.fixture
def fake():
    with FakeExchange("simulate", symbols=[SYMBOL]) as fake:
        yield fake


def engine_of(app):
    return app.extensions["p2pdash"].engine


def fresh_bucket(seconds: int = views.LIVE_SECONDS, room: float = 2.5) -> None:
    """Wait until at least `room` seconds are left in the current bucket."""
    left = seconds - time.time() % seconds
    if left < room:
        time.sleep(left + 0.05)


def next_bucket(seconds: int = views.LIVE_SECONDS) -> None:
    """Wait until the next bucket has begun."""
    time.sleep(seconds - time.time() % seconds + 0.05)


def call_candles(app, span: int = HOUR) -> dict:
    with app.app_context():
        return views.candles(SYMBOL, "1m", span)


def test_two_apps_sharing_redis_run_a_query_once_per_bucket(database_url, tmp_path, fake,
                                                            redis_url):  # noqa: F811
    settings = make_settings(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url,
                             SPOT_SYMBOLS=SYMBOL)
    first, second = create_app(settings), create_app(settings)
    assert backfill(engine_of(first), fake, SYMBOL, hours=2)["inserted"] >= 119
    fresh_bucket()
    with counting(engine_of(first)) as by_first, counting(engine_of(second)) as by_second:
        rows = call_candles(first)
        again = call_candles(second)
    assert len(rows["t"]) >= 59 and again == rows
    assert by_first.count > 0, "the first app asked the database"
    assert by_second.count == 0, "the second app was served from the shared Redis"
    keys = redis.Redis.from_url(redis_url).keys("*" + query_cache.PREFIX + ":db.views.candles*")
    assert keys, "the answer lives in Redis, not in a process"

    next_bucket()
    with counting(engine_of(second)) as in_new_bucket:
        call_candles(second)
    assert in_new_bucket.count > 0, "a new time bucket asks the database again"
    for app in (first, second):
        engine_of(app).dispose()


def test_without_redis_the_process_cache_serves_repeats(app):
    fresh_bucket()
    with counting(engine_of(app)) as queries:
        call_candles(app)
        first_count = queries.count
        for _ in range(5):
            call_candles(app)
    assert first_count > 0 and queries.count == first_count


def test_a_burst_of_callers_on_a_cold_bucket_runs_one_query(app):
    fresh_bucket()
    with counting(engine_of(app)) as alone:
        call_candles(app)
    with app.app_context():
        query_cache.clear()  # no previous bucket's answer to serve meanwhile
    next_bucket()
    fresh_bucket()
    results = []
    with counting(engine_of(app)) as burst:
        threads = [threading.Thread(target=lambda: results.append(call_candles(app)))
                   for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 20 and all(result == results[0] for result in results)
    assert burst.count == alone.count, "twenty screens, one query"


def held_lock(app, bucket: int) -> str:
    """Take the lock of the candles query of `bucket`, as a caller computing it would."""
    with app.app_context():
        key = query_cache.cache_key("db.views.candles", views.LIVE_SECONDS, bucket,
                                    (SYMBOL, "1m", HOUR), {})
        assert query_cache.cache.add(key + ":lock", 1, timeout=30)
    return key + ":lock"


def test_while_one_caller_refreshes_the_others_get_the_previous_bucket(app, fake,
                                                                       monkeypatch):
    backfill(engine_of(app), fake, SYMBOL, hours=2)
    fresh_bucket()
    previous = call_candles(app)
    next_bucket()
    fresh_bucket()
    held_lock(app, query_cache.bucket_of(views.LIVE_SECONDS))
    monkeypatch.setattr(query_cache, "_await", lambda key: pytest.fail("waited"))
    with counting(engine_of(app)) as queries:
        served = call_candles(app)
    assert served == previous and queries.count == 0, "the previous answer, no query, no wait"


def test_with_no_previous_answer_a_caller_waits_then_asks_itself(app, fake, monkeypatch):
    backfill(engine_of(app), fake, SYMBOL, hours=2)
    monkeypatch.setattr(query_cache, "WAIT_SECONDS", 0.2)
    fresh_bucket()
    held_lock(app, query_cache.bucket_of(views.LIVE_SECONDS))
    with counting(engine_of(app)) as queries:
        rows = call_candles(app)
    assert len(rows["t"]) >= 59 and queries.count > 0, "the holder never answered: it asked"


def test_a_caller_that_missed_while_another_finished_serves_its_answer(app, fake, monkeypatch):
    """The race of a burst: our miss, then another caller stores and lets go, then our lock."""
    backfill(engine_of(app), fake, SYMBOL, hours=2)
    fresh_bucket()
    with app.app_context():
        bucket = query_cache.bucket_of(views.LIVE_SECONDS)
        answer = views.candles.uncached(
            engine_of(app), SYMBOL, "1m", HOUR,
            now=query_cache.bucket_end(views.LIVE_SECONDS, bucket))
        key = query_cache.cache_key("db.views.candles", views.LIVE_SECONDS, bucket,
                                    (SYMBOL, "1m", HOUR), {})
    add = query_cache.cache.add

    def finished_just_before(lock, *args, **kwargs):
        query_cache.cache.set(key, (answer,), timeout=30)  # the other caller's answer
        return add(lock, *args, **kwargs)

    monkeypatch.setattr(query_cache.cache, "add", finished_just_before)
    with counting(engine_of(app)) as queries:
        served = call_candles(app)
    assert served == answer and queries.count == 0, "its answer, not a second query"


def test_the_cache_key_holds_function_arguments_bucket_and_database(app):
    with app.app_context():
        key = query_cache.cache_key("db.views.candles", 5, 123, (SYMBOL, "1m", HOUR), {})
        other = query_cache.cache_key("db.views.candles", 5, 123, (SYMBOL, "5m", HOUR), {})
    assert key.startswith(f"{query_cache.PREFIX}:db.views.candles:5:123:") and key != other
    assert "password" not in key and query_cache.bucket_of(5, at=12.0) == 2


def test_settled_keeps_the_buckets_that_ended_settling_ago():
    wall = datetime(2026, 3, 2, 12, 0, 40, tzinfo=UTC)
    minute = 60_000
    noon = views.epoch_ms(wall.replace(second=0))
    cols = {"t": [noon - 3 * minute, noon - 2 * minute, noon - minute, noon],
            "close": [1.0, 2.0, 3.0, 4.0]}
    # 11:59 ended 40 s ago (settled), 12:00 has not ended yet
    assert views.settled(cols, minute, wall) == (
        {"t": cols["t"][:3], "close": [1.0, 2.0, 3.0]}, noon)
    assert views.settled(cols, minute, wall - timedelta(seconds=20)) == (
        {"t": cols["t"][:2], "close": [1.0, 2.0]}, noon - minute)
    # No rows for an hour: the hour is settled all the same, the recent part starts at noon
    old = {"t": [noon - 60 * minute], "close": [9.0]}
    assert views.settled(old, minute, wall) == (old, noon)
    # Buckets of 3 days start from their origin, not from the epoch
    day = 24 * 60 * minute
    assert views.settled({"t": []}, 3 * day, wall, origin_ms=day)[1] % (3 * day) == day


def stored_close(app, minutes_ago: int) -> tuple[int, Decimal]:
    """The open time (epoch ms) and close of the stored 1m candle `minutes_ago` back."""
    with engine_of(app).connect() as connection:
        newest = connection.scalar(select(candles.c.open_time).order_by(
            candles.c.open_time.desc()).limit(1))
        moment = newest - timedelta(minutes=minutes_ago)
        close = connection.scalar(select(candles.c.close).where(candles.c.open_time == moment))
    return views.epoch_ms(moment), close


def test_a_chart_rereads_only_its_recent_buckets_on_a_live_bucket(app, fake):
    """The settled part of the chart is read once a minute, the recent part every bucket."""
    backfill(engine_of(app), fake, SYMBOL, hours=2)
    # A span whose settled part has 15 s left in its (staggered) bucket: the test stays in it
    span = next(span for span in range(HOUR, 2 * HOUR, 60)
                if views.SETTLED_SECONDS - (time.time() + query_cache.stagger(
                    "db.views.settled_candles", views.SETTLED_SECONDS, (SYMBOL, "1m", span),
                    {})) % views.SETTLED_SECONDS > 15)
    first = call_candles(app, span)
    old_time, old_close = stored_close(app, minutes_ago=30)
    assert first["close"][first["t"].index(old_time)] == float(old_close)
    current = datetime.now(UTC).replace(second=0, microsecond=0)
    with engine_of(app).begin() as connection:
        connection.execute(update(candles).where(candles.c.open_time == views.from_ms(
            old_time)).values(close=Decimal("1.5")))  # a settled candle changes
        live = {column.name: value for column, value in zip(
            candles.c, connection.execute(select(candles).order_by(
                candles.c.open_time.desc()).limit(1)).one(), strict=True)}
        copy_rows(connection, candles_live, [{
            **live, "open_time": current, "close_time": current + timedelta(seconds=59.999),
            "close": Decimal("2.5"), "is_closed": False}])
    next_bucket()
    again = call_candles(app, span)
    assert again["t"][-1] == views.epoch_ms(current) and again["close"][-1] == 2.5
    assert again["close"][again["t"].index(old_time)] == float(old_close), "settled: kept"
    with app.app_context():
        query_cache.clear()
    fresh = call_candles(app, span)
    assert fresh["close"][fresh["t"].index(old_time)] == 1.5, "read again once a minute"
    now = query_cache.bucket_end(views.LIVE_SECONDS, query_cache.bucket_of(views.LIVE_SECONDS))
    whole = views._candle_columns(engine_of(app), SYMBOL, "1m",
                                  start=now - timedelta(seconds=span), end=now)
    assert fresh == whole and fresh["t"] == again["t"], "the same as one read of the range"


def test_staggered_answers_expire_each_at_its_own_second(app):
    """The settled parts of many charts are not all read again in one instant."""
    shifts = {query_cache.stagger("db.views.settled_candles", 60, (f"SYM{n}", "1m", HOUR), {})
              for n in range(100)}
    assert len({int(shift) for shift in shifts}) > 40 and all(0 <= s < 60 for s in shifts)
    assert query_cache.stagger("f", 60, ("a",), {}) == query_cache.stagger("f", 60, ("a",), {})
    ends = []

    @query_cache.memoized(60, staggered=True)
    def answer(_engine, symbol, *, now):
        ends.append((symbol, now))
        return symbol

    with app.app_context():
        assert [answer("A"), answer("B"), answer("A")] == ["A", "B", "A"]
    assert [symbol for symbol, _ in ends] == ["A", "B"], "A was answered from the cache"
    for symbol, end in ends:
        shift = query_cache.stagger(f"{__name__}.{answer.__qualname__}", 60, (symbol,), {})
        left = end.timestamp() - time.time()
        phase = (end.timestamp() + shift) % 60  # the shifted bucket ends on a whole minute
        assert 0 < left <= 60 and min(phase, 60 - phase) < 1e-3


ASKED: list[int] = []


@query_cache.memoized(60, in_process=True)
def kept_here(engine, x: int, *, now: datetime) -> dict:
    ASKED.append(x)
    return {"x": x, "asked": len(ASKED)}


def test_in_process_answers_skip_the_cache_until_their_bucket_ends(app, monkeypatch):
    """A settled part is unpickled once per process and bucket, not on every live tick."""
    ASKED.clear()
    clock = [1_800_000_000.0]  # the start of a bucket of 60 s
    monkeypatch.setattr(query_cache.time, "time", lambda: clock[0])
    gets = []
    get = query_cache.cache.get
    monkeypatch.setattr(query_cache.cache, "get", lambda key: gets.append(key) or get(key))
    with app.app_context():
        first = kept_here(1)
        looked = len(gets)
        clock[0] += 59
        assert kept_here(1) is first and len(gets) == looked, "served without the cache"
        clock[0] += 1
        assert kept_here(1) == {"x": 1, "asked": 2}, "a new bucket asks again"
        query_cache.clear()
        assert kept_here(1)["asked"] == 3, "clear() forgets the process's answers too"


def test_the_previous_buckets_answer_is_not_kept_for_this_bucket(app, monkeypatch):
    """While another caller computes, the previous answer is served, but only this once."""
    ASKED.clear()
    clock = [1_800_000_000.0]
    monkeypatch.setattr(query_cache.time, "time", lambda: clock[0])
    with app.app_context():
        bucket = query_cache.bucket_of(60)
        key = query_cache.cache_key(f"{__name__}.kept_here", 60, bucket, (1,), {})
        previous = query_cache.cache_key(f"{__name__}.kept_here", 60, bucket - 1, (1,), {})
        query_cache.cache.set(previous, ({"x": 1, "asked": "previous"},), timeout=60)
        assert query_cache.cache.add(key + ":lock", 1, timeout=30)  # another caller computes
        assert kept_here(1)["asked"] == "previous"
        query_cache.cache.set(key, ({"x": 1, "asked": "this bucket's"},), timeout=60)
        assert kept_here(1)["asked"] == "this bucket's"
    assert ASKED == []


def test_the_process_keeps_a_bounded_number_of_answers(app, monkeypatch):
    """Expired answers go first, then the oldest: a wall of many views cannot grow a worker."""
    ASKED.clear()
    clock = [1_800_000_000.0]
    monkeypatch.setattr(query_cache.time, "time", lambda: clock[0])
    monkeypatch.setattr(query_cache, "LOCAL_ENTRIES", 2)
    with app.app_context():
        query_cache.clear()
        kept_here(1), kept_here(2), kept_here(3)
        assert len(query_cache._local) == 2 and kept_here(3)["asked"] == 3
        query_cache.cache.clear()  # only the process's answers are left
        assert kept_here(2)["asked"] == 2, "kept"
        assert kept_here(1)["asked"] == 4, "the oldest was dropped"
