"""P2P settings: defaults, per-exchange pacing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings


def load(tmp_path: Path, **env: str):
    return load_settings(environ={"P2PDASH_DATA_DIR": str(tmp_path), **env}, env_file=None)


def test_p2p_defaults(tmp_path):
    settings = load(tmp_path)
    assert (settings.p2p_depth, settings.p2p_page_rows, settings.p2p_timeout_ms,
            settings.p2p_retries, settings.p2p_backoff_ms, settings.p2p_jitter_seconds) == (
        20, 20, 10000, 3, 1000, 5)
    assert settings.p2p_pacing_ms == {"binance": 500, "okx": 500, "bybit": 500}


def test_pacing_for_all_or_per_exchange(tmp_path):
    assert load(tmp_path, P2P_PACING_MS="250").p2p_pacing_ms == {
        "binance": 250, "okx": 250, "bybit": 250}
    assert load(tmp_path, P2P_PACING_MS="binance=1000, OKX=300").p2p_pacing_ms == {
        "binance": 1000, "okx": 300, "bybit": 500}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("P2P_PAGE_ROWS", "21", "P2P_PAGE_ROWS: must be from 1 to 20"),
    ("P2P_DEPTH", "0", "P2P_DEPTH: must be from 1 to 1000"),
    ("P2P_PACING_MS", "kraken=5", "P2P_PACING_MS: unknown exchange 'kraken'"),
    ("P2P_PACING_MS", "fast", "P2P_PACING_MS: must be milliseconds"),
    ("P2P_PACING_MS", "okx=-1", "P2P_PACING_MS: must be from 0 to 60000"),
    ("P2P_TIMEOUT_MS", "10s", "P2P_TIMEOUT_MS: must be a whole number"),
    ("P2P_RETRIES", "11", "P2P_RETRIES: must be from 0 to 10"),
    ("P2P_BACKOFF_MS", "-1", "P2P_BACKOFF_MS: must be from 0 to 60000"),
    ("P2P_JITTER_SECONDS", "x", "P2P_JITTER_SECONDS: must be a whole number"),
])
def test_a_bad_p2p_value_names_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{name: value})
    assert str(error.value).startswith(expected)
