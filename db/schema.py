"""The data model (DESIGN.md section 3) as SQLAlchemy Core tables, for queries.

The database itself is created by the Alembic migrations in db/migrations; a test checks
that the migrated database and these tables agree, column for column.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()


def _ts(name: str, **kw: object) -> Column:
    return Column(name, DateTime(timezone=True), **kw)


def _created() -> Column:
    return _ts("created_at", nullable=False, server_default=func.now())


runs = Table(
    "runs", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("market", Text),
    _ts("started_at", nullable=False, server_default=func.now()),
    _ts("finished_at"),
    Column("status", Text, nullable=False, server_default="running"),
    Column("received", Integer, nullable=False, server_default="0"),
    Column("inserted", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("params", JSONB, nullable=False, server_default="{}"),
)

ingest_errors = Table(
    "ingest_errors", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("run_id", BigInteger, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    _ts("at", nullable=False, server_default=func.now()),
    Column("level", Text, nullable=False, server_default="error"),
    Column("message", Text, nullable=False),
    Column("payload", Text),
)

# Long jobs (backfills) queued by pages and executed by the ingest leader (db/jobs.py).
jobs = Table(
    "jobs", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("params", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("requested_by", Text),
    _created(),
    _ts("started_at"),
    _ts("finished_at"),
    _ts("heartbeat_at"),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("run_id", BigInteger, ForeignKey("runs.id", ondelete="SET NULL")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("checkpoint", JSONB),
    Column("error", Text),
)

p2p_snapshots = Table(
    "p2p_snapshots", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("run_id", BigInteger, ForeignKey("runs.id"), nullable=False),
    Column("exchange", Text, nullable=False),
    Column("asset", Text, nullable=False),
    Column("fiat", Text, nullable=False),
    Column("side", Text, nullable=False),
    _ts("captured_at", nullable=False),
    Column("offers", Integer, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="false"),
    # Aggregates of the stored offers (0002_p2p), so history needs no scan of p2p_offers.
    Column("best_price", Numeric),
    Column("liquidity", Numeric),
)

p2p_offers = Table(
    "p2p_offers", metadata,
    _ts("captured_at", nullable=False),
    Column("run_id", BigInteger, ForeignKey("runs.id"), nullable=False),
    Column("exchange", Text, nullable=False),
    Column("asset", Text, nullable=False),
    Column("fiat", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("offer_id", Text, nullable=False),
    Column("price", Numeric, nullable=False),
    Column("available", Numeric),
    Column("min_fiat", Numeric),
    Column("max_fiat", Numeric),
    Column("advertiser_id", Text),
    Column("advertiser_name", Text),
    Column("is_merchant", Boolean, nullable=False, server_default="false"),
    Column("month_orders", Integer),
    Column("month_finish_rate", Numeric),
    Column("rank", Integer),
    Column("payment_methods", ARRAY(Text), nullable=False, server_default="{}"),
)

payment_methods = Table(
    "payment_methods", metadata,
    Column("id", Integer, primary_key=True),
    Column("exchange", Text, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("name", Text),
    Column("canonical", Text),
    Column("fiat", Text),
    _ts("first_seen_at", nullable=False, server_default=func.now()),
)

def _candle_columns() -> list[Column]:
    return [
        Column("exchange", Text, nullable=False),
        Column("symbol", Text, nullable=False),
        Column("interval", Text, nullable=False),
        _ts("open_time", nullable=False),
        Column("open", Numeric, nullable=False),
        Column("high", Numeric, nullable=False),
        Column("low", Numeric, nullable=False),
        Column("close", Numeric, nullable=False),
        Column("volume", Numeric, nullable=False),
        _ts("close_time", nullable=False),
        Column("trades", BigInteger, nullable=False),
        Column("quote_volume", Numeric, nullable=False),
        Column("taker_base_volume", Numeric, nullable=False),
        Column("taker_quote_volume", Numeric, nullable=False),
        Column("is_closed", Boolean, nullable=False),
    ]


# Closed candles (and open ones written before migration 0011), one per series and open time.
candles = Table("candles", metadata, *_candle_columns())

# Each series' open candle, one row per exchange, symbol and interval, in an UNLOGGED table
# (migration 0011): updated on every kline frame of its minute, and rebuilt by the stream
# within seconds should a crash empty it.
candles_live = Table("candles_live", metadata, *_candle_columns())

# What readers read: `candles` and every open candle not yet stored closed (a view, so it
# lives in a MetaData of its own: nothing creates or empties it as a table).
views = MetaData()
candles_all = Table("candles_all", views, *_candle_columns())

# 1h and 1d candles the leader recomputes from raw candles (db/rollups.py, migration 0007).
candle_rollups = Table(
    "candle_rollups", metadata,
    Column("exchange", Text, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("interval", Text, primary_key=True),
    _ts("open_time", primary_key=True),
    Column("open", Numeric, nullable=False),
    Column("high", Numeric, nullable=False),
    Column("low", Numeric, nullable=False),
    Column("close", Numeric, nullable=False),
    Column("volume", Numeric, nullable=False),
    _ts("close_time", nullable=False),
    Column("trades", BigInteger, nullable=False),
    Column("quote_volume", Numeric, nullable=False),
    Column("taker_base_volume", Numeric, nullable=False),
    Column("taker_quote_volume", Numeric, nullable=False),
    Column("minutes", Integer, nullable=False),
    _ts("computed_at", nullable=False, server_default=func.now()),
)

# Per market, side and closed hour: what its complete snapshots said (0009_p2p_hourly), kept
# by the leader from p2p_snapshots and never cut by retention (db/p2p_rollups.py).
p2p_hourly = Table(
    "p2p_hourly", metadata,
    Column("exchange", Text, primary_key=True),
    Column("asset", Text, primary_key=True),
    Column("fiat", Text, primary_key=True),
    Column("side", Text, primary_key=True),
    _ts("bucket", primary_key=True),
    Column("snapshots", Integer, nullable=False),
    _ts("first_at", nullable=False),
    _ts("last_at", nullable=False),
    Column("last_price", Numeric),
    Column("last_liquidity", Numeric),
    Column("last_offers", Integer, nullable=False),
    Column("min_price", Numeric),
    Column("max_price", Numeric),
    Column("avg_liquidity", Numeric),
    _ts("computed_at", nullable=False, server_default=func.now()),
)

book_tickers = Table(
    "book_tickers", metadata,
    Column("exchange", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    _ts("ts", nullable=False),
    Column("bid", Numeric, nullable=False),
    Column("bid_qty", Numeric, nullable=False),
    Column("ask", Numeric, nullable=False),
    Column("ask_qty", Numeric, nullable=False),
)

tickers_24h = Table(
    "tickers_24h", metadata,
    Column("exchange", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    _ts("ts", nullable=False),
    Column("last", Numeric, nullable=False),
    Column("open", Numeric),
    Column("high", Numeric),
    Column("low", Numeric),
    Column("change_pct", Numeric),
    Column("volume", Numeric),
    Column("quote_volume", Numeric),
    Column("trades", BigInteger),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False),
    Column("email", Text),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    _created(),
    _ts("last_login_at"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    _created(),
    _ts("last_used_at"),
    _ts("expires_at"),
    _ts("revoked_at"),
)

contact_points = Table(
    "contact_points", metadata,
    Column("id", Integer, primary_key=True),
    # NULL: a shared contact point, added by an admin.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    # What may be shown: the URL with its secrets masked, or the e-mail address.
    Column("target", Text, nullable=False),
    # A Fernet token of the URL and the signing secret (app/alerts/secrets.py).
    Column("secret", LargeBinary, nullable=False),
    Column("signed", Boolean, nullable=False, server_default="false"),
    _created(),
    _ts("updated_at", nullable=False, server_default=func.now()),
    Column("failing", Boolean, nullable=False, server_default="false"),
    Column("last_error", Text),
    _ts("last_attempt_at"),
    _ts("last_ok_at"),
)

alert_rules = Table(
    "alert_rules", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("subject", JSONB, nullable=False),
    Column("filters", JSONB, nullable=False, server_default="{}"),
    Column("condition", Text, nullable=False),
    Column("threshold", Numeric),
    Column("low", Numeric),
    Column("high", Numeric),
    Column("window_seconds", Integer),
    Column("direction", Text),
    Column("for_seconds", Integer, nullable=False, server_default="0"),
    Column("keep_firing_for_seconds", Integer, nullable=False, server_default="0"),
    Column("repeat_seconds", Integer, nullable=False, server_default="14400"),
    Column("nodata_seconds", Integer),
    Column("nodata_state", Text, nullable=False, server_default="nodata"),
    Column("error_state", Text, nullable=False, server_default="error"),
    Column("labels", JSONB, nullable=False, server_default="{}"),
    Column("note", Text),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    _ts("muted_until"),
    _created(),
    _ts("updated_at", nullable=False, server_default=func.now()),
)

alert_rule_contacts = Table(
    "alert_rule_contacts", metadata,
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"),
           primary_key=True),
    Column("contact_point_id", Integer, ForeignKey("contact_points.id", ondelete="CASCADE"),
           primary_key=True),
)

alert_states = Table(
    "alert_states", metadata,
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"),
           primary_key=True),
    Column("state", Text, nullable=False, server_default="normal"),
    _ts("since", nullable=False, server_default=func.now()),
    _ts("active_since"),
    _ts("condition_since"),
    Column("value", Numeric),
    _ts("data_at"),
    Column("run_id", BigInteger),
    Column("last_true", Boolean, nullable=False, server_default="false"),
    _ts("evaluated_at"),
    Column("notified", Boolean, nullable=False, server_default="false"),
    _ts("last_notified_at"),
    Column("error", Text),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
    _ts("at", nullable=False, server_default=func.now()),
    Column("from_state", Text, nullable=False),
    Column("to_state", Text, nullable=False),
    Column("value", Numeric),
    Column("threshold", Text),
    _ts("data_at"),
    Column("run_id", BigInteger),
    Column("silenced", Boolean, nullable=False, server_default="false"),
    Column("message", Text),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE")),
    Column("matchers", JSONB, nullable=False, server_default="[]"),
    _ts("starts_at", nullable=False),
    _ts("ends_at", nullable=False),
    Column("comment", Text),
    _created(),
)

notification_outbox = Table(
    "notification_outbox", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE")),
    Column("event_id", BigInteger, ForeignKey("alert_events.id", ondelete="SET NULL")),
    Column("contact_point_id", Integer, ForeignKey("contact_points.id", ondelete="CASCADE"),
           nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("payload", JSONB, nullable=False),
    _created(),
    _ts("due_at", nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("sent_at"),
    Column("last_error", Text),
)

notification_attempts = Table(
    "notification_attempts", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("outbox_id", BigInteger, ForeignKey("notification_outbox.id", ondelete="CASCADE"),
           nullable=False),
    _ts("at", nullable=False, server_default=func.now()),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("duration_ms", Integer),
)

auth_counters = Table(
    "auth_counters", metadata,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    _ts("window_start", nullable=False, server_default=func.now()),
    Column("hits", Integer, nullable=False, server_default="0"),
)

sessions = Table(
    "sessions", metadata,
    Column("id", BigInteger, primary_key=True),
    # Exactly one of user_id and device_id: a user's sign-in or a kiosk device's.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    # SHA-256 of the random token the cookies carry; never the token itself.
    Column("token_hash", Text, nullable=False, unique=True),
    Column("remember", Boolean, nullable=False, server_default="false"),
    _created(),
    _ts("last_seen_at", nullable=False, server_default=func.now()),
    _ts("expires_at", nullable=False),
    Column("ip", Text),
    Column("user_agent", Text),
    _ts("revoked_at"),
    Column("revoked_reason", Text),
    Column("device_id", Integer, ForeignKey("kiosk_devices.id", ondelete="CASCADE")),
)

user_totp = Table(
    "user_totp", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # A Fernet token of the base32 secret (app/auth/totp.py).
    Column("secret", LargeBinary, nullable=False),
    _created(),
    _ts("confirmed_at"),
    # The newest time step a code was accepted for: a code is never accepted twice.
    Column("last_step", BigInteger, nullable=False, server_default="0"),
)

user_recovery_codes = Table(
    "user_recovery_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", Text, nullable=False),
    _created(),
    _ts("used_at"),
)

playlists = Table(
    "playlists", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    # [{"view": "wall" | "/page?query", "dwell": seconds}, ...] (app/kiosk/playlists.py)
    Column("views", JSONB, nullable=False, server_default="[]"),
    _created(),
    _ts("updated_at", nullable=False, server_default=func.now()),
)

kiosk_devices = Table(
    "kiosk_devices", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("playlist_id", Integer, ForeignKey("playlists.id", ondelete="SET NULL")),
    _created(),
    Column("created_by", Text),
    # SHA-256 of the setup link's token, usable once before setup_expires_at.
    Column("setup_token_hash", Text, unique=True),
    _ts("setup_expires_at"),
    _ts("setup_used_at"),
    _ts("last_seen_at"),
    Column("last_ip", Text),
    Column("last_user_agent", Text),
    Column("showing", Text),
    _ts("revoked_at"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True),
    _ts("at", nullable=False, server_default=func.now()),
    Column("actor", Text),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("ip", Text),
    Column("details", JSONB, nullable=False, server_default="{}"),
)

HYPERTABLES = ("p2p_offers", "candles", "book_tickers", "tickers_24h")
