"""Hourly P2P aggregates, and a time index for cutting snapshots on any server.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

p2p_hourly holds, per market, side and closed hour, what the hour's complete snapshots
said: the last one's best price, liquidity and offers (what history draws), the lowest and
highest best price, the mean liquidity and the count. The leader recomputes each hour from
the snapshots (db/p2p_rollups.py), so history keeps drawing after the snapshots themselves
are cut (RETENTION_P2P_SNAPSHOTS_DAYS). Retention never cuts it.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

HOURLY = """
CREATE TABLE p2p_hourly (
    exchange        text NOT NULL,
    asset           text NOT NULL,
    fiat            text NOT NULL,
    side            text NOT NULL CHECK (side IN ('ask', 'bid')),
    bucket          timestamptz NOT NULL,
    snapshots       integer NOT NULL CHECK (snapshots > 0),
    first_at        timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,
    last_price      numeric,
    last_liquidity  numeric,
    last_offers     integer NOT NULL,
    min_price       numeric,
    max_price       numeric,
    avg_liquidity   numeric,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, asset, fiat, side, bucket)
);
"""


def upgrade() -> None:
    op.execute(HOURLY)
    op.execute("CREATE INDEX IF NOT EXISTS p2p_snapshots_captured_at_idx "
               "ON p2p_snapshots (captured_at DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS p2p_snapshots_captured_at_idx")
    op.execute("DROP TABLE p2p_hourly")
