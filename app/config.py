"""Settings: the one place that reads the environment (and an optional .env file).

Every value is validated when loaded; a bad one raises ConfigError whose message starts
with the variable's name, so the CLI can exit with one line and no traceback.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from db.markets import EXCHANGES, P2PMarket  # config parses them; others import them here too

ENVIRONMENTS = ("development", "production", "test")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_CODE = re.compile(r"^[A-Z0-9]{2,10}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD_LENGTH = 10

DEFAULT_PACING_MS = 500
DEFAULT_URLS = {
    "BINANCE_REST_URL": "https://api.binance.com",
    "BINANCE_WS_URL": "wss://stream.binance.com:9443",
    "BINANCE_P2P_URL": "https://p2p.binance.com",
    "OKX_P2P_URL": "https://www.okx.com",
    "BYBIT_P2P_URL": "https://api2.bybit.com",
}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class IngestSettings:
    """Tuning of the spot stream, the batching writer, gap repair and leader election."""

    silence_seconds: float = 30.0
    session_max_seconds: float = 85800.0
    reconnect_base_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    gap_horizon_minutes: int = 1440
    flush_seconds: float = 0.1  # the longest a row waits for its batch to fill
    batch_rows: int = 5000
    max_pending_rows: int = 200_000
    leader_retry_seconds: float = 5.0
    retry_max_seconds: float = 5.0


# Days of raw rows kept per table (0: kept for ever), and their environment variables.
RETENTION_DEFAULTS = {"book_tickers": 14, "tickers_24h": 90, "p2p_offers": 180, "candles": 0,
                      "p2p_snapshots": 0}
RETENTION_VARIABLES = {table: f"RETENTION_{table.upper()}_DAYS" for table in RETENTION_DEFAULTS}


@dataclass(frozen=True)
class RetentionSettings:
    """How long raw rows are kept, and how often the leader cuts them."""

    keep_days: Mapping[str, int] = field(default_factory=lambda: dict(RETENTION_DEFAULTS))
    every_minutes: int = 60


@dataclass(frozen=True)
class AlertSettings:
    """Alert evaluation and delivery (evaluated and sent by the ingest leader only)."""

    enabled: bool = True
    eval_seconds: float = 5.0
    group_wait_seconds: float = 10.0
    allowed_hosts: tuple[str, ...] = ()
    smtp_url: str | None = field(default=None, repr=False)
    smtp_from: str = "p2pdash@localhost"
    send_timeout_seconds: float = 10.0
    max_attempts: int = 8
    senders: int = 4
    external_url: str | None = None


@dataclass(frozen=True)
class KioskSettings:
    """Wall screens: how often they refresh and check in, when data is stale, how long a
    device's session and setup link last, and the time zone of their clock."""

    refresh_seconds: float = 5.0
    heartbeat_seconds: float = 5.0
    # 0: per panel, three P2P poll intervals for P2P data and a minute for spot data.
    stale_seconds: int = 0
    session_days: int = 30
    link_hours: int = 24
    timezone: str = "UTC"


