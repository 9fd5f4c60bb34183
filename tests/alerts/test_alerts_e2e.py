"""End to end: the real poller reads the fake Binance P2P (captured payloads), the leader's
evaluator hears the snapshot, and the webhook receiver gets exactly one firing and one
resolved; a process killed between the state change and the delivery still delivers once."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from app.alerts import service
from ingest.alerts import AlertService
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import CapturedBook
from ingest.p2p_poll import poll_market
from tests.alerts.conftest import actor_for
from tests.conftest import TEST_SECRET, make_settings
from tests.fixtures_path import shared_fixtures

MARKET = "binance:USDT/KZT"
BOOK = ("binance", "USDT", "KZT", "ask")


@pytest.fixture
def fake():
    return FakeP2P(captures_dir=shared_fixtures() / "p2p")


@pytest.fixture
def fake_url(fake):
    with serving(fake) as url:
        yield url


@pytest.fixture
def settings(database_url, tmp_path, fake_url):
    return make_settings(tmp_path, DATABASE_URL=database_url, P2P_MARKETS=MARKET,
                         SPOT_SYMBOLS="", BINANCE_P2P_URL=fake_url, P2P_PACING_MS="0",
                         ALERTS_GROUP_WAIT_SECONDS="0", ALERTS_EVAL_SECONDS="0.5")


def shifted(fake: FakeP2P, by: str) -> CapturedBook:
    """The captured book with every price moved by `by` (the exchange's own payload)."""
    book = copy.deepcopy(fake.captures[BOOK])
    for advert in book.adverts:
        advert["adv"]["price"] = str(Decimal(advert["adv"]["price"]) + Decimal(by))
    return book


def best_ask(book: CapturedBook) -> Decimal:
    return min(Decimal(advert["adv"]["price"]) for advert in book.adverts)


def wait(predicate, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def rule_on(app, settings, receiver, threshold: Decimal) -> int:
    engine = app.extensions["p2pdash"].engine
    trader = actor_for(app, "trader")
    point = service.create_contact(engine, settings, trader, {
        "name": "desk", "kind": "webhook", "url": receiver.url})
    return service.create_rule(engine, settings, trader, {
        "name": "KZT ask dips", "metric": "p2p.best_ask", "market": MARKET,
        "condition": "<", "threshold": format(threshold, "f"), "notify": [point["id"]]}).rule.id


def test_a_book_crossing_a_threshold_fires_once_and_resolves_once(app, settings, fake,
                                                                  receiver):
    engine = app.extensions["p2pdash"].engine
    original = fake.captures[BOOK]
    threshold = best_ask(original) - Decimal("5")
    rule_on(app, settings, receiver, threshold)
    alerts = AlertService(settings, engine).start()
    try:
        market = settings.p2p_markets[0]
        assert poll_market(settings, engine, market).status == "ok"
        low = fake.captures[BOOK] = shifted(fake, "-10")
        assert poll_market(settings, engine, market).status == "ok"
        receiver.wait_for(1)
        fake.captures[BOOK] = original
        assert poll_market(settings, engine, market).status == "ok"
        receiver.wait_for(2)
        time.sleep(1.5)  # a few timer passes more: still nothing new
    finally:
        alerts.stop()
    assert len(receiver.requests) == 2, _debug(receiver)
    (first, firing), (second, resolved) = receiver.alerts()
    assert (first, second) == ("firing", "resolved")
    assert Decimal(firing["annotations"]["value"]) == best_ask(low)
    assert firing["annotations"]["value"] == format(best_ask(low), "f")
    assert Decimal(resolved["annotations"]["value"]) == best_ask(original)
    assert len(receiver.requests) == 2


def _ingest(settings, tmp_path: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "SECRET_KEY": TEST_SECRET,
           "P2PDASH_ENV": "test", "P2PDASH_DATA_DIR": str(tmp_path / name),
           "P2P_MARKETS": MARKET, "SPOT_SYMBOLS": "", "P2P_POLL_SECONDS": "3600",
           "P2P_JITTER_SECONDS": "0", "P2P_PACING_MS": "0", "INGEST_LEADER_RETRY_SECONDS": "0.5",
           "BINANCE_P2P_URL": settings.endpoints["BINANCE_P2P_URL"],
           "ALERTS_GROUP_WAIT_SECONDS": "4", "ALERTS_EVAL_SECONDS": "0.5"}
    return subprocess.Popen([sys.executable, "-m", "app", "ingest"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _queued(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT status FROM notification_outbox WHERE kind = 'firing'")))


@pytest.mark.slow
def test_killed_between_the_state_change_and_the_delivery_it_still_delivers_once(
        app, settings, fake, receiver, tmp_path):
    engine = app.extensions["p2pdash"].engine
    rule_id = rule_on(app, settings, receiver, best_ask(fake.captures[BOOK]) + Decimal("5"))
    first = _ingest(settings, tmp_path, "first")
    try:
        wait(lambda: _queued(engine) == ["pending"], 30)
        os.killpg(first.pid, signal.SIGKILL)  # the firing is stored, not yet sent
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert receiver.requests == []
    second = _ingest(settings, tmp_path, "second")
    try:
        receiver.wait_for(1, timeout=30)
        time.sleep(3)  # time for a duplicate to show up, if one were coming
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    assert [status for status, _ in receiver.alerts()] == ["firing"]
    assert _queued(engine) == ["sent"]
    with engine.connect() as connection:
        transitions = connection.scalar(text(
            "SELECT count(*) FROM alert_events WHERE rule_id = :r"), {"r": rule_id})
    assert transitions == 1


def _debug(receiver):
    return [(s, a["annotations"]["value"], a["annotations"]["state"]) for s, a in receiver.alerts()]
