"""Admin backfill: started through the real callback route, progress read from its run row."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app import create_app
from ingest.fake.server import FakeExchange
from layouts import ids
from tests.conftest import AuthActions, ensure_user, password_for
from tests.spot_support import BINANCE
from tests.test_admin import Admin

FORM = {f"{ids.ADMIN_BACKFILL_SYMBOL}.value": "btcusdt",
        f"{ids.ADMIN_BACKFILL_INTERVAL}.value": "1m",
        f"{ids.ADMIN_BACKFILL_DATES}.start_date": "2020-05-06",
        f"{ids.ADMIN_BACKFILL_DATES}.end_date": "2020-05-06"}


@pytest.fixture
def fake():
    with FakeExchange("replay", klines={("BTCUSDT", "1m"): BINANCE / "klines_rest_1.json"}) as fake:
        yield fake


@pytest.fixture
def admin(fake, database_url, tmp_path):
    from tests.conftest import make_settings

    server = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                      BINANCE_REST_URL=fake.rest_url))
    ensure_user(server, "admin")
    client = server.test_client()
    assert AuthActions(client).login("admin", password_for("admin")).status_code == 302
    yield Admin(server, server.extensions["dash"], client)
    server.extensions["p2pdash"].engine.dispose()


def backfill_runs(admin: Admin) -> list[dict]:
    with admin.app.extensions["p2pdash"].engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(
            "SELECT status, inserted, duplicates, received, params FROM runs "
            "WHERE kind = 'klines_backfill' ORDER BY id")).mappings()]


def wait_until_finished(admin: Admin, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = backfill_runs(admin)
        if len(runs) == count and runs[-1]["status"] != "running":
            return runs
        time.sleep(0.2)
    pytest.fail(f"backfill did not finish: {backfill_runs(admin)}")


def test_admin_starts_a_backfill_and_follows_it(admin):
    answer = admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    assert "Backfilling 1,440 1m candles of BTCUSDT" in answer
    [run] = wait_until_finished(admin, 1)
    assert (run["status"], run["inserted"], run["received"]) == ("ok", 60, 60)
    assert run["params"]["expected"] == 1440
    listing = admin.call(ids.ADMIN_BACKFILL_RUNS, {f"{ids.ADMIN_BACKFILL_REFRESH}.n_intervals": 1})
    assert "BTCUSDT" in listing and "60 / 1,440" in listing

    admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    second = wait_until_finished(admin, 2)[-1]
    assert (second["inserted"], second["duplicates"]) == (0, 60), "idempotent"
    with admin.app.extensions["p2pdash"].engine.connect() as connection:
        assert connection.scalar(text(
            "SELECT count(*) FROM audit_log WHERE action = 'backfill.start'")) == 2


def test_a_bad_form_is_refused_with_the_reason(admin):
    answer = admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START,
                         {**FORM, f"{ids.ADMIN_BACKFILL_SYMBOL}.value": "BTC/USDT"})
    assert "symbol" in answer and "is not a symbol" in answer
    assert backfill_runs(admin) == []
