"""Sign-in hardening: attempt counters, server-side sessions, TOTP and recovery codes.

Revision ID: 0004
Revises: 0003_alerting
Create Date: 2026-12-02

auth_counters holds one row per throttled scope and key (an address, an address and a
username, a username); an attempt is one UPSERT ... RETURNING on it, so parallel attempts
cannot overshoot the limit. sessions are the rows behind session and remember cookies,
which carry only a random token whose SHA-256 is stored here. user_totp keeps the TOTP
secret as a Fernet token (app/auth/totp.py), never in clear; recovery codes are hashes.
"""

from alembic import op

revision = "0004"
down_revision = "0003_alerting"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE auth_counters (
    scope         text NOT NULL,
    key           text NOT NULL,
    window_start  timestamptz NOT NULL DEFAULT now(),
    hits          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);
CREATE INDEX auth_counters_window_idx ON auth_counters (window_start);

CREATE TABLE sessions (
    id              bigserial PRIMARY KEY,
    user_id         integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      text NOT NULL UNIQUE,
    remember        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    ip              text CHECK (length(ip) <= 64),
    user_agent      text CHECK (length(user_agent) <= 256),
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

CREATE TABLE user_totp (
    user_id       integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    last_step     bigint NOT NULL DEFAULT 0
);

CREATE TABLE user_recovery_codes (
    id          serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz,
    UNIQUE (user_id, code_hash)
);
"""

DOWNGRADE = """
DROP TABLE user_recovery_codes;
DROP TABLE user_totp;
DROP TABLE sessions;
DROP TABLE auth_counters;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
