"""`p2pdash kiosk`: create prints the setup link alone on the last line; list; revoke;
playlists and a device's playlist."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import cli
from tests.conftest import TEST_SECRET


@pytest.fixture
def run(database_url, tmp_path):
    """Invoke `p2pdash ...` against this test's database; return the result."""
    env = {"DATABASE_URL": database_url, "P2PDASH_DATA_DIR": str(tmp_path / "var"),
           "SECRET_KEY": TEST_SECRET, "P2PDASH_ENV": "test", "P2PDASH_ADMIN_PASSWORD": "",
           "P2PDASH_EXTERNAL_URL": "https://dash.desk.example"}

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_kio_cli_create_prints_the_link_last_then_list_and_revoke(run):
    created = run("kiosk", "create", "lobby")
    assert created.exit_code == 0, created.output
    link = created.output.strip().splitlines()[-1]
    assert link.startswith("https://dash.desk.example/kiosk/setup/") and " " not in link
    listing = run("kiosk", "list").output
    assert "lobby" in listing and "wall" in listing and "awaiting setup" in listing
    assert link.rsplit("/", 1)[1] not in listing
    assert run("kiosk", "create", "lobby").exit_code == 1  # the name is taken
    revoked = run("kiosk", "revoke", "lobby")
    assert revoked.exit_code == 0 and "revoked lobby" in revoked.output
    assert "revoked" in run("kiosk", "list").output
    assert run("kiosk", "link", "lobby").exit_code == 1


def test_kio_cli_playlists(run):
    bad = run("kiosk", "create", "desk", "--playlist", "nope")
    assert bad.exit_code == 1 and "no playlist named" in bad.output
    saved = run("kiosk", "playlist", "Desk-Loop", "--view", "wall 30", "--view", "/spread 20")
    assert saved.exit_code == 0 and "2 views" in saved.output
    created = run("kiosk", "create", "desk", "--playlist", "desk-loop")
    assert created.exit_code == 0 and "showing desk-loop" in created.output
    assert "/spread 20 s" in run("kiosk", "playlists").output
    assert run("kiosk", "set-playlist", "desk", "wall").exit_code == 0
    assert "wall" in run("kiosk", "list").output
    assert run("kiosk", "playlist", "x", "--view", "ftp://x 5").exit_code == 1
