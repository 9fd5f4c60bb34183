"""The views' small rules: URL state, filters from the controls, bucket and interval fitting,
times typed in the viewer's zone, ages and notes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from callbacks.candles import MAX_CANDLES, fit_interval
from callbacks.common import age, note
from callbacks.depth import MAX_POINTS, book_width
from callbacks.p2p_overview import hourly, spread_change
from callbacks.p2p_views import at_param, describe, fit_bucket, offer_filter, parse_at
from db.intervals import INTERVALS
from db.views import break_gaps
from layouts.controls import RANGES
from layouts.urlstate import pick, pick_codes, pick_flag, pick_many, pick_number, search


def test_url_parameters_become_valid_filter_values_or_defaults():
    params = {"symbol": "ETHUSDT", "interval": "7m", "markets": "b:USDT/ARS,x,b:USDT/ARS",
              "amount": "50000.5", "completion": "150", "merchant": "1", "nan": "NaN"}
    assert pick(params, "symbol", ["BTCUSDT", "ETHUSDT"], "BTCUSDT") == "ETHUSDT"
    assert pick(params, "interval", INTERVALS, "1m") == "1m", "unknown: the default"
    assert pick_many(params, "markets", ["b:USDT/ARS", "o:USDT/ARS"]) == ["b:USDT/ARS"]
    assert pick_many({}, "markets", ["a", "b"], ["b", "zzz"]) == ["b"]
    assert pick_number(params, "amount") == 50000.5
    assert pick_number(params, "completion", 0, 100) is None
    assert pick_number(params, "nan") is None and pick_number({}, "amount") is None
    assert pick_flag(params, "merchant") and not pick_flag(params, "other")


def test_payment_codes_from_the_url_once_each():
    assert pick_codes({"payment": "mercadopago,,wise,mercadopago"}, "payment") == [
        "mercadopago", "wise"]
    assert pick_codes({}, "payment") == []


@pytest.mark.parametrize("params", [
    {"markets": ["binance:USDT/ARS", "binance:USDT/ARS"]},  # a repeated parameter
    {"markets": "binance:USDT/ARS", "amount": ["1", "2"], "payment": ["a", "b"]},
    {"amount": "\u00b2"}, {"amount": "\u0663"}, {"amount": "1E+999999999"},
    {"amount": "9" * 5000}, {"payment": "mercado\x00pago,ok"}, {"completion": "-0"},
    {"range": ["1d", "7d"]}, {"merchants": ["1"]}, {"markets": 7},
])
def test_malformed_or_repeated_url_parameters_still_open_the_page(app, params):
    from layouts import candles, depth, spread, volume

    with app.test_request_context():
        for page in (spread, depth, volume, candles):
            assert page.layout(**params) is not None
    assert pick_many(params, "markets", ["binance:USDT/ARS"]) in ([], ["binance:USDT/ARS"])
    assert pick_number(params, "amount") in (None, 1.0)
    assert all(code.isascii() and "\x00" not in code for code in pick_codes(params, "payment"))


def test_notes_are_plain_json_so_figures_beside_them_skip_plotlys_slow_path():
    answer = [{"data": [{"x": [1, 2], "y": [0.5, 1.5]}]}, [note("Feed down"), note("")]]
    assert orjson.loads(orjson.dumps(answer))[1] == [
        {"props": {"children": "Feed down", "color": "warning",
                   "className": "py-2 mb-2 small"},
         "type": "Alert", "namespace": "dash_bootstrap_components"}, None]


def test_search_writes_only_what_is_set_in_order():
    assert search({"symbol": "BTCUSDT", "bidask": False, "fiat": None, "interval": "5m",
                   "markets": ["binance:USDT/ARS", "okx:USDT/ARS"], "merchant": True,
                   "amount": 50000.0, "payment": []}) == (
        "?symbol=BTCUSDT&interval=5m&markets=binance:USDT/ARS,okx:USDT/ARS&merchant=1"
        "&amount=50000")
    assert search({"symbol": None}) == ""


def test_filters_from_the_controls():
    chosen = offer_filter("50000", ["wise", "bank_transfer"], True, 95)
    assert chosen.amount == Decimal(50000) and chosen.payment == ("bank_transfer", "wise")
    assert chosen.merchant_only and chosen.min_completion == Decimal("0.95")
    assert describe(chosen) == ("amount 50,000; methods bank_transfer, wise; merchants only; "
                                "completion ≥ 95 %")
    assert not offer_filter(None, None, False, None).active
    assert offer_filter("-5", [], False, "101") == offer_filter()
    assert offer_filter("abc").amount is None


def test_numbers_from_the_controls_are_bounded_before_they_are_converted():
    """A crafted callback sent a 400-digit amount, which went to the query as it was."""
    assert offer_filter(10**400).amount is None
    assert offer_filter("9" * 5000).amount is None
    assert offer_filter(float("inf")).amount is None and offer_filter("NaN").amount is None
    assert offer_filter(True).amount is None
    assert offer_filter(10**19).amount == Decimal(10**19)
    assert offer_filter(None, None, False, 10**400).min_completion is None


def test_intervals_and_buckets_widen_to_stay_drawable():
    assert fit_interval("1m", RANGES["1d"]) == "1m"
    assert fit_interval("1m", RANGES["1M"]) == "30m"
    assert all(RANGES[r] * 1000 // INTERVALS[fit_interval("1m", RANGES[r])] <= MAX_CANDLES
               for r in RANGES)
    assert fit_bucket("1m", RANGES["1d"]) == "1m" and fit_bucket("1m", RANGES["1M"]) == "1h"
    assert fit_bucket("4h", RANGES["1h"]) == "4h"
    assert book_width(RANGES["1h"]) == 5 and book_width(RANGES["1d"]) == 60
    assert all(RANGES[r] / book_width(RANGES[r]) <= MAX_POINTS for r in RANGES)


def test_a_depth_time_is_typed_in_the_viewers_zone_and_shared_in_utc():
    moment = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
    assert parse_at("2024-05-01 12:30", "America/Argentina/Buenos_Aires") == \
        moment.timestamp() * 1000
    assert parse_at("2024-05-01T15:30Z", "Asia/Tokyo") == moment.timestamp() * 1000
    assert parse_at("  ", "UTC") is None
    with pytest.raises(ValueError):
        parse_at("yesterday", "UTC")
    assert at_param("2024-05-01 12:30", "America/Argentina/Buenos_Aires") == \
        "2024-05-01T15:30Z"
    assert at_param("", "UTC") == "" and at_param("yesterday", "UTC") == "yesterday"


def test_ages_read_shortly():
    now = 10_000_000_000
    assert age(None) == "never"
    assert age(now - 12_000, now) == "12 s"
    assert age(now - 5 * 60_000, now) == "5 min"
    assert age(now - 3 * 3600_000, now) == "3 h"
    assert age(now - 2 * 86400_000, now) == "2 d"


def test_the_overview_compares_the_spread_with_the_hour_of_a_day_ago():
    hour = 3_600_000
    now = 1_000 * 24 * hour + 40 * 60_000  # 00:40
    day = {"t": [now - 24 * hour - 40 * 60_000, now - 2 * hour - 40 * 60_000,
                 now - 40 * 60_000], "spread_pct": [1.0, 1.5, 1.25]}
    slots = hourly(day, now)
    assert len(slots) == 25 and slots[0] == 1.0 and slots[22] == 1.5 and slots[24] == 1.25
    assert slots.count(None) == 22
    assert spread_change(slots, 1.3) == pytest.approx(0.3)
    assert spread_change(hourly({"t": day["t"][1:], "spread_pct": [1.5, 1.25]}, now),
                         1.3) is None, "no snapshot a day ago: no change"


def test_lines_break_where_buckets_are_missing():
    cols = {"t": [0, 60, 120, 300, 360], "y": [1.0, 2.0, 3.0, 4.0, 5.0]}
    assert break_gaps(cols, 60) == {"t": [0, 60, 120, 180, 300, 360],
                                    "y": [1.0, 2.0, 3.0, None, 4.0, 5.0]}
    whole = {"t": [0, 60], "y": [1.0, 2.0]}
    assert break_gaps(whole, 60) is whole and break_gaps({"t": [], "y": []}, 60)["t"] == []
