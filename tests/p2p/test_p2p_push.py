"""Pushed snapshots: the validation answer for bad bodies, dedup of re-sent ones, counts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from db import p2p_rollups
from db.schema import ingest_errors, p2p_offers, p2p_snapshots, payment_methods, runs
from ingest.p2p_push import (
    MAX_PUSH_BYTES,
    MAX_PUSH_OFFERS,
    PushRejected,
    push_snapshot,
    validate_push,
)

BODY = {
    "exchange": "binance", "asset": "USDT", "fiat": "ARS", "side": "ask",
    "captured_at": "2024-05-01T12:00:00Z",
    "offers": [
        {"offer_id": "1", "price": "1234.50", "available": "100", "min_fiat": "1000",
         "max_fiat": "50000", "advertiser_id": "u1", "advertiser_name": "Ana",
         "is_merchant": True, "month_orders": 120, "month_finish_rate": "0.98",
         "payment_methods": ["MercadoPagoNew"], "rank": 1},
        {"offer_id": "2", "price": "1236", "available": "40.5",
         "payment_methods": ["NewWallet"]},
    ],
}


BODY_HOUR = datetime(2024, 5, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def body(**changes) -> dict:
    data = copy.deepcopy(BODY)
    data.update(changes)
    return data


def with_offer(index: int, **changes) -> dict:
    data = body()
    data["offers"][index].update(changes)
    return data


def counts(engine) -> tuple[int, ...]:
    with engine.connect() as connection:
        return tuple(connection.scalar(select(func.count()).select_from(table))
                     for table in (runs, ingest_errors, p2p_snapshots, p2p_offers))


def test_a_good_body_is_stored_as_a_push_run(engine):
    answer = push_snapshot(engine, body(), source="api:test")
    assert answer == {"run_id": answer["run_id"], "inserted": 2, "duplicates_skipped": 0}
    with engine.connect() as connection:
        run = connection.execute(select(runs)).mappings().one()
        prices = list(connection.scalars(select(p2p_offers.c.price).order_by(p2p_offers.c.rank)))
        new_method = connection.execute(select(payment_methods).where(
            payment_methods.c.identifier == "NewWallet")).mappings().one()
    assert (run["id"], run["kind"], run["source"], run["status"]) == (
        answer["run_id"], "p2p_push", "api:test", "ok")
    assert (run["received"], run["inserted"], run["duplicates"]) == (2, 2, 0)
    assert prices == [Decimal("1234.50"), Decimal("1236")]
    assert (new_method["exchange"], new_method["canonical"], new_method["fiat"]) == (
        "binance", None, "ARS")


def test_a_re_sent_snapshot_changes_no_data_and_counts_duplicates(engine):
    push_snapshot(engine, body())
    with engine.connect() as connection:
        before = connection.execute(select(p2p_offers).order_by(p2p_offers.c.offer_id)).all()
    answer = push_snapshot(engine, body())
    assert (answer["inserted"], answer["duplicates_skipped"]) == (0, 2)
    with engine.connect() as connection:
        after = connection.execute(select(p2p_offers).order_by(p2p_offers.c.offer_id)).all()
        snapshots = connection.scalar(select(func.count()).select_from(p2p_snapshots))
    assert after == before and snapshots == 1


def test_json_numbers_parsed_as_decimal_are_accepted():
    raw = json.dumps(body()).replace('"1234.50"', "1234.50")
    snapshot, errors = validate_push(json.loads(raw, parse_float=Decimal))
    assert errors == [] and snapshot is not None
    assert str(snapshot.offers[0].price) == "1234.50"


@pytest.mark.parametrize(("bad", "errors"), [
    (with_offer(0, price=None), [{"index": 0, "field": "price", "message": "is missing"}]),
    (with_offer(1, price="abc"), [{"index": 1, "field": "price",
                                   "message": "'abc' is not a number"}]),
    (with_offer(1, available="-5"), [{"index": 1, "field": "available",
                                      "message": "must not be negative; got '-5'"}]),
    (body(side="buy"), [{"index": None, "field": "side",
                         "message": "unknown side 'buy'; expected ask or bid"}]),
    (with_offer(0, month_finish_rate="98"), [{"index": 0, "field": "month_finish_rate",
                                              "message": "'98' is not a rate from 0 to 1"}]),
    (with_offer(0, colour="red"), [{"index": 0, "field": "colour", "message": "unknown field"}]),
    (body(exchange="kraken", captured_at="2024-05-01T12:00:00"), [
        {"index": None, "field": "captured_at",
         "message": "'2024-05-01T12:00:00' has no time zone"},
        {"index": None, "field": "exchange",
         "message": "'kraken' is not one of binance, okx, bybit"}]),
    (body(offers={"offer_id": "1"}), [{"index": None, "field": "offers",
                                       "message": "must be a list of offers"}]),
    (body(offers=[7]), [{"index": 0, "field": None,
                         "message": "an offer must be a JSON object"}]),
])
def test_a_bad_body_is_refused_whole_and_writes_nothing(engine, bad, errors):
    with pytest.raises(PushRejected) as raised:
        push_snapshot(engine, bad)
    assert raised.value.errors == errors
    assert counts(engine) == (0, 0, 0, 0)


def test_every_problem_of_every_offer_is_reported():
    bad = with_offer(0, price="abc", available="-1")
    bad["offers"][1]["offer_id"] = ""
    _, errors = validate_push(bad)
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "price"), (0, "available"), (1, "offer_id")]


def test_limits_are_stated_and_enforced():
    assert MAX_PUSH_BYTES == 1_048_576
    too_many = body(offers=[{"offer_id": str(i), "price": "1"}
                            for i in range(MAX_PUSH_OFFERS + 1)])
    _, errors = validate_push(too_many)
    assert errors == [{"index": None, "field": "offers",
                       "message": f"{MAX_PUSH_OFFERS + 1} offers; at most {MAX_PUSH_OFFERS}"}]


def test_a_non_object_body_is_refused():
    assert validate_push([1, 2]) == (None, [{"index": None, "field": None,
                                             "message": "the body must be a JSON object"}])


@pytest.mark.parametrize(("bad", "field"), [
    (with_offer(0, month_orders="1E+1000000"), "month_orders"),  # froze the process 27 s
    (with_offer(0, month_orders="1E+99"), "month_orders"),
    (with_offer(0, month_orders=2**31), "month_orders"),  # beyond the integer column
    (with_offer(0, rank=10**30), "rank"),
    (with_offer(0, price="1e100"), "price"),
    (with_offer(0, price=10**400), "price"),
    (with_offer(0, price="1." + "1" * 30), "price"),  # beyond 18 decimal places
    (with_offer(0, price="\u0661\u0662"), "price"),  # Arabic-Indic digits
    (with_offer(0, price="12\x00"), "price"),
    (with_offer(0, available="9" * 100), "available"),
    (with_offer(0, min_fiat="60000", max_fiat="50000"), "min_fiat"),
    (with_offer(0, advertiser_name="x" * 100_000), "advertiser_name"),
    (with_offer(0, payment_methods=[f"m{n}" for n in range(21)]), "payment_methods"),
    (with_offer(0, payment_methods=["x" * 65]), "payment_methods[0]"),
    (body(offers=[{"offer_id": str(n), "price": "1", "payment_methods": [f"m{n}"]}
                  for n in range(101)]), "offers"),  # 101 new payment-method rows
    (body(captured_at="0001-01-01T00:00:00Z"), "captured_at"),
])
def test_out_of_bounds_values_are_refused_by_field_and_write_nothing(engine, bad, field):
    with pytest.raises(PushRejected) as raised:
        push_snapshot(engine, bad)
    assert [error["field"] for error in raised.value.errors] == [field]
    assert counts(engine) == (0, 0, 0, 0)


def test_names_lose_control_characters_and_keep_their_length_bound(engine):
    push_snapshot(engine, with_offer(0, advertiser_name="An\x00a\n\u2028" + "y" * 300))
    with engine.connect() as connection:
        name = connection.scalar(select(p2p_offers.c.advertiser_name)
                                 .where(p2p_offers.c.offer_id == "1"))
    assert name.startswith("Anay") and len(name) == 256


def test_a_push_into_an_hour_no_longer_recomputed_updates_its_hourly_row(engine):
    """History reads final hours from p2p_hourly (db/p2p_history.py): a push days late
    must reach its hour's row there, or history would never show it."""
    push_snapshot(engine, body(captured_at="2024-05-01T11:10:00Z"))  # an older one first
    push_snapshot(engine, body(captured_at="2024-05-01T12:00:00Z"))
    p2p_rollups.recompute(engine, BODY_HOUR, BODY_HOUR + HOUR)
    late = body(captured_at="2024-05-01T12:40:00Z")
    late["offers"][0]["price"] = "1200"
    push_snapshot(engine, late)
    with engine.connect() as connection:
        row = connection.execute(text(
            "SELECT snapshots, last_price FROM p2p_hourly WHERE side = 'ask' "
            "AND bucket = :hour"), {"hour": BODY_HOUR}).one()
    assert (row.snapshots, row.last_price) == (2, Decimal("1200"))
