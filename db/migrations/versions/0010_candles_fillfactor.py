"""Candle pages keep 30 % free, so that a live candle's update stays on its page.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Most candle writes update the open candle (every kline frame of its minute). With full
pages each update writes a new row version elsewhere and new entries in every index; with
room on the page PostgreSQL makes it a HOT update (no index entries: no indexed column
changes). bench/write_path.py measured the writer at 0.62-0.64x binary COPY with full
pages and 0.76-0.79x at fillfactor 70 (50 was slower again). TimescaleDB passes the
setting on to the chunks; pages already written keep theirs until they are rewritten.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE candles SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE candles RESET (fillfactor)")
