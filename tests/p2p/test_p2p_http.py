"""The P2P HTTP client's pacing and backoff, with a recorded clock instead of real waiting."""

from __future__ import annotations

import pytest
import requests

from ingest import p2p_http
from ingest.fake.p2p import FakeP2P, serving
from ingest.p2p_http import ExchangeClient, HttpPolicy, Pacer, captcha_in


class Clock:
    """A clock that only moves when something sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(p2p_http, "monotonic", clock.monotonic)
    monkeypatch.setattr(p2p_http, "sleep", clock.sleep)
    return clock


def test_a_pacer_spaces_calls_by_its_interval(clock):
    pacer = Pacer(0.5)
    for _ in range(3):
        pacer.wait()
    assert clock.sleeps == [0.5, 0.5]


def test_backoff_doubles_and_retry_after_wins(clock):
    fake = FakeP2P()
    with serving(fake) as url:
        client = ExchangeClient("okx", url, HttpPolicy(timeout=2, retries=3, backoff=0.25,
                                                       pacing=0))
        fake.inject("okx", "503", times=2)
        fake.inject("okx", "429")  # carries Retry-After: 0
        answer = client.get_json("/v3/c2c/tradingOrders/books", {
            "quoteCurrency": "ars", "baseCurrency": "usdt", "side": "sell",
            "paymentMethod": "all", "userType": "all"})
    assert answer["code"] == 0
    assert clock.sleeps == [0.25, 0.5, 0]


def test_pacers_are_shared_per_exchange():
    assert p2p_http.pacer_for("binance", 0.5) is p2p_http.pacer_for("binance", 0.5)
    assert p2p_http.pacer_for("binance", 0.5) is not p2p_http.pacer_for("okx", 0.5)


def test_a_json_answer_is_never_taken_for_a_captcha():
    response = requests.models.Response()
    response.status_code = 200
    response.headers["content-type"] = "application/json"
    response._content = b'{"msg": "captcha wording inside data"}'
    assert captcha_in(response) is False
    response.headers["x-amzn-waf-action"] = "captcha"
    assert captcha_in(response) is True
