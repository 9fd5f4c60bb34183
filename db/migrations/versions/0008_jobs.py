"""A queue of long jobs (backfills) that the ingest leader executes, and `cancelled` runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A page queues a job (db/jobs.py: enqueue) and returns; the ingest leader claims it and
runs it in a thread of its own (ingest/job_queue.py), so no job runs inside a web request
and none dies with a web process. Progress stays on the job's run row (`run_id`); the
leader beats `heartbeat_at` while it works, and a leader that takes over resumes a job
left `running` by one that is gone, from its `checkpoint` (for a backfill, the open time of
the first page not yet stored). `attempts` counts claims and fences a worker: one whose
claim was taken over can no longer beat or finish the job. `cancel_requested` asks a
running job to stop at its next page; its run then ends `cancelled`, a run status added
here. Plain SQL only: the
table works the same on PostgreSQL with or without TimescaleDB.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JOBS = """
CREATE TABLE jobs (
    id                bigserial PRIMARY KEY,
    kind              text NOT NULL,
    params            jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    requested_by      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    heartbeat_at      timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    run_id            bigint REFERENCES runs (id) ON DELETE SET NULL,
    attempts          integer NOT NULL DEFAULT 0,
    checkpoint        jsonb,
    error             text
);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC);
-- One queued or running job per kind and parameters: a second click cannot queue it twice.
CREATE UNIQUE INDEX jobs_active_uniq ON jobs (kind, params)
    WHERE status IN ('queued', 'running');
"""

STATUSES = "'running', 'ok', 'partial', 'failed', 'interrupted'"


def _statuses(statuses: str) -> str:
    return (f"ALTER TABLE runs DROP CONSTRAINT runs_status_check; "
            f"ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ({statuses}));")


def upgrade() -> None:
    op.execute(JOBS)
    op.execute(_statuses(STATUSES + ", 'cancelled'"))


def downgrade() -> None:
    op.execute("DROP TABLE jobs")
    op.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'cancelled'")
    op.execute(_statuses(STATUSES))
