"""A rule's JSON is checked field by field: every bad field named, nothing half-read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.alerts.rules import Catalog, RuleInvalid, parse_rule

CATALOG = Catalog(frozenset({"binance:USDT/ARS", "okx:USDT/ARS", "binance:BTC/ARS",
                             "bybit:USDT/NGN"}), frozenset({"BTCUSDT"}), poll_seconds=60)
GOOD = {"name": "spread open", "metric": "p2p.spread_pct", "market": "binance:USDT/ARS",
        "condition": ">", "threshold": "2"}


def errors(**changes) -> dict[str, str]:
    data = {key: value for key, value in {**GOOD, **changes}.items() if value is not ...}
    with pytest.raises(RuleInvalid) as raised:
        parse_rule(data, CATALOG)
    return {error["field"]: error["message"] for error in raised.value.errors}


def test_a_good_rule_reads_into_columns():
    draft = parse_rule({**GOOD, "market": "Binance:usdt/ars", "for_seconds": 120,
                        "filters": {"amount": "200000", "payment": "mercadopago,bank_transfer"},
                        "labels": {"severity": "critical", "desk": "ars"}}, CATALOG)
    columns = draft.columns
    assert columns["subject"].market == "binance:USDT/ARS"
    assert columns["subject"].amount == Decimal("200000")
    assert columns["subject"].payment == ("bank_transfer", "mercadopago")
    assert columns["threshold"] == Decimal("2") and columns["for_seconds"] == 120
    assert columns["repeat_seconds"] == 4 * 3600
    assert columns["labels"] == {"severity": "critical", "desk": "ars"}


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"metric": "p2p.nope"}, "metric", "one of"),
    ({"market": "binance:USDT/EUR"}, "market", "not a polled"),
    ({"threshold": "two"}, "threshold", "decimal number"),
    ({"threshold": "1E+1000000"}, "threshold", "decimal number"),
    ({"threshold": True}, "threshold", "number"),
    ({"threshold": ...}, "threshold", "required"),
    ({"condition": "outside", "low": "5", "high": "1"}, "low", "not be above high"),
    ({"condition": "inside", "low": "5"}, "high", "required"),
    ({"for_seconds": 30}, "for_seconds", "poll interval"),
    ({"for_seconds": "10**9"}, "for_seconds", "whole number"),
    ({"name": "a\x00b"}, "name", "control characters"),
    ({"name": "x" * 101}, "name", "at most 100"),
    ({"filters": {"amount": "-5"}}, "filters.amount", "above 0"),
    ({"filters": {"min_completion": "1.5"}}, "filters.min_completion", "0 to 1"),
    ({"filters": {"payment": ["Mercado Pago"]}}, "filters.payment", "canonical"),
    ({"filters": {"colour": "red"}}, "filters.colour", "not a filter"),
    ({"labels": {"alertname": "x"}}, "labels", "not a free label"),
    ({"labels": {"severity": "loud"}}, "labels.severity", "one of"),
    ({"muted_until": "tomorrow"}, "muted_until", "ISO 8601"),
    ({"repeat_seconds": 5}, "repeat_seconds", "from 60"),
    ({"surprise": 1}, "surprise", "not a rule field"),
    ({"notify": ["x" * 3000]}, "notify", "contact point id"),
])
def test_each_bad_field_is_named(changes, field, words):
    found = errors(**changes)
    assert field in found, found
    assert words in found[field]


def test_every_bad_field_is_named_at_once():
    found = errors(metric="p2p.best_ask", market="nowhere", threshold="x", for_seconds=-1)
    assert {"market", "threshold", "for_seconds"} <= set(found)


def test_subjects_follow_the_metric():
    assert "symbol" in errors(metric="spot.last", market=...)
    assert "not a streamed" in errors(metric="spot.last", market=..., symbol="DOGEUSDT")["symbol"]
    assert "other" in errors(metric="p2p.cross_spread_pct")
    assert "same asset and fiat" in errors(metric="p2p.cross_spread_pct",
                                           other="bybit:USDT/NGN")["other"]
    assert "no offer filters" in errors(metric="spot.last", market=..., symbol="BTCUSDT",
                                        filters={"amount": "5"})["filters"]
    found = errors(metric="p2p.premium_pct", market="bybit:USDT/NGN")
    assert "bybit:BTC/NGN" in found["market"]
    assert parse_rule({**GOOD, "metric": "p2p.cross_spread_pct", "other": "okx:USDT/ARS"},
                      CATALOG).columns["subject"].other == "okx:USDT/ARS"


def test_a_feed_rule_takes_a_market_or_a_symbol():
    feed = {**GOOD, "metric": "feed.age_seconds", "threshold": "180"}
    assert parse_rule(feed, CATALOG).columns["subject"].market == "binance:USDT/ARS"
    assert parse_rule({**feed, "market": None, "symbol": "BTCUSDT"},
                      CATALOG).columns["subject"].symbol == "BTCUSDT"


def test_a_body_that_is_not_an_object():
    with pytest.raises(RuleInvalid) as raised:
        parse_rule(["a", "list"], CATALOG)
    assert raised.value.errors[0]["field"] == "body"
