"""Scheduling hook: one APScheduler interval job per configured market, ready to add."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from app.config import P2PMarket
from ingest.p2p_jobs import p2p_jobs
from ingest.p2p_poll import poll_market
from tests.p2p.conftest import p2p_settings


def test_one_job_per_market_with_interval_jitter_and_no_overlap(tmp_path, database_url,
                                                                fake_url, engine):
    settings = p2p_settings(tmp_path, database_url, fake_url, P2P_POLL_SECONDS="30",
                            P2P_JITTER_SECONDS="20",
                            P2P_MARKETS="binance:USDT/KZT,okx:USDT/CNY,bybit:USDT/EUR")
    specs = p2p_jobs(settings, engine)
    assert [spec.id for spec in specs] == [
        "p2p_poll:binance:USDT/KZT", "p2p_poll:okx:USDT/CNY", "p2p_poll:bybit:USDT/EUR"]
    assert {(spec.seconds, spec.jitter) for spec in specs} == {(30, 15)}  # jitter <= half
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)
    try:
        for spec in specs:
            scheduler.add_job(**spec.add_job_kwargs())
        job = scheduler.get_job("p2p_poll:okx:USDT/CNY")
        assert job.trigger.interval.total_seconds() == 30 and job.trigger.jitter == 15
        assert (job.max_instances, job.coalesce) == (1, True)
        assert job.func is poll_market
        assert job.kwargs["market"] == P2PMarket("okx", "USDT", "CNY")
    finally:
        scheduler.shutdown(wait=False)
    okx = specs[1]
    assert okx.func(**okx.kwargs).status == "ok"


def test_no_markets_no_jobs(tmp_path, database_url, fake_url, engine):
    assert p2p_jobs(p2p_settings(tmp_path, database_url, fake_url), engine) == []
