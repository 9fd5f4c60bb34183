"""Ingest tuning settings: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, IngestSettings, load_settings


def load(tmp_path: Path, **env: str):
    return load_settings(environ={"P2PDASH_DATA_DIR": str(tmp_path), **env}, env_file=None)


def test_defaults_suit_binance(tmp_path):
    tuning = load(tmp_path).ingest
    assert tuning == IngestSettings()
    assert tuning.session_max_seconds < 86400 and tuning.silence_seconds == 30


def test_short_timings_for_tests_and_demos_are_accepted(tmp_path):
    tuning = load(tmp_path, SPOT_SILENCE_SECONDS="0.5", SPOT_RECONNECT_BASE_SECONDS="0.05",
                  SPOT_RECONNECT_MAX_SECONDS="0.2", INGEST_MAX_PENDING_ROWS="1000").ingest
    assert (tuning.silence_seconds, tuning.reconnect_base_seconds,
            tuning.max_pending_rows) == (0.5, 0.05, 1000)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("SPOT_SILENCE_SECONDS", "soon", "SPOT_SILENCE_SECONDS: must be a number"),
    ("SPOT_SILENCE_SECONDS", "nan", "SPOT_SILENCE_SECONDS: must be from 0.1 to 3600"),
    ("SPOT_SESSION_MAX_SECONDS", "90000", "SPOT_SESSION_MAX_SECONDS: must be from 1 to 86400"),
    ("SPOT_GAP_HORIZON_MINUTES", "0", "SPOT_GAP_HORIZON_MINUTES: must be from 1"),
    ("INGEST_BATCH_ROWS", "1.5", "INGEST_BATCH_ROWS: must be a whole number"),
    ("INGEST_FLUSH_SECONDS", "-1", "INGEST_FLUSH_SECONDS: must be from 0.01 to 60"),
    ("SPOT_RECONNECT_MAX_SECONDS", "0.5",
     "SPOT_RECONNECT_MAX_SECONDS: must not be below SPOT_RECONNECT_BASE_SECONDS (1)"),
])
def test_a_bad_value_names_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{name: value})
    assert str(error.value).startswith(expected)
