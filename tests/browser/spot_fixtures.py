"""Fixtures of the spot views' browser tests: the fake exchange, settings pointing at it, and
the real ingestion service feeding the test database while a test runs.

Import them into a test module: `from tests.browser.spot_fixtures import fake, feed, settings`.
"""

from __future__ import annotations

import pytest

from ingest.fake.server import FakeExchange
from tests.conftest import make_settings
from tests.views_support import QUICK_INGEST, spot_ingest

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
def fake():
    with FakeExchange("simulate", symbols=SYMBOLS) as fake:
        yield fake


@pytest.fixture
def settings(database_url, tmp_path, fake):
    return make_settings(tmp_path, DATABASE_URL=database_url, SPOT_SYMBOLS=",".join(SYMBOLS),
                         **QUICK_INGEST, **fake.environment())


@pytest.fixture
def feed(settings):
    with spot_ingest(settings, SYMBOLS) as service:
        yield service
