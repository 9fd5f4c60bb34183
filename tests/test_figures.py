"""The figure builders on known rows: what each chart draws, in which zone, and valid Plotly."""

from __future__ import annotations

from datetime import UTC, datetime

import plotly.graph_objects as go
import pytest

from db import views
from layouts import figures

MINUTE = 60_000
T0 = int(datetime(2024, 3, 30, 23, 58, tzinfo=UTC).timestamp() * 1000)
CANDLES = {"t": [T0, T0 + MINUTE, T0 + 2 * MINUTE], "open": [10.0, 11.0, 12.0],
           "high": [12.0, 13.0, 12.5], "low": [9.0, 10.5, 10.0], "close": [11.0, 12.0, 10.5],
           "volume": [1.5, 2.0, 0.5], "quote_volume": [15.0, 24.0, 5.5], "trades": [3, 4, 1]}
BOOK = {"t": [T0, T0 + MINUTE], "bid": [99.0, 100.0], "ask": [101.0, 100.5]}


def valid(figure: dict) -> go.Figure:
    """Plotly accepts the dict (raises on any unknown or badly typed property)."""
    return go.Figure(figure)


def test_candles_draw_ohlc_volume_coloured_by_direction_and_the_book():
    figure = figures.candles_figure(CANDLES, symbol="BTCUSDT", tz="UTC", dark=False, book=BOOK)
    candle, volume, bid, ask = figure["data"]
    assert candle["type"] == "candlestick" and candle["x"] == CANDLES["t"]
    assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (
        CANDLES["open"], CANDLES["high"], CANDLES["low"], CANDLES["close"])
    assert volume["yaxis"] == "y2" and volume["y"] == [1.5, 2.0, 0.5]
    assert volume["marker"]["color"] == [figures.UP, figures.UP, figures.DOWN]
    assert (bid["y"], ask["y"]) == ([99.0, 100.0], [101.0, 100.5])
    assert figure["layout"]["xaxis"]["rangeslider"] == {"visible": False}
    assert figure["layout"]["hovermode"] == "x unified", "one readout of O, H, L, C and V"
    valid(figure)


def test_times_are_shown_as_wall_clock_time_of_the_chosen_zone():
    buenos_aires = figures.wall_times(CANDLES["t"], "America/Argentina/Buenos_Aires")
    assert buenos_aires == [t - 3 * 3600_000 for t in CANDLES["t"]]
    # Europe/Berlin moves to summer time at 2024-03-31 01:00 UTC: the offset changes inside.
    spring = [T0, T0 + 2 * 3600_000]
    assert figures.wall_times(spring, "Europe/Berlin") == [T0 + 3600_000, T0 + 4 * 3600_000]
    assert figures.wall_times(CANDLES["t"], "UTC") == CANDLES["t"]
    assert figures.wall_times(CANDLES["t"], "Not/AZone") == CANDLES["t"]
    figure = figures.candles_figure(CANDLES, symbol="X", tz="Asia/Tokyo", dark=False)
    assert figure["data"][0]["x"][0] == T0 + 9 * 3600_000
    assert figure["layout"]["xaxis"]["title"]["text"] == "time (Asia/Tokyo)"


def test_spread_series_per_market_carry_their_snapshot_for_a_click():
    markets = {
        "binance:USDT/ARS": {"t": [T0, T0 + MINUTE], "best_ask": [1010.0, 1012.0],
                             "best_bid": [1000.0, 1001.0], "spread_pct": [0.995, 1.093],
                             "captured_at": [T0 + 5, T0 + MINUTE + 7]},
        "okx:USDT/ARS": {"t": [T0], "best_ask": [1020.0], "best_bid": [990.0],
                         "spread_pct": [2.985], "captured_at": [T0 + 9]},
    }
    figure = figures.spread_figure(markets, tz="UTC", dark=True)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["binance:USDT/ARS ask", "binance:USDT/ARS bid", "binance:USDT/ARS spread %",
                     "okx:USDT/ARS ask", "okx:USDT/ARS bid", "okx:USDT/ARS spread %"]
    ask, bid, spread = figure["data"][:3]
    assert ask["y"] == [1010.0, 1012.0] and bid["y"] == [1000.0, 1001.0]
    assert spread["yaxis"] == "y2" and spread["y"] == [0.995, 1.093]
    assert ask["customdata"] == [["binance:USDT/ARS", T0 + 5], ["binance:USDT/ARS",
                                                               T0 + MINUTE + 7]]
    assert ask["line"]["color"] == bid["line"]["color"] != figure["data"][3]["line"]["color"]
    valid(figure)


DEPTH = {"asset": "USDT", "fiat": "ARS",
         "asks": [{"price": 1010.0, "cum_available": 100.0, "cum_fiat": 101000.0},
                  {"price": 1012.0, "cum_available": 150.0, "cum_fiat": 151600.0}],
         "bids": [{"price": 1000.0, "cum_available": 80.0, "cum_fiat": 80000.0},
                  {"price": 995.0, "cum_available": 200.0, "cum_fiat": 199400.0}]}


@pytest.mark.parametrize(("unit", "key", "title"), [("asset", "cum_available", "USDT"),
                                                      ("fiat", "cum_fiat", "ARS")])
