"""The fake P2P exchange: refuses what the exchanges refuse, pages, simulates, breaks on demand."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from app.config import P2PMarket
from ingest import binance_p2p, bybit_p2p, okx_p2p
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import Simulation

BINANCE = "/bapi/c2c/v2/friendly/c2c/adv/search"
BODY = {"page": 1, "rows": 20, "payTypes": [], "countries": [], "publisherType": None,
        "asset": "USDT", "fiat": "KZT", "tradeType": "BUY"}


def test_binance_pages_a_capture_by_page_and_rows(fake_url):
    answer = requests.post(fake_url + BINANCE, json={**BODY, "page": 3, "rows": 4},
                           timeout=5).json()
    assert [item["adv"]["advNo"] for item in answer["data"]] == [
        "11369526308703129600", "11353840583120486400"]
    assert (answer["code"], answer["total"], answer["success"]) == ("000000", 66, True)


@pytest.mark.parametrize(("change", "detail"), [
    ({"rows": 21}, "page must be >= 1 and rows 1-20"),
    ({"tradeType": "buy"}, "tradeType must be one of"),
    ({"page": "1"}, "page must be a int"),
])
def test_binance_refuses_a_request_it_would_not_accept(fake_url, change, detail):
    answer = requests.post(fake_url + BINANCE, json={**BODY, **change}, timeout=5).json()
    assert (answer["code"], answer["message"], answer["success"]) == (
        "000002", "illegal parameter", False)
    assert answer["messageDetail"].startswith(detail)


def test_okx_and_bybit_refuse_requests_they_would_not_accept(fake_url):
    okx = requests.get(fake_url + "/v3/c2c/tradingOrders/books",
                       params={"quoteCurrency": "cny", "baseCurrency": "usdt"}, timeout=5).json()
    assert okx["code"] == 51000 and "paymentMethod is required" in okx["msg"]
    bybit = requests.post(fake_url + "/fiat/otc/item/online", json={
        "tokenId": "USDT", "currencyId": "EUR", "side": 1, "size": "10", "page": "1"},
        timeout=5).json()
    assert bybit["ret_code"] == 10001 and "side must be a str" in bybit["ret_msg"]


def test_the_simulation_is_fixed_within_a_period_and_drifts_across_periods():
    now = [1_714_564_800.0]
    simulation = Simulation(clock=lambda: now[0])
    first = simulation.book("binance", "USDT", "ARS", "ask")
    assert simulation.book("binance", "USDT", "ARS", "ask") == first
    now[0] += 60
    later = simulation.book("binance", "USDT", "ARS", "ask")
    assert later != first
    assert [a["adv"]["advNo"] for a in later] == [a["adv"]["advNo"] for a in first]


@pytest.mark.parametrize(("exchange", "module"), [
    ("binance", binance_p2p), ("okx", okx_p2p), ("bybit", bybit_p2p)])
def test_simulated_adverts_are_in_the_exchanges_format_and_a_sane_book(exchange, module):
    simulation = Simulation(clock=lambda: 1_714_564_800.0)
    market = P2PMarket(exchange, "USDT", "NGN")
    asks = [module.normalise(raw, market, "ask", rank) for rank, raw in
            enumerate(simulation.book(exchange, "USDT", "NGN", "ask"), 1)]
    bids = [module.normalise(raw, market, "bid", rank) for rank, raw in
            enumerate(simulation.book(exchange, "USDT", "NGN", "bid"), 1)]
    ask_prices, bid_prices = [a.price for a in asks], [b.price for b in bids]
    assert ask_prices == sorted(ask_prices) and bid_prices == sorted(bid_prices, reverse=True)
    assert Decimal(1400) < bid_prices[0] < ask_prices[0] < Decimal(1700)
    assert any(a.is_merchant for a in asks) and not all(a.is_merchant for a in asks)
    assert all(a.payment_methods for a in asks + bids)
    assert all(a.max_fiat <= a.available * a.price for a in asks if a.max_fiat >= a.min_fiat)


def test_faults_can_be_queued_over_http_and_are_served_in_order():
    fake = FakeP2P()
    with serving(fake) as url:
        queued = requests.post(f"{url}/_fake/p2p/faults",
                               json={"exchange": "binance", "fault": "451"}, timeout=5)
        assert queued.status_code == 200
        refused = requests.post(url + BINANCE, json=BODY, timeout=5)
        assert refused.status_code == 451 and "restricted location" in refused.text
        assert requests.post(url + BINANCE, json=BODY, timeout=5).json()["data"] == []
        bad = requests.post(f"{url}/_fake/p2p/faults",
                            json={"exchange": "binance", "fault": "418"}, timeout=5)
        assert bad.status_code == 400 and "unknown fault '418'" in bad.json()["error"]
