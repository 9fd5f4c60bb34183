"""`p2pdash users` and `p2pdash keys`: the same accounts and keys the app uses."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from app.cli import cli
from tests.conftest import TEST_SECRET


@pytest.fixture
def run(database_url, tmp_path):
    """Invoke `p2pdash ...` against this test's database; return the result."""
    env = {"DATABASE_URL": database_url, "P2PDASH_DATA_DIR": str(tmp_path / "var"),
           "SECRET_KEY": TEST_SECRET, "P2PDASH_ENV": "test", "P2PDASH_ADMIN_PASSWORD": ""}

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)

    return invoke


def test_create_a_user_with_password_from_stdin_and_list_it(run):
    created = run("users", "create", "alice", "--role", "admin", "--password-stdin",
                  stdin="a-long-password\n")
    assert created.exit_code == 0, created.output
    assert "created alice (admin)" in created.output
    listing = run("users", "list").output
    assert "alice" in listing and "admin" in listing and "yes" in listing


def test_create_prompts_for_the_password_twice(run):
    result = run("users", "create", "bob", "--role", "trader",
                 stdin="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output
    assert "a-long-password" not in result.output


def test_short_password_and_duplicate_name_are_refused(run):
    short = run("users", "create", "carol", "--role", "kiosk", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    run("users", "create", "carol", "--role", "kiosk", "--password-stdin",
        stdin="a-long-password\n")
    again = run("users", "create", "CAROL", "--role", "kiosk", "--password-stdin",
                stdin="a-long-password\n")
    assert again.exit_code == 1 and "exists already" in again.output


def test_set_role_and_disable(run, engine):
    run("users", "create", "admin1", "--role", "admin", "--password-stdin", stdin="p" * 12)
    run("users", "create", "dave", "--role", "kiosk", "--password-stdin", stdin="p" * 12)
    assert "dave is now analyst" in run("users", "set-role", "dave", "analyst").output
    assert "dave disabled" in run("users", "disable", "dave").output
    with engine.connect() as connection:
        row = connection.execute(text("SELECT role, is_active FROM users "
                                      "WHERE username = 'dave'")).one()
        actions = connection.scalars(text("SELECT action FROM audit_log WHERE target = 'dave' "
                                          "ORDER BY id")).all()
    assert tuple(row) == ("analyst", False)
    assert actions == ["user.create", "user.set_role", "user.disable"]


def test_the_last_admin_cannot_be_disabled_or_demoted(run):
    run("users", "create", "root", "--role", "admin", "--password-stdin", stdin="p" * 12)
    disabled = run("users", "disable", "root")
    assert disabled.exit_code == 1 and "last active admin" in disabled.output
    assert run("users", "set-role", "root", "kiosk").exit_code == 1


def test_keys_create_prints_the_key_alone_on_the_last_line(run, engine):
    run("users", "create", "erin", "--role", "analyst", "--password-stdin", stdin="p" * 12)
    result = run("keys", "create", "--user", "erin", "--scopes", "read,export",
                 "--name", "models", "--expires-days", "30")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("p2pd_") and " " not in key
    with engine.connect() as connection:
        row = connection.execute(text("SELECT id, name, scopes, expires_at FROM api_keys")).one()
    assert row.name == "models" and row.scopes == ["read", "export"] and row.expires_at
    listing = run("keys", "list").output
    assert key[:13] in listing and key not in listing and "active" in listing
    assert f"key {row.id}" in run("keys", "revoke", str(row.id)).output
    assert "revoked" in run("keys", "list", "--user", "erin").output


def test_keys_wider_than_the_role_or_unknown_scopes_are_refused(run):
    run("users", "create", "frank", "--role", "trader", "--password-stdin", stdin="p" * 12)
    wider = run("keys", "create", "--user", "frank", "--scopes", "read")
    assert wider.exit_code == 1 and "may not hold read" in wider.output
    unknown = run("keys", "create", "--user", "frank", "--scopes", "write")
    assert unknown.exit_code == 2 and "unknown write" in unknown.output


def test_revoking_an_unknown_key_says_so(run):
    result = run("keys", "revoke", "999")
    assert result.exit_code == 1 and "no API key with id 999" in result.output


def test_reset_2fa_turns_it_off_and_says_so(run, engine):
    run("users", "create", "trader", "--role", "trader", "--password-stdin",
        stdin="a-long-password\n")
    with engine.begin() as connection:
        user_id = connection.scalar(text("SELECT id FROM users WHERE username = 'trader'"))
        connection.execute(text("INSERT INTO user_totp (user_id, secret, confirmed_at) "
                                "VALUES (:id, 'not a real secret', now())"), {"id": user_id})
    assert "two-factor sign-in of trader reset" in run("users", "reset-2fa", "trader").output
    again = run("users", "reset-2fa", "trader")
    assert again.exit_code != 0 and "does not use two-factor sign-in" in again.output