def test_depth_draws_cumulative_steps_in_asset_or_fiat(unit, key, title):
    figure = figures.depth_figure(DEPTH, unit=unit, dark=False)
    bids, asks = figure["data"]
    assert bids["x"] == [1000.0, 995.0] and asks["x"] == [1010.0, 1012.0]
    assert bids["y"] == [level[key] for level in DEPTH["bids"]]
    assert asks["y"] == [level[key] for level in DEPTH["asks"]]
    assert asks["line"]["shape"] == "hv" and asks["fill"] == "tozeroy"
    assert figure["layout"]["yaxis"]["title"]["text"] == f"cumulative {title}"
    valid(figure)


def test_book_spread_is_a_percentage_of_the_mid():
    figure = figures.book_figure(BOOK, symbol="BTCUSDT", tz="UTC", dark=False)
    spread = figure["data"][2]["y"]
    assert spread == pytest.approx([2 / 100 * 100, 0.5 / 100.25 * 100])
    valid(figure)


def test_the_book_chart_breaks_at_a_gap_instead_of_failing():
    """views.book puts a blank point after a gap: the spot book chart answered 400 on it."""
    gapped = views.break_gaps({"t": [T0, T0 + 5 * MINUTE], "bid": [99.0, 100.0],
                               "ask": [101.0, 100.5]}, MINUTE)
    figure = figures.book_figure(gapped, symbol="BTCUSDT", tz="UTC", dark=False)
    assert figure["data"][2]["y"] == pytest.approx([2 / 100 * 100, None, 0.5 / 100.25 * 100])
    valid(figure)


def test_volume_draws_three_panes_per_symbol():
    figure = figures.volume_figure({"BTCUSDT": CANDLES, "ETHUSDT": CANDLES}, tz="UTC",
                                   dark=False)
    assert len(figure["data"]) == 6
    volume, quote, trades = figure["data"][:3]
    assert (volume["y"], quote["y"], trades["y"]) == ([1.5, 2.0, 0.5], [15.0, 24.0, 5.5],
                                                      [3, 4, 1])
    assert (volume["yaxis"], quote["yaxis"], trades["yaxis"]) == ("y", "y2", "y3")
    valid(figure)


def test_liquidity_implied_and_methods_figures_are_valid():
    liquidity = {"t": [T0], "ask_liquidity": [500.0], "bid_liquidity": [300.0],
                 "ask_offers": [20], "bid_offers": [18], "advertisers": [30]}
    figure = figures.liquidity_figure({"binance:USDT/ARS": liquidity}, tz="UTC", dark=False)
    assert [trace["y"][0] for trace in figure["data"]] == [500.0, 300.0, 20, 18, 30]
    implied = {"t": [T0], "implied": [1000.0], "p2p_usdt": [1010.0], "premium_pct": [1.0]}
    assert figures.implied_figure(implied, fiat="ARS", tz="UTC", dark=True)["data"][2]["y"] \
        == [1.0]
    methods = figures.methods_figure([{"method": "bank_transfer", "spread_pct": 1.2,
                                       "best_ask": 1010.0, "best_bid": 998.0}], dark=False)
    assert methods["data"][0]["x"] == ["bank_transfer"]
    for built in (figure, figures.implied_figure(implied, fiat="ARS", tz="UTC", dark=False),
                  methods):
        valid(built)


def test_an_empty_chart_says_why_and_the_themes_differ():
    figure = figures.empty_figure("No market configured", dark=True)
    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"] == "No market configured"
    valid(figure)
    light, dark = figures.template(False), figures.template(True)
    assert light["layout"] != dark["layout"] and light["layout"]["colorway"]
    assert set(light["data"]) <= {"scatter", "bar"} and "geo" not in light["layout"]


def test_a_text_sparkline_has_a_block_per_value_lowest_to_highest():
    assert figures.spark_text([1.0, 2.0, None, 4.0, 4.0]) == "▁▃ ██"
    assert figures.spark_text([3.0, 3.0]) == "▁▁"
    assert figures.spark_text([5.0]) == "" and figures.spark_text([None, 1.0]) == ""


def test_implied_rate_is_p2p_btc_over_spot_btc_and_the_premium_is_usdt_over_it():
    btc_ars = {"t": [T0, T0 + MINUTE, T0 + 2 * MINUTE],
               "best_ask": [66_000_000.0, None, 67_000_000.0],
               "best_bid": [64_000_000.0, 65_000_000.0, 65_000_000.0]}
    usdt_ars = {"t": [T0, T0 + 2 * MINUTE], "best_ask": [1020.0, 1040.0],
                "best_bid": [1000.0, 1020.0]}
    btcusdt = {"t": [T0, T0 + MINUTE, T0 + 2 * MINUTE], "close": [65_000.0, 65_500.0, 66_000.0]}
    rows = figures.implied_columns(btc_ars, usdt_ars, btcusdt)
    assert rows["t"] == [T0, T0 + 2 * MINUTE], "a bucket missing anywhere is left out"
    assert rows["implied"] == [1000.0, 1000.0]
    assert rows["p2p_usdt"] == [1010.0, 1030.0]
    assert rows["premium_pct"] == pytest.approx([1.0, 3.0])
    valid(figures.implied_figure(rows, fiat="ARS", tz="UTC", dark=False))
