"""The fake Binance: Binance's formats, errors and weights; REST and stream agree."""

from __future__ import annotations

import itertools
import re

import orjson
import pytest
import requests
import websocket
from flask import Blueprint, jsonify

from ingest.fake.market import SimClock, SimulatedMarket
from ingest.fake.server import FakeExchange
from tests.spot_support import BINANCE, wait_until

DECIMAL8 = re.compile(r"^\d+\.\d{8}$")


@pytest.fixture(scope="module")
def fake():
    with FakeExchange("simulate", symbols=["BTCUSDT", "XRPUSDT"]) as fake:
        yield fake


def get(fake, path, **params):
    return requests.get(fake.rest_url + path, params=params, timeout=10)


def test_klines_rows_have_binances_twelve_columns(fake):
    response = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=5)
    rows = response.json()
    assert response.status_code == 200 and len(rows) == 5
    for row in rows:
        assert [type(v) for v in row] == [int, str, str, str, str, str, int, str, int, str, str,
                                          str]
        assert all(DECIMAL8.match(row[i]) for i in (1, 2, 3, 4, 5, 7, 9, 10))
        assert row[6] == row[0] + 59_999 and row[11] == "0"
    assert [b[0] - a[0] for a, b in itertools.pairwise(rows)] == [60_000] * 4
    assert rows[-1][6] > fake.clock.ms()  # the last one is the candle still open


def test_klines_select_like_binance(fake):
    start = fake.clock.ms() // 3_600_000 * 3_600_000 - 3_600_000  # a closed hour
    after = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="5m", startTime=start + 1,
                limit=3).json()
    assert [row[0] for row in after] == [start + 300_000 * i for i in (1, 2, 3)]
    before = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1h", endTime=start,
                 limit=2).json()
    assert [row[0] for row in before] == [start - 3_600_000, start]
    hour = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1h", startTime=start,
               limit=1).json()[0]
    minutes = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=start,
                  limit=60).json()
    assert hour[1] == minutes[0][1] and hour[4] == minutes[-1][4]
    assert hour[8] == sum(row[8] for row in minutes)


@pytest.mark.parametrize(("params", "code"), [
    ({"interval": "1m"}, -1102),
    ({"symbol": "BTCUSDT", "interval": "2m"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, -1130),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "yesterday"}, -1100),
    ({"symbol": "DOGEEUR", "interval": "1m"}, -1121),
])
def test_bad_requests_get_binances_error_codes(fake, params, code):
    response = get(fake, "/api/v3/klines", **params)
    assert response.status_code == 400 and response.json()["code"] == code


def test_weight_is_reported_and_the_limit_enforced_with_429():
    with FakeExchange("simulate", symbols=["BTCUSDT"], weight_limit=5) as fake:
        used = [get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1)
                for _ in range(3)]
    assert [r.headers["X-MBX-USED-WEIGHT-1M"] for r in used] == ["2", "4", "6"]
    assert used[2].status_code == 429 and 1 <= int(used[2].headers["Retry-After"]) <= 60


def test_queued_faults_answer_in_order(fake):
    fake.binance.fail_next(418, retry_after=90)
    fake.binance.fail_next(503)
    banned = get(fake, "/api/v3/ping")
    assert banned.status_code == 418 and banned.headers["Retry-After"] == "90"
    assert "banned until" in banned.json()["msg"]
    assert get(fake, "/api/v3/ping").status_code == 503
    assert get(fake, "/api/v3/ping").json() == {}


def test_exchange_info_lists_the_simulated_or_the_recorded_symbols(fake):
    info = get(fake, "/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "XRPUSDT"]
    assert info["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                     "intervalNum": 1, "limit": 6000}
    assert info["symbols"][1]["filters"][0]["tickSize"] == "0.00000100"
    recorded = BINANCE / "exchangeinfo_rest_1_excerpt.json"
    with FakeExchange("replay", exchange_info=recorded) as replay:
        assert get(replay, "/api/v3/exchangeInfo").json() == orjson.loads(recorded.read_bytes())


def test_the_closing_kline_on_the_stream_equals_the_rest_row():
    clock = SimClock(speed=30.0)
    with FakeExchange("simulate", symbols=["ETHUSDT"], clock=clock) as fake:
        ws = websocket.create_connection(fake.ws_url + "/stream?streams=ethusdt@kline_1m",
                                         timeout=10)
        try:
            closing = None
            while closing is None:
                kline = orjson.loads(ws.recv())["data"]["k"]
                closing = kline if kline["x"] else None
        finally:
            ws.close()
        row = get(fake, "/api/v3/klines", symbol="ETHUSDT", interval="1m",
                  startTime=closing["t"], limit=1).json()[0]
    assert row == [closing[k] for k in "tohlcvTqnVQ"] + ["0"]


def test_quiet_minutes_are_empty_candles_as_binance_sends_them():
    market = SimulatedMarket(seed=1)
    minute = next(m for m in range(29_000_000, 29_010_000) if not market.trades("BTCUSDT", m))
    empty, before = market.candle("BTCUSDT", minute), market.candle("BTCUSDT", minute - 1)
    assert (empty.trades, empty.volume, empty.first_id, empty.last_id) == (0, 0, -1, -1)
    assert empty.open == empty.high == empty.low == empty.close
    if before.trades:
        assert empty.close == before.close


def test_the_stream_refuses_other_paths_and_too_many_streams():
    with FakeExchange("simulate", max_streams=2) as fake:
        with pytest.raises(websocket.WebSocketBadStatusException) as unknown:
            websocket.create_connection(fake.ws_url + "/ws/btcusdt@bookTicker", timeout=5)
        with pytest.raises(websocket.WebSocketBadStatusException) as too_many:
            websocket.create_connection(fake.ws_url + "/stream?streams=a@ticker/b@ticker/"
                                        "c@ticker", timeout=5)
    assert unknown.value.status_code == 404 and too_many.value.status_code == 400


def test_replay_sends_captured_frames_verbatim_in_the_combined_wrapper():
    raw = (BINANCE / "ticker24_ws_1.json").read_text().strip()
    with FakeExchange("replay", frames=[BINANCE / "ticker24_ws_1.json"]) as fake:
        ws = websocket.create_connection(fake.ws_url + "/stream?streams=bnbusdt@ticker",
                                         timeout=5)
        try:
            frame = ws.recv()
        finally:
            ws.close()
    assert frame == '{"stream":"bnbusdt@ticker","data":' + raw + "}"


def test_more_blueprints_share_the_http_server():
    extra = Blueprint("extra", __name__)

    @extra.get("/bapi/c2c/ping")
    def pong():
        return jsonify(ok=True)

    with FakeExchange("simulate", blueprints=[extra]) as fake:
        assert get(fake, "/bapi/c2c/ping").json() == {"ok": True}
        assert get(fake, "/api/v3/time").status_code == 200
        wait_until(lambda: fake.binance.requests, message="a logged request")
