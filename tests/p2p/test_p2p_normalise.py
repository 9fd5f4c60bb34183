"""The normaliser's rules on real adverts with one thing broken: each error names its field."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from app.config import P2PMarket
from ingest import binance_p2p, bybit_p2p, okx_p2p
from ingest.p2p_normalise import Fields, MalformedAdvert, effective_max, parse_decimal
from tests.p2p.conftest import capture

KZT = P2PMarket("binance", "USDT", "KZT")
CNY = P2PMarket("okx", "USDT", "CNY")
EUR = P2PMarket("bybit", "USDT", "EUR")


def binance_advert() -> dict:
    return copy.deepcopy(capture("binance_1.json")["data"][0])


def okx_advert() -> dict:
    return copy.deepcopy(capture("okx_1.json"))


def bybit_advert() -> dict:
    return copy.deepcopy(capture("bybit_1.json")["result"]["items"][0])


def broken(advert: dict, path: str, value: object) -> dict:
    """The advert with the field at a dotted path set to value (or removed, for ...)."""
    *parents, name = path.split(".")
    target = advert
    for parent in parents:
        target = target[parent]
    if value is ...:
        del target[name]
    else:
        target[name] = value
    return advert


@pytest.mark.parametrize(("path", "value", "error"), [
    ("adv.price", ..., "adv.price: is missing"),
    ("adv.price", "abc", "adv.price: 'abc' is not a number"),
    ("adv.price", "0", "adv.price: must be positive; got '0'"),
    ("adv.price", "NaN", "adv.price: 'NaN' is not a finite number"),
    ("adv.tradableQuantity", "-1.5", "adv.tradableQuantity: must not be negative; got '-1.5'"),
    ("adv.tradeType", "HOLD", "adv.tradeType: unknown side 'HOLD'"),
    ("adv.tradeType", "BUY", "adv.tradeType: 'BUY' is the bid side, not the ask side polled"),
    ("adv.fiatUnit", "RUB", "adv.fiatUnit: 'RUB' is not KZT, the market polled"),
    ("adv.advNo", None, "adv.advNo: is missing"),
    ("advertiser.monthFinishRate", Decimal("1.2"),
     "advertiser.monthFinishRate: 1.2 is not a rate from 0 to 1"),
    ("advertiser.monthOrderCount", "many", "advertiser.monthOrderCount: 'many' is not a number"),
    ("adv.tradeMethods", "KaspiBank", "adv.tradeMethods: 'KaspiBank' is not a list"),
    ("advertiser", None, "advertiser: is missing"),
])
def test_a_broken_binance_advert_names_field_and_reason(path, value, error):
    with pytest.raises(MalformedAdvert) as raised:
        binance_p2p.normalise(broken(binance_advert(), path, value), KZT, "ask", 1)
    assert str(raised.value) == error


@pytest.mark.parametrize(("path", "value", "error"), [
    ("side", "hold", "side: unknown side 'hold'"),
    ("completedRate", "1.5", "completedRate: '1.5' is not a rate from 0 to 1"),
    ("availableAmount", "-3", "availableAmount: must not be negative; got '-3'"),
    ("paymentMethods", [""], "paymentMethods[0]: '' is not a payment method identifier"),
    ("quoteCurrency", "ars", "quoteCurrency: 'ars' is not CNY, the market polled"),
])
def test_a_broken_okx_advert_names_field_and_reason(path, value, error):
    with pytest.raises(MalformedAdvert) as raised:
        okx_p2p.normalise(broken(okx_advert(), path, value), CNY, "ask", 1)
    assert str(raised.value) == error


@pytest.mark.parametrize(("path", "value", "error"), [
    ("side", 3, "side: unknown side 3"),
    ("side", 1, "side: 1 is the ask side, not the bid side polled"),
    ("recentExecuteRate", 150, "recentExecuteRate: 150 is not a rate from 0 to 100"),
    ("price", "1,5", "price: '1,5' is not a number"),
    ("lastQuantity", ..., "lastQuantity: is missing"),
])
def test_a_broken_bybit_advert_names_field_and_reason(path, value, error):
    with pytest.raises(MalformedAdvert) as raised:
        bybit_p2p.normalise(broken(bybit_advert(), path, value), EUR, "bid", 1)
    assert str(raised.value) == error


def test_completion_rates_become_fractions_everywhere():
    binance = binance_p2p.normalise(binance_advert(), KZT, "ask", 1)
    okx = okx_p2p.normalise(okx_advert(), CNY, "ask", 1)
    bybit = bybit_p2p.normalise(broken(bybit_advert(), "recentExecuteRate", 97), EUR, "bid", 1)
    assert binance.month_finish_rate == Decimal("0.9285714285714286")
    assert okx.month_finish_rate == Decimal("0.9959")
    assert bybit.month_finish_rate == Decimal("0.97")


def test_binance_without_tradable_quantity_falls_back_to_the_surplus():
    advert = broken(binance_advert(), "adv.tradableQuantity", ...)
    assert binance_p2p.normalise(advert, KZT, "ask", 1).available == Decimal("22.58")


def test_the_effective_maximum_is_capped_by_what_is_left():
    assert effective_max(Decimal("9300"), Decimal("100"), Decimal("0.93")) == Decimal("93.00")
    assert effective_max(Decimal("50"), Decimal("100"), Decimal("0.93")) == Decimal("50")
    assert effective_max(None, Decimal("2"), Decimal("10")) == Decimal("20")
    assert effective_max(Decimal("7"), None, Decimal("10")) == Decimal("7")


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, "1e", ""])
def test_parse_decimal_refuses_what_is_not_a_number(value):
    with pytest.raises(MalformedAdvert):
        parse_decimal(value, "x")


def test_parse_decimal_keeps_the_digits():
    assert str(parse_decimal("461.50", "x")) == "461.50"
    assert parse_decimal(7, "x") == Decimal(7)
    assert str(parse_decimal(0.1, "x")) == "0.1"


def test_fields_refuse_a_non_object():
    with pytest.raises(MalformedAdvert, match="advert: is not a JSON object"):
        Fields(["not", "an", "object"])
