"""The P2P API: summary, history and depth over polled books; pushes that validate every field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.config import P2PMarket
from db.schema import p2p_offers, p2p_snapshots, runs
from ingest.p2p_poll import poll_market
from tests.conftest import api_key
from tests.p2p.conftest import capture, p2p_settings
from tests.p2p.test_p2p_simulated import expected_summary, raw_book

ARS = P2PMarket("binance", "USDT", "ARS")


def text(value):
    """How the API writes a decimal (never a float), or None."""
    return None if value is None else format(value, "f")


@pytest.fixture
def read(app):
    return {"X-API-Key": api_key(app, "analyst", ("read",))[1]}


@pytest.fixture
def ingest(app):
    return {"X-API-Key": api_key(app, "admin", ("ingest",))[1]}


def test_summary_of_a_real_capture_equals_its_raw_json(app, client, settings, read):
    poll_market(settings, app.extensions["p2pdash"].engine, P2PMarket("binance", "USDT", "KZT"))
    adverts = [item["adv"] for item in capture("binance_1.json")["data"]]
    body = client.get("/api/v1/p2p/summary?exchange=binance&asset=USDT&fiat=KZT",
                      headers=read).get_json()
    assert body["best_ask"] == text(min(Decimal(adv["price"]) for adv in adverts))
    assert body["ask_offers"] == len(adverts)
    assert body["ask_liquidity"] == text(sum(Decimal(adv["tradableQuantity"]) for adv in adverts))
    assert (body["best_bid"], body["spread"], body["bid_offers"]) == (None, None, 0)


@pytest.fixture
def simulated_poll(app, tmp_path, database_url, simulated):
    _, url = simulated
    settings = p2p_settings(tmp_path, database_url, url, P2P_DEPTH="25")
    assert poll_market(settings, app.extensions["p2pdash"].engine, ARS).status == "ok"
    return url


def test_summary_spread_and_filters_equal_the_raw_books(client, simulated_poll, read):
    asks, bids = raw_book(simulated_poll, ARS, "ask"), raw_book(simulated_poll, ARS, "bid")
    expected = {key: value if isinstance(value, int) else text(value)
                for key, value in expected_summary(asks, bids).items()}
    body = client.get("/api/v1/p2p/summary?exchange=binance&asset=usdt&fiat=ars",
                      headers=read).get_json()
    assert {key: body[key] for key in expected} == expected
    assert Decimal(body["spread"]) > 0
    merchants = client.get("/api/v1/p2p/summary?exchange=binance&asset=USDT&fiat=ARS"
                           "&merchant_only=true", headers=read).get_json()
    expected_merchants = expected_summary([a for a in asks if a["merchant"]],
                                          [b for b in bids if b["merchant"]])
    assert merchants["ask_offers"] == expected_merchants["ask_offers"] < len(asks)


def test_depth_is_cumulative_and_history_has_the_bucket(client, simulated_poll, read):
    asks = raw_book(simulated_poll, ARS, "ask")
    body = client.get("/api/v1/p2p/depth?exchange=binance&asset=USDT&fiat=ARS",
                      headers=read).get_json()
    prices = [Decimal(level["price"]) for level in body["asks"]]
    assert prices == sorted(prices) and prices[0] == min(a["price"] for a in asks)
    assert Decimal(body["asks"][-1]["cum_available"]) == sum(a["available"] for a in asks)
    history = client.get("/api/v1/p2p/history?exchange=binance&asset=USDT&fiat=ARS"
                         "&bucket=1h", headers=read).get_json()
    assert [row for row in history if row["best_ask"] is not None], history


@pytest.mark.parametrize(("query", "field"), [
    ("exchange=kraken&asset=USDT&fiat=ARS", "exchange"),
    ("exchange=okx&fiat=ARS", "asset"),
    ("exchange=okx&asset=USDT&fiat=ARS&amount=lots", "amount"),
    ("exchange=okx&asset=USDT&fiat=ARS&min_completion=95", "min_completion"),
])
def test_a_bad_query_gets_400_naming_the_field(client, read, query, field):
    response = client.get(f"/api/v1/p2p/summary?{query}", headers=read)
    assert response.status_code == 400
    assert [detail["field"] for detail in response.get_json()["error"]["details"]] == [field]


def snapshot(**changes) -> dict:
    offer = {"offer_id": "42", "price": "1234.50", "available": "100", "min_fiat": "1000",
             "max_fiat": "50000", "is_merchant": True, "month_finish_rate": "0.98",
             "payment_methods": ["MercadoPagoNew"]}
    body = {"exchange": "binance", "asset": "USDT", "fiat": "ARS", "side": "ask",
            "captured_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "offers": [offer, {**offer, "offer_id": "43", "price": "1240"}]}
    for key, value in changes.items():
        if key.startswith("offer_"):
            body["offers"][1][key.removeprefix("offer_")] = value
        else:
            body[key] = value
    return body


def counts(app) -> tuple[int, int, int]:
    with app.extensions["p2pdash"].engine.connect() as connection:
        return tuple(connection.scalar(select(func.count()).select_from(table))
                     for table in (p2p_offers, p2p_snapshots, runs))


def test_a_pushed_snapshot_is_stored_once(app, client, ingest, read):
    body = snapshot()
    first = client.post("/api/v1/ingest/p2p-offers", json=body, headers=ingest)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["inserted"] == 2 and first.get_json()["duplicates_skipped"] == 0
    again = client.post("/api/v1/ingest/p2p-offers", json=body, headers=ingest).get_json()
    assert (again["inserted"], again["duplicates_skipped"]) == (0, 2)
    assert counts(app)[0] == 2
    summary = client.get("/api/v1/p2p/summary?exchange=binance&asset=USDT&fiat=ARS",
                         headers=read).get_json()
    assert summary["best_ask"] == "1234.50"


@pytest.mark.parametrize("case", [
    ({k: v for k, v in snapshot().items() if k != "side"}, None, "side"),
    (snapshot(offer_price="abc"), 1, "price"),
    (snapshot(offer_available="-5"), 1, "available"),
    (snapshot(side="sideways"), None, "side"),
], ids=["missing side", "price abc", "negative amount", "unknown side"])
def test_a_bad_push_is_refused_whole_naming_the_field(app, client, ingest, case):
    body, index, field = case
    before = counts(app)
    response = client.post("/api/v1/ingest/p2p-offers", json=body, headers=ingest)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert {"index": index, "field": field} in [
        {"index": d["index"], "field": d["field"]} for d in details], details
    assert counts(app) == before


def test_a_10_mb_body_gets_413_and_changes_nothing(app, client, ingest):
    before = counts(app)
    huge = json.dumps(snapshot(offers=[{"offer_id": "x" * 100}] * 100_000))
    assert len(huge) > 10_000_000
    response = client.post("/api/v1/ingest/p2p-offers", data=huge,
                           headers={**ingest, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert counts(app) == before


def test_pushing_needs_the_ingest_scope(client, read):
    response = client.post("/api/v1/ingest/p2p-offers", json=snapshot(), headers=read)
    assert response.status_code == 403


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,  # past the parser's recursion
    b'{"exchange": "binance", "offers": [{"offer_id": "1", "price": "1", '
    b'"payment_methods": [[[[[["deep"]]]]]]}]}',
    b'{"exchange": "binance\\u0000", "offers": []}',
    b'{"offers": [{"price": "\xff\xfe"}]}',
])
def test_a_malformed_push_is_a_4xx_and_leaves_no_failed_run(app, engine, payload):
    headers = {"X-API-Key": api_key(app, "admin", ("ingest",))[1],
               "Content-Type": "application/json"}
    answer = app.test_client().post("/api/v1/ingest/p2p-offers", data=payload,
                                    headers=headers)
    assert 400 <= answer.status_code < 500, answer.get_data(as_text=True)[:200]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(runs)) == 0
