"""Each series' open candle in a small unlogged table; candles get the closed ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Most candle writes were updates: every kline frame of a minute rewrote that minute's row in
the hypertable, a new row version and its WAL each time. bench/write_path.py measured the
writer at 0.65-0.71x binary COPY that way (fillfactor 70 included), and with the open
candle in a side table, where the closed candles append, 0.74-0.77x when that table is
logged and 0.76-0.83x when it is UNLOGGED (same runs). So:

- candles_live holds one row per exchange, symbol and interval: its newest open candle.
  UNLOGGED: its updates write no WAL, and a crash empties it (PostgreSQL truncates
  unlogged tables in crash recovery), which costs the chart its live candle until the next
  kline frame, two seconds at most; a clean restart keeps it. It is not replicated to a
  standby either: a standby shows closed candles only.
- candles gets the closed candles (and keeps the open ones written before this revision).
  When the live row moves on to a later minute, the one it replaces is retired into
  candles unless a closed one is there (db.bulk.merge_newest), so a minute whose close
  never came stays on record for the gap repairer.
- candles_all is what readers read: candles and each live candle not stored closed yet.
- candles loses the 30 % free room of 0010: it is appended to now, not updated.

The newest open candle of each series from the last two days moves to candles_live (older
open candles stay where they are: a scan of years of candles for them is not worth it).
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SERIES = ("exchange", "symbol", "interval")
SAME_CANDLE = " AND ".join(f"c.{column} = l.{column}" for column in (*SERIES, "open_time"))

UPGRADE = f"""
CREATE UNLOGGED TABLE candles_live (
    LIKE candles INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY ({", ".join(SERIES)})
) WITH (fillfactor = 50);

INSERT INTO candles_live
SELECT DISTINCT ON ({", ".join(SERIES)}) * FROM candles
WHERE NOT is_closed AND open_time > now() - interval '2 days'
ORDER BY {", ".join(SERIES)}, open_time DESC;

DELETE FROM candles AS c USING candles_live AS l WHERE {SAME_CANDLE};

CREATE VIEW candles_all AS
SELECT * FROM candles
UNION ALL
SELECT l.* FROM candles_live AS l
WHERE NOT EXISTS (SELECT 1 FROM candles AS c WHERE {SAME_CANDLE});

ALTER TABLE candles RESET (fillfactor);
"""

DOWNGRADE = """
DROP VIEW candles_all;
INSERT INTO candles SELECT * FROM candles_live ON CONFLICT DO NOTHING;
DROP TABLE candles_live;
ALTER TABLE candles SET (fillfactor = 70);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
