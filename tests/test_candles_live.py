"""Readers see each series' open candle, kept in candles_live, beside the closed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db.alert_metrics import close_series, spot_closes_at
from db.bulk import copy_rows
from db.candles import get_candles
from db.schema import candles, candles_live
from db.spot import last_closes, latest_times

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def row(minute: int, close: str, closed: bool) -> dict:
    open_time = T0 + timedelta(minutes=minute)
    return {"exchange": "binance", "symbol": "BTCUSDT", "interval": "1m",
            "open_time": open_time, "open": Decimal("100"), "high": Decimal("110"),
            "low": Decimal("90"), "close": Decimal(close), "volume": Decimal("1"),
            "close_time": open_time + timedelta(seconds=59.999), "trades": 1,
            "quote_volume": Decimal("100"), "taker_base_volume": Decimal("0.5"),
            "taker_quote_volume": Decimal("50"), "is_closed": closed}


@pytest.fixture
def stored(engine):
    """Minutes 0-3 closed in candles, minute 4 open in candles_live."""
    with engine.begin() as connection:
        copy_rows(connection, candles, [row(m, str(101 + m), True) for m in range(4)])
        copy_rows(connection, candles_live, [row(4, "95.5", False)])
    return engine


def test_the_chart_and_the_api_get_the_open_candle(stored):
    got = get_candles(stored, "BTCUSDT", "1m", T0, T0 + timedelta(minutes=5))
    assert [(c.close, c.is_closed) for c in got] == [
        (Decimal("101"), True), (Decimal("102"), True), (Decimal("103"), True),
        (Decimal("104"), True), (Decimal("95.5"), False)]
    five = get_candles(stored, "BTCUSDT", "5m", T0, T0 + timedelta(minutes=5))
    assert [(c.close, c.volume, c.is_closed) for c in five] == [
        (Decimal("95.5"), Decimal("5"), False)]


def test_alerts_sparklines_and_feed_ages_read_the_open_candle(stored):
    end = T0 + timedelta(minutes=10)
    with stored.connect() as connection:
        assert spot_closes_at(connection, ["BTCUSDT"], end)["BTCUSDT"] == (
            T0 + timedelta(minutes=4), Decimal("95.5"))
    assert close_series(stored, "BTCUSDT", T0, end, timedelta(minutes=5))[-1][2] == \
        Decimal("95.5")
    assert last_closes(stored, ["BTCUSDT"], T0, end, timedelta(minutes=5)) == {
        "BTCUSDT": [Decimal("95.5")]}
    assert latest_times(stored, ["BTCUSDT"])[0]["candle_1m"] == T0 + timedelta(minutes=4)


def test_a_live_row_behind_its_closed_row_is_not_counted_twice(stored):
    with stored.begin() as connection:
        copy_rows(connection, candles, [row(4, "96", True)])
    five = get_candles(stored, "BTCUSDT", "5m", T0, T0 + timedelta(minutes=5))
    assert [(c.close, c.volume, c.is_closed) for c in five] == [
        (Decimal("96"), Decimal("5"), True)]
