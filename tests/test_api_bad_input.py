"""Bad API parameters get a 400 naming the field, never a 500 (cases the hardening issue
found answering 500)."""

from __future__ import annotations

import pytest

from tests.conftest import api_key

MARKET = "exchange=binance&asset=USDT&fiat=ARS"


@pytest.fixture
def get(app):
    client = app.test_client()
    headers = {"X-API-Key": api_key(app, "analyst", ("read", "export"))[1]}
    return lambda url: client.get(url, headers=headers)


@pytest.mark.parametrize(("url", "field"), [
    ("/api/v1/candles?symbol=BTCUSDT&limit=%C2%B2", "limit"),  # ², a Unicode digit
    ("/api/v1/candles?symbol=BTCUSDT&start=%C2%B3", "start"),  # ³
    ("/api/v1/candles?symbol=BTCUSDT&start=0001-01-01", "start"),
    ("/api/v1/candles?symbol=BTCUSDT&end=9999-12-31", "end"),
    ("/api/v1/candles?symbol=BTCUSDT&start=" + "1" * 30, "start"),
    ("/api/v1/candles?symbol=%EF%BC%A2TCUSDT", "symbol"),  # a full-width letter
    (f"/api/v1/p2p/summary?{MARKET}&amount=1E%2B999999999", "amount"),
    (f"/api/v1/p2p/summary?{MARKET}&amount=%D9%A1%D9%A2", "amount"),  # Arabic-Indic digits
    (f"/api/v1/p2p/summary?{MARKET}&payment=mercado%00pago", "payment"),
    (f"/api/v1/p2p/depth?{MARKET}&min_completion=1e-999", "min_completion"),
    ("/api/v1/p2p/summary?exchange=binance&asset=%EF%BC%B5SDT&fiat=ARS", "asset"),
    (f"/api/v1/p2p/history?{MARKET}&start=0001-01-01", "start"),
    (f"/api/v1/p2p/history?{MARKET}&end=9999-12-31T23:59:59", "end"),
])
def test_a_bad_parameter_is_a_400_naming_it(get, url, field):
    answer = get(url)
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert [detail["field"] for detail in answer.get_json()["error"]["details"]] == [field]