@dataclass(frozen=True)
class Settings:
    """Validated configuration of one p2pdash process."""

    env: str = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 8050
    threads: int = 8
    log_level: str = "INFO"
    log_format: str = "text"
    # Set by `p2pdash demo`: the exchanges are simulated, and every page says so.
    demo: bool = False
    # Hours of simulated P2P history a fresh demo database is seeded with.
    demo_history_hours: int = 24
    auto_migrate: bool = True
    ingest_enabled: bool = True
    spot_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    p2p_markets: tuple[P2PMarket, ...] = ()
    p2p_poll_seconds: int = 60
    p2p_depth: int = 20
    p2p_page_rows: int = 20
    p2p_pacing_ms: Mapping[str, int] = field(
        default_factory=lambda: dict.fromkeys(EXCHANGES, DEFAULT_PACING_MS))
    p2p_timeout_ms: int = 10000
    p2p_retries: int = 3
    p2p_backoff_ms: int = 1000
    p2p_jitter_seconds: int = 5
    endpoints: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_URLS))
    admin_user: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    login_max_failures: int = 5
    login_window_seconds: int = 900
    login_address_max_failures: int = 50
    login_slowdown_max_seconds: float = 3.0
    session_idle_minutes: int = 120
    session_max_days: int = 7
    require_admin_2fa: bool = False
    api_rate_per_minute: int = 600
    remember_days: int = 30
    secure_cookies: bool = False
    trusted_proxies: int = 0
    ingest: IngestSettings = field(default_factory=IngestSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # The longest range (days) each role may export at once; a role not named: no limit.
    export_max_days: Mapping[str, int] = field(default_factory=dict)
    # The bearer token /metrics wants; None: it answers loopback callers only.
    metrics_token: str | None = field(default=None, repr=False)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def with_database_url(self, url: str) -> Settings:
        """Return a copy pointing at a resolved database (e.g. the embedded cluster)."""
        return replace(self, database_url=url)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and validate every setting; environment variables win over the .env file."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _build(values)


def _build(values: Mapping[str, str]) -> Settings:
    env = _choice(values, "P2PDASH_ENV", ENVIRONMENTS, "development")
    data_dir = Path(values.get("P2PDASH_DATA_DIR") or "var").expanduser().absolute()
    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=_database_url(values.get("DATABASE_URL")),
        redis_url=_redis_url(values.get("REDIS_URL")),
        secret_key=_secret_key(values.get("SECRET_KEY"), env, data_dir),
        host=values.get("P2PDASH_HOST") or "127.0.0.1",
        port=_integer(values, "P2PDASH_PORT", 8050, 1, 65535),
        threads=_integer(values, "P2PDASH_THREADS", 8, 1, 256),
        log_level=_choice(values, "P2PDASH_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"),
                          "INFO", str.upper),
        log_format=_choice(values, "P2PDASH_LOG_FORMAT", ("json", "text"),
                           "json" if env == "production" else "text", str.lower),
        demo_history_hours=_integer(values, "P2PDASH_DEMO_HISTORY_HOURS", 24, 1, 24 * 7),
        auto_migrate=_boolean(values, "P2PDASH_AUTO_MIGRATE", True),
        ingest_enabled=_boolean(values, "INGEST_ENABLED", True),
        spot_symbols=_spot_symbols(values.get("SPOT_SYMBOLS")),
        p2p_markets=_p2p_markets(values.get("P2P_MARKETS")),
        p2p_poll_seconds=_integer(values, "P2P_POLL_SECONDS", 60, 5, 86400),
        p2p_depth=_integer(values, "P2P_DEPTH", 20, 1, 1000),
        # Binance answers at most 20 adverts a page; Bybit pages share the setting.
        p2p_page_rows=_integer(values, "P2P_PAGE_ROWS", 20, 1, 20),
        p2p_pacing_ms=_p2p_pacing(values.get("P2P_PACING_MS")),
        p2p_timeout_ms=_integer(values, "P2P_TIMEOUT_MS", 10000, 100, 120000),
        p2p_retries=_integer(values, "P2P_RETRIES", 3, 0, 10),
        p2p_backoff_ms=_integer(values, "P2P_BACKOFF_MS", 1000, 0, 60000),
        p2p_jitter_seconds=_integer(values, "P2P_JITTER_SECONDS", 5, 0, 3600),
        endpoints={name: _base_url(name, values.get(name) or default)
                   for name, default in DEFAULT_URLS.items()},
        ingest=_ingest_settings(values),
        alerts=_alert_settings(values),
        export_max_days=_export_limits(values.get("P2PDASH_EXPORT_MAX_DAYS")),
        metrics_token=_metrics_token(values.get("P2PDASH_METRICS_TOKEN")),
        kiosk=_kiosk_settings(values),
        retention=_retention_settings(values),
        **_auth_settings(values),
    )


