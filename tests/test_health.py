"""/healthz: status, database, extension version and feeds; 503 when the database is down."""

from __future__ import annotations

from sqlalchemy import text

from app import create_app
from app.health import system_health
from tests.conftest import make_settings


def test_anonymous_callers_learn_only_up_or_down(client, client_as):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert client_as("analyst").get("/healthz").get_json() == {"status": "ok"}


def test_healthz_reports_database_and_timescaledb(client_as):
    response = client_as("admin").get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["timescaledb"].startswith("2.")
    assert body["feeds"] == {}
    assert body["version"] == "0.1.0"


def test_healthz_lists_feeds_from_runs(app, client_as):
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (source, kind, status, finished_at) "
            "VALUES ('binance_p2p', 'p2p_poll', 'ok', now())"))
    feed = client_as("admin").get("/healthz").get_json()["feeds"]["binance_p2p"]
    assert feed["status"] == "ok"
    assert feed["age_seconds"] < 60


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path, port):
    settings = make_settings(tmp_path, DATABASE_URL=f"postgresql://u:p@127.0.0.1:{port}/none")
    client = create_app(settings).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "down"}, "no host or port for anonymous callers"
    with client.application.app_context():
        body = system_health()
    assert body["database"].startswith("unreachable")
    assert body["timescaledb"] is None


def test_plain_postgres_healthz_says_timescaledb_null_with_a_warning(plain_database_url, tmp_path):
    server = create_app(make_settings(tmp_path, DATABASE_URL=plain_database_url))
    assert server.test_client().get("/healthz").get_json() == {"status": "degraded"}
    with server.app_context():
        body = system_health()
    assert body["database"] == "ok"
    assert body["timescaledb"] is None
    assert body["status"] == "degraded"
    assert any("TimescaleDB is not available" in warning for warning in body["warnings"])


def test_bootstrap_css_is_served_by_the_app(client):
    response = client.get("/vendor/bootstrap/css/bootstrap.min.css")
    assert response.status_code == 200
    assert b"Bootstrap" in response.data[:200]
