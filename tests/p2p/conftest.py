"""Fixtures of the P2P tests: a migrated database, the fake P2P exchange on loopback, settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import Simulation
from tests.conftest import make_settings
from tests.fixtures_path import shared_fixtures

CAPTURES = shared_fixtures() / "p2p"


def capture(name: str) -> Any:
    """A real capture, numbers as Decimal (as the pollers read them)."""
    return json.loads((CAPTURES / name).read_text("utf-8"), parse_float=Decimal)


@pytest.fixture
def fake() -> FakeP2P:
    """The fake exchange replaying the real captures (no simulation)."""
    return FakeP2P(captures_dir=CAPTURES, slow_seconds=1.5)


@pytest.fixture
def fake_url(fake: FakeP2P) -> Iterator[str]:
    with serving(fake) as url:
        yield url


NOON = 1_714_564_800.0  # a fixed clock: every request sees the same period's books


@pytest.fixture
def simulated() -> Iterator[tuple[FakeP2P, str]]:
    """The fake exchange serving a simulated book, fixed in time."""
    fake = FakeP2P(simulation=Simulation(clock=lambda: NOON, adverts=30))
    with serving(fake) as url:
        yield fake, url


def p2p_settings(tmp_path: Path, database_url: str, url: str, **env: str) -> Settings:
    """Settings pointing every P2P endpoint at the fake, with quick retries and no pacing."""
    base = {"DATABASE_URL": database_url, "BINANCE_P2P_URL": url, "OKX_P2P_URL": url,
            "BYBIT_P2P_URL": url, "P2P_PACING_MS": "0", "P2P_BACKOFF_MS": "1",
            "P2P_TIMEOUT_MS": "500", "P2P_RETRIES": "2"}
    return make_settings(tmp_path, **{**base, **env})


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_url: str) -> Settings:
    return p2p_settings(tmp_path, database_url, fake_url)