def _auth_settings(values: Mapping[str, str]) -> dict[str, Any]:
    """Accounts, sessions and throttling (the first admin, the login window, cookies)."""
    chosen = {
        "admin_user": _username(values.get("P2PDASH_ADMIN_USER") or "admin"),
        "admin_password": _admin_password(values.get("P2PDASH_ADMIN_PASSWORD")),
        "login_max_failures": _integer(values, "P2PDASH_LOGIN_MAX_FAILURES", 5, 1, 1000),
        "login_window_seconds": _integer(values, "P2PDASH_LOGIN_WINDOW_SECONDS", 900, 1, 86400),
        # Failures from one address over every username: a NAT full of users is not locked
        # by one user's typos (those lock only that address and username), a sprayer is.
        "login_address_max_failures": _integer(values, "P2PDASH_LOGIN_ADDRESS_MAX_FAILURES",
                                               50, 1, 100_000),
        # A username failing from many addresses is slowed down, never locked.
        "login_slowdown_max_seconds": _number(values, "P2PDASH_LOGIN_SLOWDOWN_MAX_SECONDS",
                                              3.0, 0, 60),
        "session_idle_minutes": _integer(values, "P2PDASH_SESSION_IDLE_MINUTES", 120, 1,
                                         525_600),
        "session_max_days": _integer(values, "P2PDASH_SESSION_MAX_DAYS", 7, 1, 3650),
        "require_admin_2fa": _boolean(values, "P2PDASH_REQUIRE_ADMIN_2FA", False),
        "api_rate_per_minute": _integer(values, "P2PDASH_API_RATE_PER_MINUTE", 600, 1, 1_000_000),
        "remember_days": _integer(values, "P2PDASH_REMEMBER_DAYS", 30, 1, 3650),
        "secure_cookies": _boolean(values, "P2PDASH_SECURE_COOKIES", False),
        "trusted_proxies": _integer(values, "P2PDASH_TRUSTED_PROXIES", 0, 0, 10),
    }
    if chosen["session_idle_minutes"] > chosen["session_max_days"] * 1440:
        raise ConfigError("P2PDASH_SESSION_IDLE_MINUTES: must not be longer than "
                          f"P2PDASH_SESSION_MAX_DAYS ({chosen['session_max_days']} days)")
    return chosen


def _username(raw: str) -> str:
    value = raw.strip()
    if not USERNAME.match(value):
        raise ConfigError(f"P2PDASH_ADMIN_USER: {raw!r} is not a username (letters, digits, "
                          "'.', '_', '-', up to 64)")
    return value


def _admin_password(raw: str | None) -> str | None:
    if not raw:
        return None
    if len(raw) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"P2PDASH_ADMIN_PASSWORD: must be at least {MIN_PASSWORD_LENGTH} "
                          "characters")
    return raw


def _ingest_settings(values: Mapping[str, str]) -> IngestSettings:
    """Read the stream, writer and leader tuning; the reconnect cap must not undercut its base."""
    tuning = IngestSettings(
        silence_seconds=_number(values, "SPOT_SILENCE_SECONDS", 30.0, 0.1, 3600),
        session_max_seconds=_number(values, "SPOT_SESSION_MAX_SECONDS", 85800.0, 1, 86400),
        reconnect_base_seconds=_number(values, "SPOT_RECONNECT_BASE_SECONDS", 1.0, 0.01, 60),
        reconnect_max_seconds=_number(values, "SPOT_RECONNECT_MAX_SECONDS", 60.0, 0.01, 3600),
        gap_horizon_minutes=_integer(values, "SPOT_GAP_HORIZON_MINUTES", 1440, 1, 525600),
        # The writer commits a batch once it has INGEST_BATCH_ROWS rows or once its oldest
        # row has waited this long, whichever comes first.
        flush_seconds=_number(values, "INGEST_FLUSH_SECONDS", 0.1, 0.01, 60),
        batch_rows=_integer(values, "INGEST_BATCH_ROWS", 5000, 1, 1_000_000),
        max_pending_rows=_integer(values, "INGEST_MAX_PENDING_ROWS", 200_000, 1, 100_000_000),
        leader_retry_seconds=_number(values, "INGEST_LEADER_RETRY_SECONDS", 5.0, 0.1, 3600),
        # How long, at most, the writer waits between attempts while the database is down.
        retry_max_seconds=_number(values, "INGEST_RETRY_MAX_SECONDS", 5.0, 0.1, 600),
    )
    if tuning.reconnect_max_seconds < tuning.reconnect_base_seconds:
        raise ConfigError("SPOT_RECONNECT_MAX_SECONDS: must not be below "
                          f"SPOT_RECONNECT_BASE_SECONDS ({tuning.reconnect_base_seconds:g})")
    return tuning


