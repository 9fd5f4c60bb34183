"""`p2pdash backfill klines`: a progress bar, a summary, and clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import cli
from ingest.fake.server import FakeExchange
from tests.conftest import TEST_SECRET
from tests.spot_support import BINANCE

ARGS = ["backfill", "klines", "--symbol", "BTCUSDT", "--interval", "1m",
        "--start", "2020-05-06T04:42:00", "--end", "2020-05-06T05:42Z"]


@pytest.fixture
def fake():
    with FakeExchange("replay", klines={("BTCUSDT", "1m"): BINANCE / "klines_rest_1.json"}) \
            as fake:
        yield fake


@pytest.fixture
def run(database_url, tmp_path, fake):
    env = {"DATABASE_URL": database_url, "P2PDASH_DATA_DIR": str(tmp_path),
           "SECRET_KEY": TEST_SECRET, "P2PDASH_ENV": "test", **fake.environment()}

    def invoke(args):
        return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    return invoke


def test_backfill_prints_a_summary_and_a_second_run_inserts_nothing(run):
    first = run(ARGS)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.splitlines()[-1]) == {
        "symbol": "BTCUSDT", "interval": "1m", "inserted": 60, "duplicates_skipped": 0,
        "updated": 0, "from": "2020-05-06T04:42:00+00:00", "to": "2020-05-06T05:42:00+00:00",
        "rollups": 3}  # 04:00 and 05:00 (both part-filled) and the day
    assert "BTCUSDT 1m" in first.stderr.splitlines()  # the label (no bar without a tty)
    second = run(ARGS)
    assert json.loads(second.stdout.splitlines()[-1])["duplicates_skipped"] == 60


def test_a_ban_stops_the_backfill_with_a_clear_message(run, fake):
    fake.binance.fail_next(418, retry_after=60)
    result = run(ARGS)
    assert result.exit_code == 1
    assert "Error: Binance answered 418 to /api/v3/klines: this IP is banned" in result.stderr


def test_a_bad_start_is_named(run):
    result = run([*ARGS[:6], "--start", "last tuesday"])
    assert result.exit_code == 2 and "start: 'last tuesday' is not an ISO 8601" in result.stderr
