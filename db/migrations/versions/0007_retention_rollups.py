"""Retention runs, time indexes for retention on plain PostgreSQL, and candle rollups.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The leader's retention job records itself as a `retention` run. A hypertable has an index
on its time column already (TimescaleDB makes `<table>_<column>_idx`); a plain table gets
one of the same name here, so the batched DELETE and the oldest-row query read an index
rather than the whole table. On TimescaleDB the CREATE INDEX IF NOT EXISTS does nothing.

candle_rollups holds 1h and 1d candles recomputed by the leader from the raw candles of
each closed bucket (db/rollups.py); `minutes` says how many 1m candles made one, so a query
knows whether it answers exactly. Retention never cuts it: long ranges outlive raw rows.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = ("'p2p_poll', 'p2p_push', 'klines_backfill', 'ws_session', 'gap_repair'")
TIME_INDEXES = {"book_tickers": "ts", "tickers_24h": "ts", "p2p_offers": "captured_at",
                "candles": "open_time"}


def _kinds(kinds: str) -> str:
    return (f"ALTER TABLE runs DROP CONSTRAINT runs_kind_check; "
            f"ALTER TABLE runs ADD CONSTRAINT runs_kind_check CHECK (kind IN ({kinds}));")


ROLLUPS = """
CREATE TABLE candle_rollups (
    exchange            text NOT NULL,
    symbol              text NOT NULL,
    interval            text NOT NULL CHECK (interval IN ('1h', '1d')),
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
    minutes             integer NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol, interval, open_time)
);
"""


def upgrade() -> None:
    op.execute(ROLLUPS)
    op.execute(_kinds(KINDS + ", 'retention'"))
    for table, column in TIME_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column} DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE candle_rollups")
    op.execute("DELETE FROM runs WHERE kind = 'retention'")
    op.execute(_kinds(KINDS))