def _retention_settings(values: Mapping[str, str]) -> RetentionSettings:
    """Days kept per table; 1m candles must outlive gap repair (which refills them) and the
    daily rollup's bucket, or retention would delete what repair puts back."""
    keep = {table: _integer(values, RETENTION_VARIABLES[table], days, 0, 36500)
            for table, days in RETENTION_DEFAULTS.items()}
    horizon = _integer(values, "SPOT_GAP_HORIZON_MINUTES", 1440, 1, 525600)
    if keep["candles"] and keep["candles"] * 1440 < horizon + 1440:
        raise ConfigError(f"{RETENTION_VARIABLES['candles']}: {keep['candles']} days is shorter "
                          f"than SPOT_GAP_HORIZON_MINUTES ({horizon}) plus the daily rollup's "
                          "one-day bucket; keep candles longer or shorten the horizon")
    return RetentionSettings(keep, _integer(values, "RETENTION_EVERY_MINUTES", 60, 1, 10080))


def _kiosk_settings(values: Mapping[str, str]) -> KioskSettings:
    """Read the wall screens' refresh, check-in, staleness, session and clock settings."""
    timezone = (values.get("P2PDASH_KIOSK_TIMEZONE") or "UTC").strip()
    try:
        ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigError(f"P2PDASH_KIOSK_TIMEZONE: {timezone!r} is not a time zone "
                          "(e.g. UTC, Europe/Berlin)") from None
    return KioskSettings(
        refresh_seconds=_number(values, "P2PDASH_KIOSK_REFRESH_SECONDS", 5.0, 0.5, 3600),
        heartbeat_seconds=_number(values, "P2PDASH_KIOSK_HEARTBEAT_SECONDS", 5.0, 0.5, 600),
        stale_seconds=_integer(values, "P2PDASH_KIOSK_STALE_SECONDS", 0, 0, 86400),
        session_days=_integer(values, "P2PDASH_KIOSK_SESSION_DAYS", 30, 2, 3650),
        link_hours=_integer(values, "P2PDASH_KIOSK_LINK_HOURS", 24, 1, 8760),
        timezone=timezone,
    )


