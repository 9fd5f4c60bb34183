"""The whole data model of DESIGN.md section 3; hypertables when TimescaleDB is present.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from alembic import op

from db.timescale import ensure_extension, make_hypertable

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RELATIONAL = """
CREATE TABLE runs (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('p2p_poll', 'p2p_push', 'klines_backfill',
                                               'ws_session', 'gap_repair')),
    market       text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    received     integer NOT NULL DEFAULT 0,
    inserted     integer NOT NULL DEFAULT 0,
    duplicates   integer NOT NULL DEFAULT 0,
    rejected     integer NOT NULL DEFAULT 0,
    error        text,
    params       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_source_started_idx ON runs (source, started_at DESC);
CREATE INDEX runs_status_started_idx ON runs (status, started_at DESC);

CREATE TABLE ingest_errors (
    id       bigserial PRIMARY KEY,
    run_id   bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    level    text NOT NULL DEFAULT 'error' CHECK (level IN ('warning', 'error')),
    message  text NOT NULL,
    payload  text
);
CREATE INDEX ingest_errors_run_idx ON ingest_errors (run_id, at);

CREATE TABLE p2p_snapshots (
    id           bigserial PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES runs (id),
    exchange     text NOT NULL,
    asset        text NOT NULL,
    fiat         text NOT NULL,
    side         text NOT NULL CHECK (side IN ('ask', 'bid')),
    captured_at  timestamptz NOT NULL,
    offers       integer NOT NULL DEFAULT 0,
    complete     boolean NOT NULL DEFAULT false,
    UNIQUE (exchange, asset, fiat, side, captured_at)
);
CREATE INDEX p2p_snapshots_latest_idx
    ON p2p_snapshots (exchange, asset, fiat, side, captured_at DESC) WHERE complete;
CREATE INDEX p2p_snapshots_run_idx ON p2p_snapshots (run_id);

CREATE TABLE payment_methods (
    id             serial PRIMARY KEY,
    exchange       text NOT NULL,
    identifier     text NOT NULL,
    name           text,
    canonical      text,
    fiat           text,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (exchange, identifier)
);

CREATE TABLE users (
    id             serial PRIMARY KEY,
    username       text NOT NULL,
    email          text,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('kiosk', 'trader', 'analyst', 'admin')),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE api_keys (
    id            serial PRIMARY KEY,
    user_id       integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE,
    key_hash      text NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE alert_rules (
    id                serial PRIMARY KEY,
    user_id           integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              text NOT NULL,
    metric            text NOT NULL,
    market            jsonb NOT NULL,
    condition         text NOT NULL CHECK (condition IN ('>', '>=', '<', '<=')),
    threshold         numeric NOT NULL,
    for_seconds       integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
    cooldown_seconds  integer NOT NULL DEFAULT 300 CHECK (cooldown_seconds >= 0),
    state             text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'pending', 'firing')),
    state_since       timestamptz NOT NULL DEFAULT now(),
    last_value        numeric,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_user_idx ON alert_rules (user_id);

CREATE TABLE alert_events (
    id          bigserial PRIMARY KEY,
    rule_id     integer NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    value       numeric,
    message     text
);
CREATE INDEX alert_events_rule_idx ON alert_events (rule_id, at DESC);

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text,
    action   text NOT NULL,
    target   text,
    ip       text,
    details  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);
"""

TIME_SERIES = """
CREATE TABLE p2p_offers (
    captured_at        timestamptz NOT NULL,
    run_id             bigint NOT NULL REFERENCES runs (id),
    exchange           text NOT NULL,
    asset              text NOT NULL,
    fiat               text NOT NULL,
    side               text NOT NULL CHECK (side IN ('ask', 'bid')),
    offer_id           text NOT NULL,
    price              numeric NOT NULL CHECK (price > 0),
    available          numeric CHECK (available >= 0),
    min_fiat           numeric CHECK (min_fiat >= 0),
    max_fiat           numeric CHECK (max_fiat >= 0),
    advertiser_id      text,
    advertiser_name    text,
    is_merchant        boolean NOT NULL DEFAULT false,
    month_orders       integer,
    month_finish_rate  numeric CHECK (month_finish_rate BETWEEN 0 AND 1),
    rank               integer,
    payment_methods    text[] NOT NULL DEFAULT '{}',
    UNIQUE (exchange, offer_id, captured_at)
);
CREATE INDEX p2p_offers_market_idx ON p2p_offers (exchange, asset, fiat, side, captured_at DESC);
CREATE INDEX p2p_offers_run_idx ON p2p_offers (run_id);

CREATE TABLE candles (
    exchange            text NOT NULL,
    symbol              text NOT NULL,
    interval            text NOT NULL,
    open_time           timestamptz NOT NULL,
    open                numeric NOT NULL,
    high                numeric NOT NULL,
    low                 numeric NOT NULL,
    close               numeric NOT NULL,
    volume              numeric NOT NULL,
    close_time          timestamptz NOT NULL,
    trades              bigint NOT NULL,
    quote_volume        numeric NOT NULL,
    taker_base_volume   numeric NOT NULL,
    taker_quote_volume  numeric NOT NULL,
    is_closed           boolean NOT NULL,
    PRIMARY KEY (exchange, symbol, interval, open_time)
);

CREATE TABLE book_tickers (
    exchange  text NOT NULL,
    symbol    text NOT NULL,
    ts        timestamptz NOT NULL,
    bid       numeric NOT NULL,
    bid_qty   numeric NOT NULL,
    ask       numeric NOT NULL,
    ask_qty   numeric NOT NULL,
    PRIMARY KEY (exchange, symbol, ts)
);

CREATE TABLE tickers_24h (
    exchange      text NOT NULL,
    symbol        text NOT NULL,
    ts            timestamptz NOT NULL,
    last          numeric NOT NULL,
    open          numeric,
    high          numeric,
    low           numeric,
    change_pct    numeric,
    volume        numeric,
    quote_volume  numeric,
    trades        bigint,
    PRIMARY KEY (exchange, symbol, ts)
);
"""

# Chunk intervals sized for the data rates: P2P books (20 markets x 2 sides x 20 adverts a
# minute, ~1M rows a day) and one-second tickers (86,400 rows a symbol a day) get one-day
# chunks; 1m candles (1,440 a symbol a day, years of backfill) get one-week chunks.
CHUNKS = {
    "p2p_offers": ("captured_at", "1 day"),
    "candles": ("open_time", "7 days"),
    "book_tickers": ("ts", "1 day"),
    "tickers_24h": ("ts", "1 day"),
}


def upgrade() -> None:
    bind = op.get_bind()
    timescaledb = ensure_extension(bind)
    op.execute(RELATIONAL)
    op.execute(TIME_SERIES)
    if timescaledb:
        for table, (column, interval) in CHUNKS.items():
            make_hypertable(bind, table, column, interval)


def downgrade() -> None:
    for table in ("tickers_24h", "book_tickers", "candles", "p2p_offers", "audit_log",
                  "alert_events", "alert_rules", "api_keys", "users", "payment_methods",
                  "p2p_snapshots", "ingest_errors", "runs"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
