"""Fixtures of the P2P views' browser tests: the fake P2P exchange (simulated books on a
clock the test can set), the fake spot exchange, settings pointing at both, and 90 minutes
of P2P history stored through the real pollers' connector, normaliser and store.

Import them into a test module:
`from tests.browser.p2p_fixtures import fake, p2p_clock, p2p_data, p2p_url, settings`.
"""

from __future__ import annotations

import pytest

from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import Simulation
from ingest.fake.server import FakeExchange
from tests.conftest import make_settings
from tests.views_support import QUICK_INGEST, SimClock, p2p_history

MARKETS = ("binance:USDT/ARS", "okx:USDT/ARS", "binance:BTC/ARS")
SYMBOLS = ("BTCUSDT",)
HISTORY_MINUTES = 90


@pytest.fixture
def p2p_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def p2p_url(p2p_clock):
    fake = FakeP2P(simulation=Simulation(period=60, clock=p2p_clock))
    with serving(fake) as url:
        yield url


@pytest.fixture
def fake():
    with FakeExchange("simulate", symbols=SYMBOLS) as fake:
        yield fake


@pytest.fixture
def settings(database_url, tmp_path, fake, p2p_url):
    return make_settings(tmp_path, DATABASE_URL=database_url, SPOT_SYMBOLS=",".join(SYMBOLS),
                         P2P_MARKETS=",".join(MARKETS), P2P_PACING_MS="0",
                         **QUICK_INGEST, **{**fake.environment(), "BINANCE_P2P_URL": p2p_url,
                                            "OKX_P2P_URL": p2p_url, "BYBIT_P2P_URL": p2p_url})


@pytest.fixture
def p2p_data(app, settings, p2p_clock):
    """90 minutes of polls every 3 minutes, then one live poll, of every market."""
    p2p_history(settings, app.extensions["p2pdash"].engine, p2p_clock,
                minutes=HISTORY_MINUTES, every=3)
