"""GET /api/v1/candles: the real 1h BTCUSDT archive served at 1h and aggregated to 1d."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import api_key
from tests.test_candles import csv_rows, store


@pytest.fixture
def stored(app):
    store(app.extensions["p2pdash"].engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))


@pytest.fixture
def headers(app):
    return {"X-API-Key": api_key(app, "analyst", ("read",))[1]}


def test_daily_candles_from_hourly_ones_match_the_real_daily_row(client, stored, headers):
    response = client.get("/api/v1/candles?symbol=BTCUSDT&interval=1d&start=2022-01-01"
                          "&end=2022-01-02", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["symbol"], body["interval"]) == ("BTCUSDT", "1d")
    [day] = body["candles"]
    real = next(row for row in csv_rows("BTCUSDT-1d-2020-2025.csv") if row[0] == "2022-01-01")
    assert day["open_time"] == "2022-01-01T00:00:00.000Z"
    assert [day["open"], day["high"], day["low"], day["close"], day["volume"]] == real[1:6]
    assert day["open"] == "46216.93000000"


def test_csv_format_has_the_same_fields_and_needs_the_export_scope(app, client, stored,
                                                                     headers):
    url = "/api/v1/candles?symbol=BTCUSDT&interval=1h&start=1640995200000&limit=3&format=csv"
    refused = client.get(url, headers=headers)  # a read-only key
    assert refused.status_code == 403
    assert refused.get_json()["error"]["details"][0]["field"] == "format"
    exporter = {"X-API-Key": api_key(app, "analyst", ("read", "export"))[1]}
    response = client.get(url, headers=exporter)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["open_time"] for row in rows] == [
        "2022-01-01T00:00:00.000Z", "2022-01-01T01:00:00.000Z", "2022-01-01T02:00:00.000Z"]
    assert rows[0]["open"] == "46216.93000000"


@pytest.mark.parametrize(("query", "field"), [
    ("interval=1h", "symbol"),
    ("symbol=BTCUSDT&interval=7m", "interval"),
    ("symbol=BTCUSDT&start=yesterday", "start"),
    ("symbol=BTCUSDT&limit=0", "limit"),
])
def test_a_bad_parameter_gets_400_naming_it(client, headers, query, field):
    response = client.get(f"/api/v1/candles?{query}", headers=headers)
    assert response.status_code in (400, 422)
    error = response.get_json()["error"]
    assert [detail["field"] for detail in error["details"]] == [field]


def test_candles_need_the_read_scope(app, client):
    _, ingest_only = api_key(app, "admin", ("ingest",))
    assert client.get("/api/v1/candles?symbol=BTCUSDT",
                      headers={"X-API-Key": ingest_only}).status_code == 403
    assert client.get("/api/v1/candles?symbol=BTCUSDT").status_code == 401
