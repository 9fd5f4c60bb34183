"""The simulated market end to end: metrics equal what the raw answers of the fake say.

The test asks the fake for the same books the pollers read (the simulation is fixed for a
clock period) and computes best prices, spreads, counts and depth from the raw JSON itself.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import select

from app.config import P2PMarket
from db.p2p import OfferFilter, depth, summary
from db.schema import payment_methods
from ingest.p2p_poll import poll_market
from tests.p2p.conftest import p2p_settings


def raw_book(url: str, market: P2PMarket, side: str) -> list[dict[str, Any]]:
    """One side's adverts as the fake answers them (25 wanted, the pollers' depth)."""
    if market.exchange == "binance":
        body = {"page": 1, "rows": 20, "payTypes": [], "asset": market.asset,
                "fiat": market.fiat, "tradeType": "BUY" if side == "ask" else "SELL"}
        pages = [requests.post(f"{url}/bapi/c2c/v2/friendly/c2c/adv/search",
                               json={**body, "page": page}, timeout=5).text for page in (1, 2)]
        items = [item for page in pages for item in json.loads(page)["data"]]
        return [{"price": Decimal(i["adv"]["price"]),
                 "available": Decimal(i["adv"]["tradableQuantity"]),
                 "min": Decimal(i["adv"]["minSingleTransAmount"]),
                 "max": Decimal(i["adv"]["dynamicMaxSingleTransAmount"]),
                 "pays": [m["identifier"] for m in i["adv"]["tradeMethods"]],
                 "merchant": i["advertiser"]["userType"] == "merchant"} for i in items][:25]
    params = {"quoteCurrency": market.fiat, "baseCurrency": market.asset, "paymentMethod": "all",
              "userType": "all", "side": "sell" if side == "ask" else "buy"}
    answer = json.loads(requests.get(f"{url}/v3/c2c/tradingOrders/books", params=params,
                                     timeout=5).text)
    items = answer["data"][params["side"]][:25]
    return [{"price": Decimal(i["price"]), "available": Decimal(i["availableAmount"]),
             "min": Decimal(i["quoteMinAmountPerOrder"]),
             "max": min(Decimal(i["quoteMaxAmountPerOrder"]),
                        Decimal(i["availableAmount"]) * Decimal(i["price"])),
             "pays": i["paymentMethods"], "merchant": i["creatorType"] != "common"}
            for i in items]


def expected_summary(asks: list[dict], bids: list[dict]) -> dict[str, Any]:
    best_ask = min(a["price"] for a in asks) if asks else None
    best_bid = max(b["price"] for b in bids) if bids else None
    spread = pct = None
    if asks and bids:
        spread = best_ask - best_bid
        pct = (spread / ((best_ask + best_bid) / 2) * 100).quantize(Decimal("0.000001"))
    return {"best_ask": best_ask, "best_bid": best_bid, "spread": spread, "spread_pct": pct,
            "ask_offers": len(asks), "bid_offers": len(bids),
            "ask_liquidity": sum(a["available"] for a in asks) if asks else None,
            "bid_liquidity": sum(b["available"] for b in bids) if bids else None}


@pytest.mark.parametrize("market", [P2PMarket("binance", "USDT", "ARS"),
                                    P2PMarket("okx", "BTC", "NGN")], ids=str)
def test_summary_and_spread_equal_the_raw_books(tmp_path, database_url, engine, simulated,
                                                market):
    _, url = simulated
    settings = p2p_settings(tmp_path, database_url, url, P2P_DEPTH="25")
    assert poll_market(settings, engine, market).status == "ok"
    asks, bids = raw_book(url, market, "ask"), raw_book(url, market, "bid")
    result = summary(engine, market.exchange, market.asset, market.fiat)
    assert {key: result[key] for key in expected_summary(asks, bids)} == expected_summary(
        asks, bids)
    assert result["spread"] > 0


def test_filters_equal_the_raw_books_filtered_by_hand(tmp_path, database_url, engine,
                                                      simulated):
    _, url = simulated
    market = P2PMarket("binance", "USDT", "ARS")
    poll_market(p2p_settings(tmp_path, database_url, url, P2P_DEPTH="25"), engine, market)
    with engine.connect() as connection:
        mercadopago = set(connection.scalars(select(payment_methods.c.identifier).where(
            payment_methods.c.exchange == "binance",
            payment_methods.c.canonical == "mercadopago")))
    amount = Decimal("150000")
    asks, bids = raw_book(url, market, "ask"), raw_book(url, market, "bid")

    def keep(book: list[dict]) -> list[dict]:
        return [a for a in book if a["min"] <= amount <= a["max"] and a["merchant"]
                and mercadopago & set(a["pays"])]

    filters = OfferFilter(amount=amount, payment=("mercadopago",), merchant_only=True)
    result = summary(engine, "binance", "USDT", "ARS", filters)
    expected = expected_summary(keep(asks), keep(bids))
    assert {key: result[key] for key in expected} == expected
    assert 0 < expected["ask_offers"] < len(asks)


def test_depth_equals_the_raw_books_accumulated(tmp_path, database_url, engine, simulated):
    _, url = simulated
    market = P2PMarket("okx", "USDT", "CNY")
    poll_market(p2p_settings(tmp_path, database_url, url, P2P_DEPTH="25"), engine, market)
    book = depth(engine, "okx", "USDT", "CNY")
    for side, levels in (("ask", book["asks"]), ("bid", book["bids"])):
        raw = raw_book(url, market, side)
        total = sum(a["available"] for a in raw)
        fiat = sum(a["available"] * a["price"] for a in raw)
        assert levels[-1]["cum_available"] == total and levels[-1]["cum_fiat"] == fiat
        prices = [level["price"] for level in levels]
        assert prices == sorted(prices, reverse=side == "bid")
