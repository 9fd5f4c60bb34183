"""Real captures, served by the fake exchange, through the real pollers into the database.

Expected records are computed here from the raw JSON with the exchanges' documented
conventions, not by the normaliser under test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.config import P2PMarket
from db.p2p import summary
from db.schema import p2p_offers, p2p_snapshots, payment_methods, runs
from ingest.p2p_poll import poll_market
from tests.p2p.conftest import capture, p2p_settings

COLUMNS = ("offer_id", "price", "available", "min_fiat", "max_fiat", "advertiser_id",
           "advertiser_name", "is_merchant", "month_orders", "month_finish_rate", "rank",
           "payment_methods")


def binance_expected(raw: dict) -> list[dict[str, Any]]:
    rows = []
    for rank, item in enumerate(raw["data"], start=1):
        adv, user = item["adv"], item["advertiser"]
        rows.append(dict(zip(COLUMNS, (
            adv["advNo"], Decimal(adv["price"]), Decimal(adv["tradableQuantity"]),
            Decimal(adv["minSingleTransAmount"]), Decimal(adv["dynamicMaxSingleTransAmount"]),
            user["userNo"], user["nickName"], user["userType"] == "merchant",
            user["monthOrderCount"], user["monthFinishRate"], rank,
            [method["identifier"] for method in adv["tradeMethods"]]), strict=True)))
    return rows


def okx_expected(raw: dict) -> list[dict[str, Any]]:
    price, available = Decimal(raw["price"]), Decimal(raw["availableAmount"])
    return [dict(zip(COLUMNS, (
        raw["id"], price, available, Decimal(raw["quoteMinAmountPerOrder"]),
        min(Decimal(raw["quoteMaxAmountPerOrder"]), available * price), raw["publicUserId"],
        raw["nickName"], raw["creatorType"] != "common", None, Decimal(raw["completedRate"]),
        1, raw["paymentMethods"]), strict=True))]


def bybit_expected(raw: dict) -> list[dict[str, Any]]:
    rows = []
    for rank, item in enumerate(raw["result"]["items"], start=1):
        price, available = Decimal(item["price"]), Decimal(item["lastQuantity"])
        rows.append(dict(zip(COLUMNS, (
            item["id"], price, available, Decimal(item["minAmount"]),
            min(Decimal(item["maxAmount"]), available * price), item["userId"],
            item["nickName"], bool({"VA", "BA", "GA"} & set(item["authTag"])),
            item["recentOrderNum"], Decimal(item["recentExecuteRate"]) / 100, rank,
            item["payments"]), strict=True)))
    return rows


CASES = [  # market, capture, the side it holds, expected records
    (P2PMarket("binance", "USDT", "KZT"), "binance_1.json", "ask", binance_expected),
    (P2PMarket("binance", "USDT", "RUB"), "binance_2.json", "bid", binance_expected),
    (P2PMarket("binance", "USDT", "USD"), "binance_5.json", "ask", binance_expected),
    (P2PMarket("okx", "USDT", "CNY"), "okx_1.json", "ask", okx_expected),
    (P2PMarket("bybit", "USDT", "EUR"), "bybit_1.json", "bid", bybit_expected),
]


def stored_offers(engine, market: P2PMarket, side: str) -> list[dict[str, Any]]:
    o = p2p_offers.c
    with engine.connect() as connection:
        rows = connection.execute(select(*(o[name] for name in COLUMNS)).where(
            o.exchange == market.exchange, o.fiat == market.fiat, o.side == side,
        ).order_by(o.rank)).mappings()
        return [dict(row) for row in rows]


def run_row(engine, run_id: int):
    with engine.connect() as connection:
        return connection.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


@pytest.mark.parametrize("case", CASES, ids=[case[1] for case in CASES])
def test_a_capture_gives_exactly_the_expected_records(settings, engine, case):
    market, name, side, expected = case
    result = poll_market(settings, engine, market)
    records = expected(capture(name))
    assert result.status == "ok"
    assert stored_offers(engine, market, side) == records
    other = "bid" if side == "ask" else "ask"
    assert stored_offers(engine, market, other) == []
    row = run_row(engine, result.run_id)
    assert (row["kind"], row["market"], row["status"]) == ("p2p_poll", str(market), "ok")
    assert (row["received"], row["inserted"], row["duplicates"], row["rejected"]) == (
        len(records), len(records), 0, 0)


@pytest.mark.parametrize("case", CASES, ids=[case[1] for case in CASES])
def test_summary_equals_the_best_price_of_the_raw_capture(settings, engine, case):
    market, name, side, expected = case
    poll_market(settings, engine, market)
    records = expected(capture(name))
    prices = [record["price"] for record in records]
    best = min(prices) if side == "ask" else max(prices)
    result = summary(engine, market.exchange, market.asset, market.fiat)
    other = "bid" if side == "ask" else "ask"
    assert result[f"best_{side}"] == best
    assert result[f"{side}_offers"] == len(records)
    assert result[f"{side}_liquidity"] == sum(record["available"] for record in records)
    assert (result[f"best_{other}"], result[f"{other}_offers"]) == (None, 0)
    assert result["spread"] is None and result["spread_pct"] is None


def test_each_side_is_stamped_when_read_and_an_empty_side_is_a_complete_snapshot(settings,
                                                                                  engine):
    started = datetime.now(UTC)
    poll_market(settings, engine, P2PMarket("binance", "USDT", "KZT"))
    with engine.connect() as connection:
        snapshots = connection.execute(select(p2p_snapshots).order_by(p2p_snapshots.c.side)
                                       ).mappings().all()
    assert [s["side"] for s in snapshots] == ["ask", "bid"]
    assert started < snapshots[0]["captured_at"] <= snapshots[1]["captured_at"]
    assert [(s["offers"], s["complete"]) for s in snapshots] == [(10, True), (0, True)]
    assert snapshots[0]["best_price"] == Decimal("461.50")


def test_binance_is_paged_by_page_and_rows_to_the_configured_depth(tmp_path, database_url,
                                                                   fake, fake_url, engine):
    settings = p2p_settings(tmp_path, database_url, fake_url, P2P_PAGE_ROWS="3", P2P_DEPTH="8")
    market = P2PMarket("binance", "USDT", "KZT")
    poll_market(settings, engine, market)
    asks = [r["body"] for r in fake.requests if r["body"]["tradeType"] == "BUY"]
    assert [(body["page"], body["rows"]) for body in asks] == [(1, 3), (2, 3), (3, 3)]
    assert stored_offers(engine, market, "ask") == binance_expected(capture("binance_1.json"))[:8]


def test_requests_are_what_the_live_exchanges_accept(settings, engine, fake):
    for market in (P2PMarket("binance", "USDT", "KZT"), P2PMarket("okx", "USDT", "CNY"),
                   P2PMarket("bybit", "USDT", "EUR")):
        poll_market(settings, engine, market)
    binance, okx, bybit = (next(r for r in fake.requests if r["exchange"] == name)
                           for name in ("binance", "okx", "bybit"))
    assert binance["path"] == "/bapi/c2c/v2/friendly/c2c/adv/search"
    assert binance["body"] == {"page": 1, "rows": 20, "payTypes": [], "countries": [],
                               "publisherType": None, "asset": "USDT", "fiat": "KZT",
                               "tradeType": "BUY"}
    assert binance["headers"]["Content-Type"] == "application/json"
    assert okx["method"] == "GET" and okx["path"] == "/v3/c2c/tradingOrders/books"
    assert {k: v for k, v in okx["args"].items() if k != "t"} == {
        "quoteCurrency": "cny", "baseCurrency": "usdt", "side": "sell", "paymentMethod": "all",
        "userType": "all", "showTrade": "false", "showFollow": "false",
        "showAlreadyTraded": "false", "isAbleFilter": "false", "receivingAds": "false",
        "urlId": "0"}
    assert bybit["path"] == "/fiat/otc/item/online"
    assert bybit["body"] == {"userId": "", "tokenId": "USDT", "currencyId": "EUR", "payment": [],
                             "side": "1", "size": "20", "page": "1", "amount": "",
                             "authMaker": False, "canTrade": False}


def test_payment_identifiers_are_mapped_or_kept_for_an_admin(settings, engine):
    poll_market(settings, engine, P2PMarket("bybit", "USDT", "EUR"))
    poll_market(settings, engine, P2PMarket("binance", "USDT", "KZT"))
    pm = payment_methods.c
    with engine.connect() as connection:
        rows = dict(connection.execute(select(pm.identifier, pm.canonical).where(
            pm.identifier.in_(["14", "377", "KaspiBank", "JysanBank"]))).all())
    assert rows == {"14": "bank_transfer", "377": None, "KaspiBank": "kaspi_bank",
                    "JysanBank": "jysan_bank"}
