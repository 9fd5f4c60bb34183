"""Pollers under trouble: retried 429/5xx/timeouts, named refusals, one malformed advert."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.config import P2PMarket
from db.p2p import summary
from db.schema import ingest_errors, p2p_offers, p2p_snapshots, runs
from ingest.p2p_poll import poll_market
from tests.p2p.conftest import p2p_settings

KZT = P2PMarket("binance", "USDT", "KZT")


def run_row(engine, run_id):
    with engine.connect() as connection:
        return connection.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def test_429_is_retried_then_the_poll_succeeds(settings, engine, fake):
    fake.inject("binance", "429", times=2)
    result = poll_market(settings, engine, KZT)
    assert result.status == "ok"
    assert len(fake.requests) == 4  # two 429s, the ask page, the bid page
    assert run_row(engine, result.run_id)["inserted"] == 10


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_a_passing_5xx_is_retried(settings, engine, fake, status):
    fake.inject("okx", status)
    assert poll_market(settings, engine, P2PMarket("okx", "USDT", "CNY")).status == "ok"


def test_5xx_until_the_retries_run_out_fails_the_run_and_stores_nothing(settings, engine, fake):
    fake.inject("binance", "503", times=3)
    result = poll_market(settings, engine, KZT)
    assert result.status == "failed"
    assert run_row(engine, result.run_id)["error"] == (
        "ExchangeUnavailable: binance P2P: HTTP 503 after 3 attempts")
    assert count(engine, p2p_snapshots) == 0 and count(engine, p2p_offers) == 0


def test_a_slow_answer_is_retried(settings, engine, fake):
    fake.inject("bybit", "timeout")
    result = poll_market(settings, engine, P2PMarket("bybit", "USDT", "EUR"))
    assert result.status == "ok"
    assert run_row(engine, result.run_id)["inserted"] == 3


def test_no_answer_at_all_fails_the_run_naming_the_timeout(tmp_path, database_url, fake_url,
                                                           fake, engine):
    settings = p2p_settings(tmp_path, database_url, fake_url, P2P_RETRIES="1")
    fake.inject("bybit", "timeout", times=2)
    result = poll_market(settings, engine, P2PMarket("bybit", "USDT", "EUR"))
    assert result.status == "failed"
    assert run_row(engine, result.run_id)["error"] == (
        "ExchangeUnavailable: bybit P2P: no answer (ReadTimeout) after 2 attempts")


@pytest.mark.parametrize("case", [
    ("binance", "captcha", "CaptchaRequired: binance P2P: HTTP 405 answered with a captcha"),
    ("okx", "captcha", "CaptchaRequired: okx P2P: HTTP 403 answered with a captcha"),
    ("bybit", "403", "ExchangeBlocked: bybit P2P: HTTP 403 Forbidden"),
    ("binance", "451", "GeoBlocked: binance P2P: HTTP 451 Unavailable For Legal Reasons"),
])
def test_refusals_fail_the_run_at_once_with_a_clear_cause(settings, engine, fake, case):
    exchange, fault, error = case
    fake.inject(exchange, fault)
    market = {"binance": KZT, "okx": P2PMarket("okx", "USDT", "CNY"),
              "bybit": P2PMarket("bybit", "USDT", "EUR")}[exchange]
    result = poll_market(settings, engine, market)
    stored = run_row(engine, result.run_id)
    assert (result.status, stored["status"]) == ("failed", "failed")
    assert stored["error"].startswith(error)
    assert len(fake.requests) == 1  # refusals are not retried
    assert count(engine, p2p_offers) == 0


def test_one_malformed_advert_is_rejected_alone_and_counted(settings, engine, fake):
    fake.inject("bybit", "malformed", after=1)  # the ask side (empty) comes first
    result = poll_market(settings, engine, P2PMarket("bybit", "USDT", "EUR"))
    stored = run_row(engine, result.run_id)
    assert stored["status"] == "partial"
    assert (stored["received"], stored["inserted"], stored["rejected"]) == (3, 2, 1)
    with engine.connect() as connection:
        error = connection.execute(select(ingest_errors)).mappings().one()
        offer_ids = set(connection.scalars(select(p2p_offers.c.offer_id)))
    assert error["run_id"] == result.run_id
    assert error["message"] == "bybit:USDT/EUR bid advert #2 rejected: price: 'abc' is not a number"
    assert '"id": "1899659847717838848"' in error["payload"]
    assert offer_ids == {"1899658238346616832", "1898988222063644672"}


def test_a_book_cut_short_is_kept_incomplete_and_left_out_of_metrics(tmp_path, database_url,
                                                                     fake_url, fake, engine):
    settings = p2p_settings(tmp_path, database_url, fake_url, P2P_PAGE_ROWS="4")
    assert poll_market(settings, engine, KZT).status == "ok"
    fake.inject("binance", "503", times=3, after=1)  # page 1 arrives, page 2 never does
    result = poll_market(settings, engine, KZT)
    assert result.status == "failed"
    with engine.connect() as connection:
        latest = connection.execute(select(p2p_snapshots).where(
            p2p_snapshots.c.run_id == result.run_id)).mappings().one()
    assert (latest["side"], latest["offers"], latest["complete"]) == ("ask", 4, False)
    first = summary(engine, "binance", "USDT", "KZT")
    assert first["ask_offers"] == 10 and first["captured_at"] < latest["captured_at"]
