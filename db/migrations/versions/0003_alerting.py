"""Alerting: rules, their states and transitions, contact points, silences, an outbox.

Revision ID: 0003_alerting
Revises: 0002_p2p
Create Date: 2026-12-01

The first schema's alert_rules and alert_events were never used by any code: they are
replaced by the model of the alerting issue. The outbox (notification_outbox) is written in
the transaction that changes a rule's state, so a crash never loses a notification; its
idempotency_key is unique, so none is queued twice. Contact point URLs and secrets are
stored as Fernet tokens (app/alerts/secrets.py), never in clear.
"""

from alembic import op

revision = "0003_alerting"
down_revision = "0002_p2p"
branch_labels = None
depends_on = None

STATES = "'normal', 'pending', 'firing', 'recovering', 'nodata', 'error'"

UPGRADE = f"""
DROP TABLE alert_events;
DROP TABLE alert_rules;

CREATE TABLE contact_points (
    id               serial PRIMARY KEY,
    user_id          integer REFERENCES users (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind             text NOT NULL CHECK (kind IN ('webhook', 'apprise', 'email')),
    target           text NOT NULL,
    secret           bytea NOT NULL,
    signed           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    failing          boolean NOT NULL DEFAULT false,
    last_error       text,
    last_attempt_at  timestamptz,
    last_ok_at       timestamptz
);
CREATE UNIQUE INDEX contact_points_name_idx ON contact_points (coalesce(user_id, 0), name);

CREATE TABLE alert_rules (
    id                       serial PRIMARY KEY,
    user_id                  integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    metric                   text NOT NULL,
    subject                  jsonb NOT NULL,
    filters                  jsonb NOT NULL DEFAULT '{{}}',
    condition                text NOT NULL,
    threshold                numeric,
    low                      numeric,
    high                     numeric,
    window_seconds           integer CHECK (window_seconds > 0),
    direction                text CHECK (direction IN ('up', 'down', 'either')),
    for_seconds              integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
    keep_firing_for_seconds  integer NOT NULL DEFAULT 0 CHECK (keep_firing_for_seconds >= 0),
    repeat_seconds           integer NOT NULL DEFAULT 14400 CHECK (repeat_seconds > 0),
    nodata_seconds           integer CHECK (nodata_seconds > 0),
    nodata_state             text NOT NULL DEFAULT 'nodata'
                             CHECK (nodata_state IN ('nodata', 'alerting', 'normal', 'keep_last')),
    error_state              text NOT NULL DEFAULT 'error'
                             CHECK (error_state IN ('error', 'alerting', 'normal', 'keep_last')),
    labels                   jsonb NOT NULL DEFAULT '{{}}',
    note                     text,
    enabled                  boolean NOT NULL DEFAULT true,
    muted_until              timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (low IS NULL OR high IS NULL OR low <= high)
);
CREATE INDEX alert_rules_user_idx ON alert_rules (user_id);

CREATE TABLE alert_rule_contacts (
    rule_id           integer NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    contact_point_id  integer NOT NULL REFERENCES contact_points (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, contact_point_id)
);
CREATE INDEX alert_rule_contacts_point_idx ON alert_rule_contacts (contact_point_id);

CREATE TABLE alert_states (
    rule_id           integer PRIMARY KEY REFERENCES alert_rules (id) ON DELETE CASCADE,
    state             text NOT NULL DEFAULT 'normal' CHECK (state IN ({STATES})),
    since             timestamptz NOT NULL DEFAULT now(),
    active_since      timestamptz,
    condition_since   timestamptz,
    value             numeric,
    data_at           timestamptz,
    run_id            bigint,
    last_true         boolean NOT NULL DEFAULT false,
    evaluated_at      timestamptz,
    notified          boolean NOT NULL DEFAULT false,
    last_notified_at  timestamptz,
    error             text
);

CREATE TABLE alert_events (
    id          bigserial PRIMARY KEY,
    rule_id     integer NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    from_state  text NOT NULL CHECK (from_state IN ({STATES})),
    to_state    text NOT NULL CHECK (to_state IN ({STATES})),
    value       numeric,
    threshold   text,
    data_at     timestamptz,
    run_id      bigint,
    silenced    boolean NOT NULL DEFAULT false,
    message     text
);
CREATE INDEX alert_events_rule_idx ON alert_events (rule_id, at DESC);
CREATE INDEX alert_events_at_idx ON alert_events (at DESC);

CREATE TABLE silences (
    id          serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rule_id     integer REFERENCES alert_rules (id) ON DELETE CASCADE,
    matchers    jsonb NOT NULL DEFAULT '[]',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK (rule_id IS NOT NULL OR jsonb_array_length(matchers) > 0)
);
CREATE INDEX silences_ends_idx ON silences (ends_at);

CREATE TABLE notification_outbox (
    id                bigserial PRIMARY KEY,
    rule_id           integer REFERENCES alert_rules (id) ON DELETE CASCADE,
    event_id          bigint REFERENCES alert_events (id) ON DELETE SET NULL,
    contact_point_id  integer NOT NULL REFERENCES contact_points (id) ON DELETE CASCADE,
    idempotency_key   text NOT NULL UNIQUE,
    kind              text NOT NULL CHECK (kind IN ('firing', 'resolved', 'test')),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    due_at            timestamptz NOT NULL DEFAULT now(),
    attempts          integer NOT NULL DEFAULT 0,
    sent_at           timestamptz,
    last_error        text
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (due_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_rule_idx ON notification_outbox (rule_id, created_at DESC);

CREATE TABLE notification_attempts (
    id           bigserial PRIMARY KEY,
    outbox_id    bigint NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL,
    status_code  integer,
    response     text,
    duration_ms  integer
);
CREATE INDEX notification_attempts_outbox_idx ON notification_attempts (outbox_id, at);
"""

DOWNGRADE = """
DROP TABLE notification_attempts;
DROP TABLE notification_outbox;
DROP TABLE silences;
DROP TABLE alert_events;
DROP TABLE alert_states;
DROP TABLE alert_rule_contacts;
DROP TABLE alert_rules;
DROP TABLE contact_points;

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
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
