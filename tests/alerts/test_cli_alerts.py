"""`p2pdash alerts list` and `p2pdash alerts test`: every user's rules, as an admin sees them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.alerts import service
from app.auth import commands
from app.cli import cli
from tests.alerts.api_support import MARKETS, SYMBOLS, alert_settings, loopback_hook, spread_rule
from tests.conftest import TEST_SECRET


@pytest.fixture
def settings(database_url, tmp_path):
    return alert_settings(tmp_path, database_url)


@pytest.fixture
def run(database_url, tmp_path):
    """Invoke `p2pdash ...` against this test's database; return the result."""
    env = {"DATABASE_URL": database_url, "P2PDASH_DATA_DIR": str(tmp_path / "var"),
           "SECRET_KEY": TEST_SECRET, "P2PDASH_ENV": "test", "P2PDASH_ADMIN_PASSWORD": "",
           "INGEST_ENABLED": "false", "P2P_MARKETS": MARKETS, "SPOT_SYMBOLS": SYMBOLS}

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["alerts", *args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def hook():
    with loopback_hook() as receiver:
        yield receiver


def actor(engine, username: str, role: str = "trader") -> service.Actor:
    """A new user as the alerting service's actor."""
    user = commands.create_user(engine, "test", username, f"password-of-{username}", role)
    return service.Actor(user.id, user.username, role)


def add_rule(engine, settings, owner: service.Actor, **changes) -> int:
    """Store a rule of `owner` through the real command; its id."""
    return service.create_rule(engine, settings, owner, spread_rule(**changes)).rule.id


def test_list_shows_every_users_rules(run, engine, settings):
    alice, bob = actor(engine, "alice"), actor(engine, "bob", "analyst")
    first = add_rule(engine, settings, alice, name="alice spread")
    second = add_rule(engine, settings, bob, name="bob band", threshold=None,
                      condition="outside", low="1", high="4", market="okx:USDT/ARS")
    result = run("list")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["ID", "OWNER", "NAME", "METRIC", "SUBJECT", "CONDITION", "STATE",
                              "SINCE"]
    assert len(lines) == 2
    assert lines[0].split()[:4] == [str(first), "alice", "alice", "spread"]
    assert "binance:USDT/ARS" in lines[0] and "> 2.5" in lines[0] and "Normal" in lines[0]
    assert lines[1].split()[0] == str(second)
    assert "okx:USDT/ARS" in lines[1] and "outside 1..4" in lines[1]


def test_list_for_one_user(run, engine, settings):
    alice, bob = actor(engine, "alice"), actor(engine, "bob")
    add_rule(engine, settings, alice, name="alice spread")
    add_rule(engine, settings, bob, name="bob spread")
    lines = run("list", "--user", "bob").output.splitlines()[1:]
    assert len(lines) == 1 and "bob spread" in lines[0]
    unknown = run("list", "--user", "nobody")
    assert unknown.exit_code == 1 and "no user named 'nobody'" in unknown.output


def test_test_sends_one_alertmanager_post_per_contact_point(run, engine, settings, hook):
    rule_id = add_rule(engine, settings, actor(engine, "alice"), notify=[hook.url])
    result = run("test", str(rule_id))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok") and "HTTP 200" in result.output
    assert len(hook.posts) == 1
    assert hook.posts[0][0] == "/hook"
    body = hook.bodies()[0]
    assert body["version"] == "4" and body["alerts"][0]["labels"]["rule_id"] == str(rule_id)


def test_test_exits_1_when_a_contact_point_fails(run, engine, settings, hook):
    rule_id = add_rule(engine, settings, actor(engine, "alice"), notify=[hook.url])
    hook.status = 503
    result = run("test", str(rule_id))
    assert result.exit_code == 1
    assert result.output.startswith("FAILED") and "HTTP 503" in result.output


@pytest.mark.parametrize(("argument", "message"), [
    ("999", "no such alert rule"), ("0", "Invalid value"), ("2147483648", "Invalid value"),
])
def test_test_of_an_unknown_rule_exits_non_zero(run, argument, message):
    result = run("test", argument)
    assert result.exit_code != 0 and message in result.output


def test_test_of_a_rule_without_contact_points_says_so(run, engine, settings):
    rule_id = add_rule(engine, settings, actor(engine, "alice"))
    result = run("test", str(rule_id))
    assert result.exit_code == 1 and "notifies nobody" in result.output
