"""Runs may end `interrupted`: their process died, or lost the database, before finishing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The next ingest leader closes such runs (ingest/runs.py: close_interrupted) instead of
leaving them `running` for ever. Downgrading turns them into `failed`, which they were
closest to before this status existed.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted'));
"""

DOWNGRADE = """
UPDATE runs SET status = 'failed' WHERE status = 'interrupted';
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'ok', 'partial', 'failed'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
