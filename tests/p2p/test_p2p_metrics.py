"""P2P metrics on snapshots written through the real store: filters, history, depth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.config import P2PMarket
from db import p2p_history
from db.engine import make_engine
from db.migrate import upgrade
from db.p2p import OfferFilter, depth, histories, history, jsonable, summaries, summary
from db.payment_methods import canonical_codes, set_canonical, unknown_payment_methods
from ingest.p2p_normalise import Offer, PaymentMethod
from ingest.p2p_store import Snapshot, store_snapshot
from ingest.runs import Run

ARS = P2PMarket("binance", "USDT", "ARS")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def offer(offer_id: str, price: str, available: str = "10", *, low: str = "1000",
          high: str = "100000", merchant: bool = False, rate: str | None = "0.95",
          pays: tuple[str, ...] = ("BANK",)) -> Offer:
    return Offer(offer_id, Decimal(price), Decimal(available), Decimal(low), Decimal(high),
                 f"user-{offer_id}", f"name-{offer_id}", merchant, 10,
                 Decimal(rate) if rate else None,
                 tuple(PaymentMethod(p) for p in pays), None)


def store(engine, side: str, at: datetime, offers: list[Offer], *, complete: bool = True,
          market: P2PMarket = ARS) -> None:
    run = Run(engine, "test", "p2p_push", str(market))
    store_snapshot(engine, run, Snapshot(market, side, at, offers, complete))
    run.finish()


def a_book(engine, at: datetime = T0) -> None:
    store(engine, "ask", at, [
        offer("a1", "1200", "5", high="3000", rate="0.80"),
        offer("a2", "1205", "20", merchant=True, pays=("MercadoPagoNew",)),
        offer("a3", "1210", "7", low="50000", pays=("BANK", "MercadoPagoNew")),
    ])
    store(engine, "bid", at, [
        offer("b1", "1190", "3", merchant=True),
        offer("b2", "1188", "30", rate=None, pays=("MercadoPagoNew",)),
    ])


def test_summary_of_the_latest_complete_snapshots(engine):
    a_book(engine, T0 - timedelta(minutes=5))
    a_book(engine)
    result = summary(engine, "binance", "USDT", "ARS")
    assert result == {
        "exchange": "binance", "asset": "USDT", "fiat": "ARS", "captured_at": T0,
        "best_ask": Decimal("1200"), "best_bid": Decimal("1190"), "spread": Decimal("10"),
        "spread_pct": (Decimal(10) / Decimal(1195) * 100).quantize(Decimal("0.000001")),
        "ask_offers": 3, "bid_offers": 2, "ask_liquidity": Decimal("32"),
        "bid_liquidity": Decimal("33")}


@pytest.mark.parametrize("case", [
    (OfferFilter(amount=Decimal("5000")), "1205", "1190", 1, 2),
    (OfferFilter(amount=Decimal("60000")), "1205", "1190", 2, 2),
    (OfferFilter(payment=("mercadopago",)), "1205", "1188", 2, 1),
    (OfferFilter(merchant_only=True), "1205", "1190", 1, 1),
    (OfferFilter(min_completion=Decimal("0.9")), "1205", "1190", 2, 1),
    (OfferFilter(payment=("sberbank",)), None, None, 0, 0),
])
def test_summary_filters(engine, case):
    filters, best_ask, best_bid, ask_offers, bid_offers = case
    a_book(engine)
    result = summary(engine, "binance", "USDT", "ARS", filters)
    assert result["best_ask"] == (Decimal(best_ask) if best_ask else None)
    assert result["best_bid"] == (Decimal(best_bid) if best_bid else None)
    assert (result["ask_offers"], result["bid_offers"]) == (ask_offers, bid_offers)
    if best_ask is None:
        assert result["ask_liquidity"] is None and result["spread"] is None


def test_incomplete_snapshots_do_not_count(engine):
    a_book(engine)
    store(engine, "ask", T0 + timedelta(minutes=1), [offer("x", "1000")], complete=False)
    result = summary(engine, "binance", "USDT", "ARS")
    assert (result["best_ask"], result["captured_at"]) == (Decimal("1200"), T0)


def test_an_empty_market(engine):
    result = summary(engine, "okx", "USDT", "ARS")
    assert result["captured_at"] is None and result["best_ask"] is None
    assert (result["ask_offers"], result["bid_offers"]) == (0, 0)


OKX = P2PMarket("okx", "USDT", "ARS")
EMPTY = P2PMarket("bybit", "USDT", "ARS")


def two_markets(engine) -> None:
    """Two books over 20 minutes (OKX cheaper, an incomplete snapshot last) and no third."""
    for minutes in range(0, 20, 4):
        a_book(engine, T0 + timedelta(minutes=minutes))
    store(engine, "ask", T0, [offer("o1", "1180", "2")], market=OKX)
    store(engine, "bid", T0 + timedelta(minutes=7), [offer("o2", "1170", "4"),
                                                     offer("o3", "1160", "6")], market=OKX)
    store(engine, "ask", T0 + timedelta(minutes=9), [offer("x", "1000")], complete=False,
          market=OKX)


def test_summaries_of_many_markets_match_each_summary(engine):
    two_markets(engine)
    found = summaries(engine, [ARS, OKX, EMPTY])
    assert list(found) == [ARS, OKX, EMPTY]
    for market in (ARS, OKX, EMPTY):
        assert found[market] == summary(engine, market.exchange, market.asset, market.fiat)
    assert found[OKX]["best_ask"] == Decimal("1180") and found[OKX]["bid_offers"] == 2


def test_histories_of_many_markets_match_each_history(engine):
    two_markets(engine)
    window = {"start": T0 - timedelta(minutes=5), "end": T0 + timedelta(minutes=25),
              "width": timedelta(minutes=5)}
    found = histories(engine, [ARS, OKX, EMPTY], **window)
    for market in (ARS, OKX, EMPTY):
        assert found[market] == history(engine, market.exchange, market.asset, market.fiat,
                                        **window)
    assert len(found[ARS]) == 4 and found[EMPTY] == []


def test_depth_is_cumulative_asks_up_bids_down(engine):
    store(engine, "ask", T0, [offer("a1", "10", "1"), offer("a2", "11", "2"),
                              offer("a3", "11", "3")])
    store(engine, "bid", T0, [offer("b1", "9", "4"), offer("b2", "8", "1")])
    book = depth(engine, "binance", "USDT", "ARS")
    assert [(level["price"], level["available"], level["cum_available"], level["cum_fiat"])
            for level in book["asks"]] == [
        (Decimal(10), Decimal(1), Decimal(1), Decimal(10)),
        (Decimal(11), Decimal(5), Decimal(6), Decimal(65))]
    assert [(level["price"], level["cum_available"], level["cum_fiat"])
            for level in book["bids"]] == [(Decimal(9), Decimal(4), Decimal(36)),
                                           (Decimal(8), Decimal(5), Decimal(44))]
    assert depth(engine, "binance", "USDT", "ARS", OfferFilter(amount=Decimal(10**6)))[
        "asks"] == []


def minute_book(engine, minute: int, ask: str, bid: str) -> None:
    at = T0 + timedelta(minutes=minute)
    store(engine, "ask", at, [offer(f"a{minute}", ask), offer(f"m{minute}", str(int(ask) + 1),
                                                             merchant=True)])
    store(engine, "bid", at, [offer(f"b{minute}", bid, "4")])


def check_history(engine) -> None:
    for minute, ask, bid in [(0, "100", "90"), (10, "104", "95"), (59, "102", "96"),
                             (60, "110", "100"), (150, "120", "115")]:
        minute_book(engine, minute, ask, bid)
    rows = history(engine, "binance", "USDT", "ARS", start=T0, end=T0 + timedelta(hours=3),
                   width=timedelta(hours=1))
    assert [(r["bucket"], r["captured_at"], r["best_ask"], r["best_bid"], r["spread"])
            for r in rows] == [
        (T0, T0 + timedelta(minutes=59), Decimal(102), Decimal(96), Decimal(6)),
        (T0 + timedelta(hours=1), T0 + timedelta(minutes=60), Decimal(110), Decimal(100),
         Decimal(10)),
        (T0 + timedelta(hours=2), T0 + timedelta(minutes=150), Decimal(120), Decimal(115),
         Decimal(5))]
    assert [(r["ask_offers"], r["ask_liquidity"], r["bid_liquidity"]) for r in rows] == [
        (2, Decimal(20), Decimal(4))] * 3
    merchants = history(engine, "binance", "USDT", "ARS", start=T0,
                        end=T0 + timedelta(hours=3), width=timedelta(hours=1),
                        filters=OfferFilter(merchant_only=True))
    assert [(r["best_ask"], r["best_bid"], r["ask_offers"]) for r in merchants] == [
        (Decimal(103), None, 1), (Decimal(111), None, 1), (Decimal(121), None, 1)]


def test_history_takes_each_buckets_last_snapshot_on_timescaledb(engine):
    check_history(engine)


def test_history_falls_back_to_date_bin_on_plain_postgresql(plain_database_url):
    engine = make_engine(plain_database_url)
    upgrade(engine)
    try:
        check_history(engine)
    finally:
        engine.dispose()


def test_filtered_history_is_the_same_scanned_or_probed(engine, monkeypatch):
    for minute, ask, bid in [(0, "100", "90"), (1, "101", "91"), (3, "103", "93")]:
        minute_book(engine, minute, ask, bid)
    store(engine, "ask", T0 + timedelta(minutes=2), [offer("late", "99")])  # no merchant

    def merchants() -> list[tuple]:
        rows = history(engine, "binance", "USDT", "ARS", start=T0,
                       end=T0 + timedelta(minutes=4), width=timedelta(minutes=2),
                       filters=OfferFilter(merchant_only=True))
        return [(r["bucket"], r["best_ask"], r["ask_offers"], r["bid_offers"]) for r in rows]

    monkeypatch.setattr(p2p_history, "SCAN_WIDTH", timedelta(minutes=5))
    scanned = merchants()
    monkeypatch.setattr(p2p_history, "SCAN_WIDTH", timedelta(0))
    assert merchants() == scanned == [(T0, Decimal(102), 1, 0),
                                      (T0 + timedelta(minutes=2), Decimal(104), 1, 0)]


def test_history_refuses_an_unbounded_request(engine):
    with pytest.raises(ValueError, match="at most 5000"):
        history(engine, "binance", "USDT", "ARS", start=T0, end=T0 + timedelta(days=30),
                width=timedelta(minutes=1))
    with pytest.raises(ValueError, match="start < end"):
        history(engine, "binance", "USDT", "ARS", start=T0, end=T0, width=timedelta(hours=1))


def test_unknown_payment_methods_are_listed_and_a_mapping_applies_to_stored_offers(engine):
    store(engine, "ask", T0, [offer("a1", "1200", pays=("UalaNew",)),
                              offer("a2", "1300", pays=("BANK",))])
    unknown = unknown_payment_methods(engine, "binance")
    assert [(row["identifier"], row["fiat"]) for row in unknown] == [("UalaNew", "ARS")]
    uala = OfferFilter(payment=("uala",))
    assert summary(engine, "binance", "USDT", "ARS", uala)["best_ask"] is None
    assert set_canonical(engine, "binance", "UalaNew", "uala") is True
    assert summary(engine, "binance", "USDT", "ARS", uala)["best_ask"] == Decimal("1200")
    assert unknown_payment_methods(engine, "binance") == []
    assert "uala" in canonical_codes(engine) and "bank_transfer" in canonical_codes(engine)
    assert set_canonical(engine, "binance", "NoSuchMethod", "uala") is False
    with pytest.raises(ValueError, match="canonical"):
        set_canonical(engine, "binance", "UalaNew", "Not A Code")


def test_jsonable_gives_strings_for_decimals_and_iso_times(engine):
    a_book(engine)
    result = jsonable(summary(engine, "binance", "USDT", "ARS"))
    assert result["best_ask"] == "1200" and result["spread_pct"] == "0.836820"
    assert result["captured_at"] == "2024-05-01T12:00:00+00:00"
    assert jsonable({"tiny": Decimal("1E-8")}) == {"tiny": "0.00000001"}
