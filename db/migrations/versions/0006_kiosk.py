"""Kiosk wall screens: devices, playlists, and device sessions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A kiosk device is signed in by a setup link whose random token is kept only as its SHA-256
(setup_token_hash), usable once before setup_expires_at. Its browser then holds a row of
`sessions` like any sign-in, owned by the device instead of a user: exactly one of user_id
and device_id is set. Revoking a device ends its sessions; deleting it deletes them.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE playlists (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    views       jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kiosk_devices (
    id                serial PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (length(name) <= 64),
    playlist_id       integer REFERENCES playlists (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text,
    setup_token_hash  text UNIQUE,
    setup_expires_at  timestamptz,
    setup_used_at     timestamptz,
    last_seen_at      timestamptz,
    last_ip           text CHECK (length(last_ip) <= 64),
    last_user_agent   text CHECK (length(last_user_agent) <= 256),
    showing           text CHECK (length(showing) <= 200),
    revoked_at        timestamptz
);

ALTER TABLE sessions ADD COLUMN device_id integer
    REFERENCES kiosk_devices (id) ON DELETE CASCADE;
ALTER TABLE sessions ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_owner_check
    CHECK (num_nonnulls(user_id, device_id) = 1);
CREATE INDEX sessions_device_idx ON sessions (device_id) WHERE device_id IS NOT NULL;
"""

DOWNGRADE = """
DELETE FROM sessions WHERE device_id IS NOT NULL;
DROP INDEX sessions_device_idx;
ALTER TABLE sessions DROP CONSTRAINT sessions_owner_check;
ALTER TABLE sessions ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE sessions DROP COLUMN device_id;
DROP TABLE kiosk_devices;
DROP TABLE playlists;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
