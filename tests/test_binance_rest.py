"""REST backfill against the fake Binance: waits, retries, stops on a ban, never duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from db.intervals import from_ms
from db.schema import candles, runs
from ingest.binance_rest import (
    BackfillError,
    BinanceBanned,
    BinanceRequestError,
    BinanceRest,
    BinanceUnavailable,
    KlinesRequest,
    RestPolicy,
    backfill_klines,
)
from ingest.fake.server import FakeExchange
from tests.spot_support import BINANCE

RECORDED_START = datetime(2020, 5, 6, 4, 42, tzinfo=UTC)  # klines_rest_1.json: 60 minutes
RECORDED_END = RECORDED_START + timedelta(hours=1)
QUICK = RestPolicy(timeout=2.0, retries=3, backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
def recorded():
    """Binance answering with the recorded BTCUSDT 1m klines."""
    with FakeExchange("replay", klines={("BTCUSDT", "1m"): BINANCE / "klines_rest_1.json"},
                      exchange_info=BINANCE / "exchangeinfo_rest_1_excerpt.json") as fake:
        yield fake


@pytest.fixture
def simulated():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        yield fake


def stored(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(candles))


def backfill(engine, fake, policy=QUICK, **kw):
    rest = BinanceRest(fake.rest_url, policy, **kw)
    request = KlinesRequest("BTCUSDT", "1m", RECORDED_START, RECORDED_END)
    return backfill_klines(engine, rest, request)


def test_the_same_backfill_twice_inserts_nothing_the_second_time(engine, recorded):
    first = backfill(engine, recorded)
    second = backfill(engine, recorded)
    assert first == {"symbol": "BTCUSDT", "interval": "1m", "inserted": 60,
                     "duplicates_skipped": 0, "updated": 0,
                     "from": "2020-05-06T04:42:00+00:00", "to": "2020-05-06T05:42:00+00:00"}
    assert (second["inserted"], second["duplicates_skipped"]) == (0, 60)
    assert stored(engine) == 60
    with engine.connect() as connection:
        kinds = connection.execute(select(runs.c.kind, runs.c.status, runs.c.inserted)
                                   .order_by(runs.c.id)).all()
    assert kinds == [("klines_backfill", "ok", 60), ("klines_backfill", "ok", 0)]


def test_429_waits_retry_after_and_completes(engine, recorded):
    recorded.binance.fail_next(429, retry_after=1)
    assert backfill(engine, recorded)["inserted"] == 60
    first, retry = recorded.binance.requests[:2]
    assert (first.status, retry.status) == (429, 200)
    assert retry.at - first.at >= 1.0


def test_418_stops_with_a_clear_message_and_a_failed_run(engine, recorded):
    recorded.binance.fail_next(418, retry_after=300)
    with pytest.raises(BinanceBanned, match=r"418 .*banned \(Retry-After 300 s\); stopped"):
        backfill(engine, recorded)
    assert len(recorded.binance.requests) == 1 and stored(engine) == 0
    with engine.connect() as connection:
        status, error = connection.execute(select(runs.c.status, runs.c.error)).one()
    assert status == "failed" and error.startswith("BinanceBanned: Binance answered 418")


def test_server_errors_and_timeouts_are_retried(engine, recorded):
    recorded.binance.fail_next(503, times=2)
    recorded.binance.delay_next(1.0)
    policy = RestPolicy(timeout=0.3, retries=4, backoff_base=0.01, backoff_max=0.05)
    assert backfill(engine, recorded, policy)["inserted"] == 60
    assert [r.status for r in recorded.binance.requests][:2] == [503, 503]


def test_a_server_that_keeps_failing_is_given_up_on(engine, recorded):
    recorded.binance.fail_next(500, times=10)
    with pytest.raises(BinanceUnavailable, match="after 4 attempts"):
        backfill(engine, recorded)


def test_a_refused_request_says_why(engine, recorded):
    rest = BinanceRest(recorded.rest_url, QUICK)
    with pytest.raises(BinanceRequestError, match=r"Invalid symbol\. \(code -1121\)"):
        backfill_klines(engine, rest, KlinesRequest("NOSUCHCOIN", "1m", RECORDED_START,
                                                    RECORDED_END))


def test_the_weight_budget_pauses_before_the_limit_instead_of_hitting_429(engine, simulated):
    waits = []

    def sleep(seconds: float) -> None:  # the next minute, without waiting for it
        waits.append(seconds)
        simulated.binance.set_used_weight(0)

    simulated.binance.set_used_weight(5996)
    rest = BinanceRest(simulated.rest_url, QUICK, sleep=sleep, clock=simulated.clock)
    now = from_ms(simulated.clock.ms() // 60_000 * 60_000)
    request = KlinesRequest("BTCUSDT", "1m", now - timedelta(minutes=2500), now)
    report = backfill_klines(engine, rest, request)
    assert report["inserted"] == 2500
    assert [r.status for r in simulated.binance.requests] == [200, 200, 200]
    assert len(waits) == 1 and 0 < waits[0] <= 60.5


def test_progress_reaches_the_total_and_only_closed_candles_are_stored(engine, simulated):
    seen = []
    now = simulated.clock.ms()
    rest = BinanceRest(simulated.rest_url, QUICK, clock=simulated.clock)
    start = from_ms(now // 60_000 * 60_000) - timedelta(minutes=30)
    request = KlinesRequest("BTCUSDT", "1m", start, start + timedelta(hours=1))
    report = backfill_klines(engine, rest, request, progress=lambda *p: seen.append(p))
    assert seen[-1] == (60, 60) and all(done <= total for done, total in seen)
    assert report["inserted"] == stored(engine) in (30, 31)  # a minute may turn meanwhile
    with engine.connect() as connection:
        assert connection.scalar(select(func.bool_and(candles.c.is_closed)))


@pytest.mark.parametrize(("request_", "message"), [
    (KlinesRequest("BTC-USDT", "1m", RECORDED_START, RECORDED_END), "symbol: "),
    (KlinesRequest("BTCUSDT", "1M", RECORDED_START, RECORDED_END), "interval: "),
    (KlinesRequest("BTCUSDT", "1m", RECORDED_END, RECORDED_START), "end: "),
])
def test_a_request_that_cannot_run_names_the_parameter(request_, message):
    with pytest.raises(BackfillError, match=f"^{message}"):
        request_.validate()