def _export_limits(raw: str | None) -> dict[str, int]:
    """Parse 'analyst=366,admin=3660' into days per role."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (raw or "").split(","))):
        role, _, days = item.partition("=")
        role = role.strip().lower()
        if role not in ("analyst", "admin") or not days.strip().isascii() or \
                not days.strip().isdigit() or not 1 <= int(days) <= 100_000:
            raise ConfigError(f"P2PDASH_EXPORT_MAX_DAYS: {item!r} is not ROLE=DAYS with ROLE "
                              "analyst or admin and DAYS from 1 to 100000")
        limits[role] = int(days)
    return limits


def _metrics_token(raw: str | None) -> str | None:
    """A bearer token for /metrics: 16 to 512 token characters (RFC 6750), or unset."""
    if raw is None or not raw.strip():
        return None
    if not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,512}", raw.strip()):
        raise ConfigError("P2PDASH_METRICS_TOKEN: must be 16 to 512 characters of letters, "
                          "digits and ._~+/=- (e.g. python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')")
    return raw.strip()


def _alert_settings(values: Mapping[str, str]) -> AlertSettings:
    """Read alert evaluation and delivery settings."""
    smtp = (values.get("ALERTS_SMTP_URL") or "").strip() or None
    if smtp and not re.match(r"^smtps?://[^/\s]+", smtp):
        raise ConfigError("ALERTS_SMTP_URL: must be smtp://[USER:PASSWORD@]HOST[:PORT] "
                          "(or smtps:// for TLS)")
    sender = (values.get("ALERTS_SMTP_FROM") or "p2pdash@localhost").strip()
    if not re.match(r"^[^@\s]+@[^@\s]+$", sender):
        raise ConfigError(f"ALERTS_SMTP_FROM: {sender!r} is not an e-mail address")
    external = (values.get("P2PDASH_EXTERNAL_URL") or "").strip().rstrip("/") or None
    if external and not re.match(r"^https?://[^/\s]+", external):
        raise ConfigError("P2PDASH_EXTERNAL_URL: must be an http:// or https:// URL")
    hosts = tuple(h.strip().lower() for h in (values.get("ALERTS_WEBHOOK_ALLOWED_HOSTS") or "")
                  .split(",") if h.strip())
    for host in hosts:
        if not re.match(r"^[a-z0-9*.:\[\]-]{1,255}$", host):
            raise ConfigError(f"ALERTS_WEBHOOK_ALLOWED_HOSTS: {host!r} is not a host name "
                              "or pattern like *.corp.example")
    return AlertSettings(
        enabled=_boolean(values, "ALERTS_ENABLED", True),
        eval_seconds=_number(values, "ALERTS_EVAL_SECONDS", 5.0, 0.2, 3600),
        group_wait_seconds=_number(values, "ALERTS_GROUP_WAIT_SECONDS", 10.0, 0, 3600),
        allowed_hosts=hosts, smtp_url=smtp, smtp_from=sender,
        send_timeout_seconds=_number(values, "ALERTS_SEND_TIMEOUT_SECONDS", 10.0, 0.5, 120),
        max_attempts=_integer(values, "ALERTS_MAX_ATTEMPTS", 8, 1, 100),
        senders=_integer(values, "ALERTS_SENDERS", 4, 1, 32),
        external_url=external,
    )


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str,
            normalise: Callable[[str], str] = str.lower) -> str:
    raw = values.get(name)
    if not raw:
        return default
    value = normalise(raw.strip())
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}; got {raw!r}")
    return value


def _integer(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        number = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: must be a whole number; got {raw!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: must be from {low} to {high}; got {number}")
    return number


def _number(values: Mapping[str, str], name: str, default: float, low: float,
            high: float) -> float:
    raw = values.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        number = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: must be a number; got {raw!r}") from None
    if not low <= number <= high:  # also false for nan
        raise ConfigError(f"{name}: must be from {low:g} to {high:g}; got {raw.strip()}")
    return number


def _boolean(values: Mapping[str, str], name: str, default: bool) -> bool:
    raw = values.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}: must be true or false; got {raw!r}")


def _database_url(raw: str | None) -> str | None:
    """Accept postgres:// and postgresql:// URLs and pin the psycopg 3 driver."""
    if not raw:
        return None
    hint = "expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: not a database URL; {hint}") from None
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    else:
        raise ConfigError(f"DATABASE_URL: {url.drivername!r} is not PostgreSQL; {hint}")
    if not url.database:
        raise ConfigError(f"DATABASE_URL: names no database; {hint}")
    return url.render_as_string(hide_password=False)


def _redis_url(raw: str | None) -> str | None:
    if not raw:
        return None
    if not re.match(r"^(redis|rediss|unix)://", raw.strip()):
        raise ConfigError("REDIS_URL: must start with redis://, rediss:// or unix://")
    return raw.strip()


