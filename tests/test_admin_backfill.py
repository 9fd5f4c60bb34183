"""Admin backfill: queued through the real callback route, executed by the leader's job
queue (never in the web process), progress read from its run row, cancellable per job."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from app import create_app
from db import jobs
from ingest.fake.server import FakeExchange
from ingest.job_queue import JobQueue
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


def engine_of(admin: Admin):
    return admin.app.extensions["p2pdash"].engine


def backfill_runs(admin: Admin) -> list[dict]:
    with engine_of(admin).connect() as connection:
        return [dict(row) for row in connection.execute(text(
            "SELECT status, inserted, duplicates, received, params FROM runs "
            "WHERE kind = 'klines_backfill' ORDER BY id")).mappings()]


def job_statuses(admin: Admin) -> list[str]:
    return [job["status"] for job in reversed(jobs.list_recent(engine_of(admin)))]


def lead_once(admin: Admin) -> None:
    """The ingest leader's job queue, polled once and waited for."""
    queue = JobQueue(admin.app.extensions["p2pdash"].settings, engine_of(admin))
    assert queue.poll() is not None, "the leader found no job"
    queue.thread.join(30)
    assert not queue.thread.is_alive()


def cancel(admin: Admin, job_id: int) -> str:
    component = {"index": job_id, "type": ids.ADMIN_BACKFILL_CANCEL}
    body = {"output": admin.key(ids.ADMIN_BACKFILL_CANCEL_FEEDBACK),
            "outputs": {"id": ids.ADMIN_BACKFILL_CANCEL_FEEDBACK, "property": "children"},
            "inputs": [[{"id": component, "property": "n_clicks", "value": 1}]], "state": [],
            "changedPropIds": [json.dumps(component, sort_keys=True, separators=(",", ":"))
                               + ".n_clicks"]}
    return admin.call(ids.ADMIN_BACKFILL_CANCEL_FEEDBACK, body=body)


def test_admin_queues_a_backfill_the_leader_runs_it_and_the_page_follows_it(admin):
    threads = threading.active_count()
    answer = admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    assert "Queued job" in answer and "backfilling 1,440 1m candles of BTCUSDT" in answer
    assert threading.active_count() == threads, "no backfill thread in the web process"
    assert job_statuses(admin) == ["queued"] and backfill_runs(admin) == []
    listing = admin.call(ids.ADMIN_BACKFILL_RUNS, {f"{ids.ADMIN_BACKFILL_REFRESH}.n_intervals": 1})
    assert "waiting for the ingest leader" in listing and ids.ADMIN_BACKFILL_CANCEL in listing
    refused = admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    assert "queued (job" in refused and job_statuses(admin) == ["queued"]

    lead_once(admin)
    [run] = backfill_runs(admin)
    assert (run["status"], run["inserted"], run["received"]) == ("ok", 60, 60)
    assert run["params"]["expected"] == 1440 and job_statuses(admin) == ["done"]
    listing = admin.call(ids.ADMIN_BACKFILL_RUNS, {f"{ids.ADMIN_BACKFILL_REFRESH}.n_intervals": 1})
    assert "BTCUSDT" in listing and "60 / 1,440" in listing
    assert ids.ADMIN_BACKFILL_CANCEL not in listing, "nothing left to cancel"

    admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    lead_once(admin)
    second = backfill_runs(admin)[-1]
    assert (second["inserted"], second["duplicates"]) == (0, 60), "idempotent"
    with engine_of(admin).connect() as connection:
        assert connection.scalar(text(
            "SELECT count(*) FROM audit_log WHERE action = 'backfill.start'")) == 2


def test_admin_cancels_a_queued_backfill_and_it_never_runs(admin):
    admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START, FORM)
    [job] = jobs.list_recent(engine_of(admin))
    assert "cancelled before it started" in cancel(admin, job["id"])
    assert job_statuses(admin) == ["cancelled"]
    assert "is not queued or running" in cancel(admin, job["id"])
    queue = JobQueue(admin.app.extensions["p2pdash"].settings, engine_of(admin))
    assert queue.poll() is None and backfill_runs(admin) == []
    with engine_of(admin).connect() as connection:
        assert connection.execute(text(
            "SELECT actor, target FROM audit_log WHERE action = 'backfill.cancel'")).all() == [
            ("admin", str(job["id"]))]


def test_a_bad_form_is_refused_with_the_reason(admin):
    answer = admin.click(ids.ADMIN_BACKFILL_FEEDBACK, ids.ADMIN_BACKFILL_START,
                         {**FORM, f"{ids.ADMIN_BACKFILL_SYMBOL}.value": "BTC/USDT"})
    assert "symbol" in answer and "is not a symbol" in answer
    assert backfill_runs(admin) == [] and job_statuses(admin) == []
