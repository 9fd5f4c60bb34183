"""The views' P2P lists on snapshots written through the real store: top adverts, payment
methods, advertisers per bucket, depth at a time, the run behind a snapshot; and the cached
columns the charts get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app import create_app
from db import p2p_adverts, views
from db.intervals import to_ms
from db.p2p import OfferFilter, depth
from tests.conftest import make_settings
from tests.p2p.test_p2p_metrics import ARS, T0, a_book, offer, store


def test_top_adverts_are_the_latest_snapshot_asks_cheapest_first_then_bids(engine):
    a_book(engine, T0 - timedelta(minutes=5))
    a_book(engine)
    adverts = p2p_adverts.top_adverts(engine, ARS)
    assert [(row["side"], row["offer_id"]) for row in adverts] == [
        ("ask", "a1"), ("ask", "a2"), ("ask", "a3"), ("bid", "b1"), ("bid", "b2")]
    assert {row["captured_at"] for row in adverts} == {T0}
    merchants = p2p_adverts.top_adverts(engine, ARS, OfferFilter(merchant_only=True))
    assert [row["offer_id"] for row in merchants] == ["a2", "b1"]
    assert p2p_adverts.top_adverts(engine, ARS, OfferFilter(amount=Decimal(60000))) == [
        row for row in adverts if row["offer_id"] in ("a2", "a3", "b1", "b2")]


def test_methods_present_are_the_canonical_codes_of_the_latest_snapshot(engine):
    a_book(engine)
    assert p2p_adverts.methods_present(engine, ARS) == ["bank_transfer", "mercadopago"]
    names = p2p_adverts.method_names(engine, "binance")
    assert names["BANK"] == "bank_transfer" and names["MercadoPagoNew"] == "mercadopago"


def test_depth_at_a_time_uses_the_latest_snapshot_before_it(engine):
    store(engine, "ask", T0, [offer("x1", "1300", "1")])
    store(engine, "bid", T0, [offer("y1", "1100", "2")])
    a_book(engine, T0 + timedelta(minutes=10))
    then = depth(engine, "binance", "USDT", "ARS", at=T0 + timedelta(minutes=5))
    assert then["captured_at"] == T0
    assert [level["price"] for level in then["asks"]] == [Decimal(1300)]
    assert [level["cum_fiat"] for level in then["bids"]] == [Decimal(2200)]
    assert depth(engine, "binance", "USDT", "ARS", at=T0 - timedelta(seconds=1))["asks"] == []
    assert depth(engine, "binance", "USDT", "ARS")["captured_at"] == T0 + timedelta(minutes=10)


def test_advertisers_are_counted_per_bucket_over_both_sides(engine):
    a_book(engine, T0 + timedelta(minutes=1))
    store(engine, "ask", T0 + timedelta(minutes=7), [offer("a1", "1200"), offer("a9", "1201")])
    store(engine, "bid", T0 + timedelta(minutes=7), [offer("a1", "1100")])  # user-a1 again
    counts = p2p_adverts.advertiser_counts(engine, ARS, start=T0, end=T0 + timedelta(minutes=10),
                                           width=timedelta(minutes=5))
    assert counts == {T0: 5, T0 + timedelta(minutes=5): 2}


def test_a_snapshot_leads_to_its_run_and_its_public_summary(engine):
    a_book(engine)
    run_id = p2p_adverts.snapshot_run(engine, ARS, T0)
    assert run_id is not None and p2p_adverts.snapshot_run(engine, ARS, T0 + timedelta(
        milliseconds=1)) is None
    summary = p2p_adverts.run_summary(engine, run_id)
    assert summary["market"] == str(ARS) and summary["status"] == "ok"
    assert "error" not in summary and "params" not in summary
    assert p2p_adverts.run_summary(engine, 10**9) is None


def test_cached_p2p_columns_for_the_charts(database_url, tmp_path, engine):
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes in (30, 20, 10):
        a_book(engine, now - timedelta(minutes=minutes))
    app = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                   P2P_MARKETS=str(ARS)))
    with app.app_context():
        history = views.p2p_history(str(ARS), 600, 3600)
        top = views.p2p_top_adverts(str(ARS))
        latest = views.p2p_latest((str(ARS),))
        methods = views.p2p_methods(str(ARS))
        advertisers = views.p2p_advertisers(str(ARS), 600, 3600)  # settled and recent
    assert history["best_ask"][-3:] == [1200.0, 1200.0, 1200.0]
    direct = p2p_adverts.advertiser_counts(engine, ARS, start=now - timedelta(hours=1),
                                           end=now + timedelta(minutes=1),
                                           width=timedelta(minutes=10))
    assert advertisers == {to_ms(bucket): count for bucket, count in direct.items()}
    assert len(advertisers) == 3
    assert history["captured_at"][-1] == to_ms(now - timedelta(minutes=10))
    assert history["spread_pct"][-1] == pytest.approx(10 / 1195 * 100, rel=1e-6)
    assert top[0]["payment_methods"] == ["bank_transfer"] and top[0]["price"] == 1200.0
    assert latest == {str(ARS): to_ms(now - timedelta(minutes=10))}
    assert [(row["method"], row["best_ask"], row["best_bid"]) for row in methods] == [
        ("bank_transfer", 1200.0, 1190.0), ("mercadopago", 1205.0, 1188.0)]
    app.extensions["p2pdash"].engine.dispose()