def _base_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme = "ws" if name.endswith("_WS_URL") else "http"
    if not re.match(rf"^{scheme}s?://[^/\s]+", value):
        raise ConfigError(f"{name}: must be a {scheme}:// or {scheme}s:// URL; got {raw!r}")
    return value


def _spot_symbols(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return Settings.spot_symbols
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    for symbol in symbols:
        if not _SYMBOL.match(symbol):
            raise ConfigError(f"SPOT_SYMBOLS: {symbol!r} is not a symbol like BTCUSDT")
    return symbols


def _p2p_markets(raw: str | None) -> tuple[P2PMarket, ...]:
    """Parse 'binance:USDT/ARS,okx:USDT/ARS' into markets."""
    markets: list[P2PMarket] = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        match = re.match(r"^\s*(\w+):(\w+)/(\w+)\s*$", item)
        if not match:
            raise ConfigError(f"P2P_MARKETS: {item.strip()!r} is not EXCHANGE:ASSET/FIAT")
        exchange, asset, fiat = match[1].lower(), match[2].upper(), match[3].upper()
        if exchange not in EXCHANGES:
            raise ConfigError(f"P2P_MARKETS: unknown exchange {exchange!r} in {item.strip()!r}; "
                              f"known: {', '.join(EXCHANGES)}")
        if not (_CODE.match(asset) and _CODE.match(fiat)):
            raise ConfigError(f"P2P_MARKETS: bad asset or fiat code in {item.strip()!r}")
        markets.append(P2PMarket(exchange, asset, fiat))
    return tuple(dict.fromkeys(markets))


def _p2p_pacing(raw: str | None) -> dict[str, int]:
    """Parse '500' (every exchange) or 'binance=1000,okx=300' (the rest keep the default)."""
    pacing = dict.fromkeys(EXCHANGES, DEFAULT_PACING_MS)
    text = (raw or "").strip()
    if not text:
        return pacing
    if "=" not in text:
        return dict.fromkeys(EXCHANGES, _pacing_value(text))
    for item in filter(None, (part.strip() for part in text.split(","))):
        exchange, _, value = item.partition("=")
        exchange = exchange.strip().lower()
        if exchange not in EXCHANGES:
            raise ConfigError(f"P2P_PACING_MS: unknown exchange {exchange!r}; "
                              f"known: {', '.join(EXCHANGES)}")
        pacing[exchange] = _pacing_value(value)
    return pacing


def _pacing_value(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError("P2P_PACING_MS: must be milliseconds, e.g. 500 or "
                          f"binance=1000,okx=500; got {raw.strip()!r}") from None
    if not 0 <= value <= 60000:
        raise ConfigError(f"P2P_PACING_MS: must be from 0 to 60000; got {value}")
    return value


def _secret_key(raw: str | None, env: str, data_dir: Path) -> str:
    """Use SECRET_KEY; outside production generate one once and keep it in the data dir."""
    if raw:
        if len(raw) < 32:
            raise ConfigError("SECRET_KEY: must be at least 32 characters")
        return raw
    if env == "production":
        raise ConfigError("SECRET_KEY: required when P2PDASH_ENV=production (generate one: "
                          "python -c 'import secrets; print(secrets.token_hex(32))')")
    return _stored_secret(data_dir / "secret_key")


def _stored_secret(path: Path) -> str:
    try:
        if path.is_file():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
    except OSError as error:
        raise ConfigError(f"P2PDASH_DATA_DIR: cannot keep the generated secret key at {path}: "
                          f"{error.strerror}") from None


def describe(settings: Settings) -> dict[str, Any]:
    """Summarise settings for logs and the UI, with every secret left out."""
    url = make_url(settings.database_url) if settings.database_url else None
    return {
        "env": settings.env,
        "database": url.render_as_string(hide_password=True) if url else "embedded",
        "cache": "redis" if settings.redis_url else "process-local",
        "ingest_enabled": settings.ingest_enabled,
        "spot_symbols": list(settings.spot_symbols),
        "p2p_markets": [str(m) for m in settings.p2p_markets],
    }
