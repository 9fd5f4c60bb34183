"""Configuration: every setting validated, errors name the variable, secrets generated once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, P2PMarket, describe, load_settings


def load(tmp_path: Path, **env: str):
    return load_settings(environ={"P2PDASH_DATA_DIR": str(tmp_path), **env}, env_file=None)


def test_defaults_are_usable(tmp_path):
    settings = load(tmp_path)
    assert settings.port == 8050
    assert settings.host == "127.0.0.1"
    assert settings.database_url is None and settings.uses_embedded_database
    assert settings.log_format == "text"
    assert settings.endpoints["BINANCE_WS_URL"].startswith("wss://")


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("P2PDASH_PORT", "99999", "P2PDASH_PORT: must be from 1 to 65535"),
    ("P2PDASH_PORT", "http", "P2PDASH_PORT: must be a whole number"),
    ("DATABASE_URL", "nonsense", "DATABASE_URL: not a database URL"),
    ("DATABASE_URL", "mysql://u:p@h/db", "DATABASE_URL: 'mysql' is not PostgreSQL"),
    ("DATABASE_URL", "postgresql://u:p@h", "DATABASE_URL: names no database"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL: must start with redis://"),
    ("INGEST_ENABLED", "maybe", "INGEST_ENABLED: must be true or false"),
    ("P2PDASH_ENV", "staging", "P2PDASH_ENV: must be one of"),
    ("P2P_MARKETS", "binance-USDT-ARS", "P2P_MARKETS: 'binance-USDT-ARS' is not EXCHANGE:"),
    ("P2P_MARKETS", "kraken:USDT/ARS", "P2P_MARKETS: unknown exchange 'kraken'"),
    ("SPOT_SYMBOLS", "BTC/USDT", "SPOT_SYMBOLS: 'BTC/USDT' is not a symbol"),
    ("BINANCE_WS_URL", "https://x", "BINANCE_WS_URL: must be a ws:// or wss:// URL"),
    ("P2P_POLL_SECONDS", "1", "P2P_POLL_SECONDS: must be from 5 to 86400"),
    ("P2PDASH_DEMO_HISTORY_HOURS", "0", "P2PDASH_DEMO_HISTORY_HOURS: must be from 1 to 168"),
    ("SECRET_KEY", "short", "SECRET_KEY: must be at least 32 characters"),
])
def test_bad_value_names_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{name: value})
    assert str(error.value).startswith(expected)


def test_postgres_urls_get_the_psycopg3_driver(tmp_path):
    settings = load(tmp_path, DATABASE_URL="postgres://me:pw@db.example:5433/p2p")
    assert settings.database_url == "postgresql+psycopg://me:pw@db.example:5433/p2p"


def test_markets_and_symbols_are_parsed_and_deduplicated(tmp_path):
    settings = load(tmp_path, P2P_MARKETS="binance:usdt/ars, okx:USDT/ARS,binance:USDT/ARS",
                    SPOT_SYMBOLS="btcusdt,ETHUSDT,BTCUSDT")
    assert settings.p2p_markets == (P2PMarket("binance", "USDT", "ARS"),
                                    P2PMarket("okx", "USDT", "ARS"))
    assert settings.spot_symbols == ("BTCUSDT", "ETHUSDT")


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = load(tmp_path).secret_key
    second = load(tmp_path).secret_key
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^SECRET_KEY: required when P2PDASH_ENV=production"):
        load(tmp_path, P2PDASH_ENV="production")
    assert not (tmp_path / "secret_key").exists()
    assert load(tmp_path, P2PDASH_ENV="production", SECRET_KEY="k" * 40).log_format == "json"


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("P2PDASH_PORT=9000\nSPOT_SYMBOLS=SOLUSDT\n")
    settings = load_settings(environ={"P2PDASH_DATA_DIR": str(tmp_path), "P2PDASH_PORT": "9100"},
                             env_file=env_file)
    assert settings.port == 9100
    assert settings.spot_symbols == ("SOLUSDT",)


def test_describe_hides_passwords(tmp_path):
    settings = load(tmp_path, DATABASE_URL="postgresql://me:hunter2hunter2@db/p2p")
    assert "hunter2" not in str(describe(settings))


@pytest.mark.parametrize(("name", "value"), [("DATABASE_URL", "nonsense"),
                                             ("P2PDASH_PORT", "99999")])
def test_cli_exits_with_one_line_naming_the_variable(tmp_path, name, value):
    result = subprocess.run(
        [sys.executable, "-m", "app", "run"],
        check=False, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "P2PDASH_DATA_DIR": str(tmp_path), name: value},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("P2PDASH_ADMIN_PASSWORD", "short", "P2PDASH_ADMIN_PASSWORD: must be at least 10"),
    ("P2PDASH_ADMIN_USER", "has space", "P2PDASH_ADMIN_USER: 'has space' is not a username"),
    ("P2PDASH_LOGIN_WINDOW_SECONDS", "0", "P2PDASH_LOGIN_WINDOW_SECONDS: must be from 1"),
    ("P2PDASH_LOGIN_MAX_FAILURES", "x", "P2PDASH_LOGIN_MAX_FAILURES: must be a whole number"),
    ("P2PDASH_SECURE_COOKIES", "maybe", "P2PDASH_SECURE_COOKIES: must be true or false"),
    ("P2PDASH_TRUSTED_PROXIES", "11", "P2PDASH_TRUSTED_PROXIES: must be from 0 to 10"),
])
def test_bad_auth_setting_names_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError, match=expected):
        load(tmp_path, **{name: value})


def test_auth_defaults_and_the_admin_password_stays_out_of_logs(tmp_path):
    settings = load(tmp_path, P2PDASH_ADMIN_PASSWORD="first-admin-secret")
    assert (settings.admin_user, settings.login_max_failures, settings.login_window_seconds,
            settings.remember_days, settings.secure_cookies) == ("admin", 5, 900, 30, False)
    assert "first-admin-secret" not in repr(settings) + str(describe(settings))
    assert load(tmp_path).admin_password is None
