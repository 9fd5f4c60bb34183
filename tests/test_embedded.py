"""The embedded cluster: created on first start, reused while running, stopped by its starter."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import requests

from db.embedded import EmbeddedPostgres, free_port
from tests.conftest import _scratch_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def root():
    path = _scratch_dir("p2pdash-test-embedded-")
    yield path
    EmbeddedPostgres(path / "pg").stop(force=True)
    shutil.rmtree(path, ignore_errors=True)


def query(url: str, sql: str):
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchone()[0] if cursor.description else None


def test_start_reuse_and_stop(root):
    first = EmbeddedPostgres(root / "pg")
    url = first.ensure_running()
    assert first.started_here and first.is_running()
    assert "timescaledb" in query(url, "SHOW shared_preload_libraries")
    query(url, "CREATE TABLE IF NOT EXISTS kept (n int)")

    second = EmbeddedPostgres(root / "pg")
    assert second.ensure_running() == url
    assert not second.started_here
    second.stop()
    assert first.is_running(), "a reuser must not stop the server it did not start"
    child = os.fork()
    if child == 0:  # a gunicorn worker inherits the object and unwinds the same stack
        first.stop()
        os._exit(0)
    os.waitpid(child, 0)
    assert first.is_running(), "a forked child must not stop its parent's server"

    first.stop()
    assert not first.is_running()
    third = EmbeddedPostgres(root / "pg")
    third.ensure_running()
    assert query(third.url(), "SELECT to_regclass('kept')::text") == "kept", "data survives"
    third.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to 'postgres'")
def test_under_root_a_private_directory_keeps_its_data_where_postgres_reaches_it(root):
    private = root / "private"  # as a clone in /root or in a `mktemp -d` folder
    private.mkdir(mode=0o700)
    cluster = EmbeddedPostgres(private / "var" / "pg")
    try:
        url = cluster.ensure_running()
        assert query(url, "SELECT 1") == 1
        assert not cluster.data.is_relative_to(private), "data out of postgres's way"
        assert (private / "var" / "pg" / "password").exists(), "the rest stays in the root"
        again = EmbeddedPostgres(private / "var" / "pg")
        assert again.data == cluster.data and again.ensure_running() == url, "found again"
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data.parent, ignore_errors=True)
    assert private.stat().st_mode & 0o777 == 0o700, "the private directory stays private"


def test_password_is_required_and_kept_private(root):
    cluster = EmbeddedPostgres(root / "pg")
    url = cluster.ensure_running()
    assert (root / "pg" / "password").stat().st_mode & 0o777 == 0o600
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url.replace("+psycopg", "").replace(cluster.password, "wrong"))
    cluster.stop()


def test_p2pdash_run_serves_healthz_on_the_embedded_default_and_stops_it(root):
    port = free_port()
    env = {**os.environ, "P2PDASH_DATA_DIR": str(root), "P2PDASH_PORT": str(port),
           "INGEST_ENABLED": "false"}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "app", "run"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
        assert body == {"status": "ok"}, "ok, not degraded: TimescaleDB is there"
        assert EmbeddedPostgres(root / "pg").is_running()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert not EmbeddedPostgres(root / "pg").is_running(), output


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"p2pdash run exited early:\n{process.stdout.read()}")
        try:
            return requests.get(url, timeout=2).json()
        except requests.RequestException:
            time.sleep(0.3)
    pytest.fail(f"{url} never answered")


def test_run_falls_back_to_the_demo_when_no_exchange_answers(root):
    port = free_port()
    # An hour of seeded history is enough to see the fallback; test_demo_seed seeds a day.
    env = {**os.environ, "P2PDASH_DATA_DIR": str(root), "P2PDASH_PORT": str(port),
           "BINANCE_REST_URL": f"http://127.0.0.1:{free_port()}",
           "P2PDASH_DEMO_HISTORY_HOURS": "1"}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "app", "run", "--demo-when-offline"],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        assert wait_for_health(url, process) == {"status": "ok"}
        demo = EmbeddedPostgres(root / "demo" / "pg").url().replace("+psycopg", "")
        deadline = time.monotonic() + 60
        while not stream_runs(demo):  # the feeds /healthz shows to admins
            assert time.monotonic() < deadline, "the simulated stream never started"
            time.sleep(0.5)
        assert (root / "demo" / "pg" / "data").is_dir(), "the demo keeps its own database"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert "starting the DEMO" in output
    assert "administrator command" not in output and "rows not written" not in output, (
        "ingestion stopped before its database: " + output[-3000:])
    assert "First run: created the admin 'admin' and password" in output
    assert "Demo: seeded the last 1 h of" in output
    EmbeddedPostgres(root / "demo" / "pg").stop(force=True)


def stream_runs(url: str) -> int:
    """How many spot stream sessions the database behind `url` has recorded."""
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT count(*) FROM runs WHERE source = 'binance_spot_ws'").fetchone()[0]


def test_a_port_whose_closed_connections_linger_is_still_free():
    import socket

    from db.embedded import free_port

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    assert free_port(port) == port, "the same port again after a restart"
