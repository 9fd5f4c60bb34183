"""Two app processes on one database: exactly one polls P2P; kill it and the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from db.embedded import free_port
from db.engine import make_engine
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import Simulation
from tests.test_embedded import wait_for_health

pytestmark = pytest.mark.slow
POLL_SECONDS = 5


@pytest.fixture
def fake_url():
    with serving(FakeP2P(simulation=Simulation())) as url:
        yield url


def start_app(database_url: str, fake_url: str, tmp_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "P2PDASH_PORT": str(port),
           "P2PDASH_DATA_DIR": str(tmp_path / f"var-{port}"), "SECRET_KEY": "s" * 40,
           "P2PDASH_ADMIN_PASSWORD": "a-long-admin-password", "SPOT_SYMBOLS": "",
           "P2P_MARKETS": "binance:USDT/ARS", "P2P_POLL_SECONDS": str(POLL_SECONDS),
           "P2P_JITTER_SECONDS": "0", "INGEST_LEADER_RETRY_SECONDS": "1",
           "BINANCE_P2P_URL": fake_url, "P2P_PACING_MS": "0"}
    process = subprocess.Popen([sys.executable, "-m", "app", "run"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
    return process, f"127.0.0.1:{port}"


def polls(engine, since: float) -> list[tuple[float, str]]:
    with engine.connect() as connection:
        return [(row[0], row[1]) for row in connection.execute(text(
            "SELECT extract(epoch FROM started_at)::float8, params->>'process' FROM runs "
            "WHERE kind = 'p2p_poll' AND started_at >= to_timestamp(:since) "
            "ORDER BY started_at"), {"since": since})]


def wait_for_polls(engine, since: float, count: int, seconds: float) -> list[tuple[float, str]]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        seen = polls(engine, since)
        if len(seen) >= count:
            return seen
        time.sleep(0.3)
    return polls(engine, since)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_one_leader_polls_and_a_survivor_takes_over(database_url, fake_url, tmp_path):
    engine = make_engine(database_url)
    first, _ = start_app(database_url, fake_url, tmp_path)
    second, _ = start_app(database_url, fake_url, tmp_path)
    survivor = None
    try:
        watched_from = time.time()
        time.sleep(3 * POLL_SECONDS)
        seen = polls(engine, watched_from)
        pollers = {process for _, process in seen}
        assert len(pollers) == 1, f"exactly one process polls: {seen}"
        assert 2 <= len(seen) <= 4, f"one poll per interval, not one per process: {seen}"

        [leader] = pollers
        victim = first if leader.endswith(tuple(
            f":{pid}" for pid in children(first.pid))) else second
        survivor = second if victim is first else first
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.wait(timeout=10)
        taken = wait_for_polls(engine, killed_at, 1, 2 * POLL_SECONDS)
        assert taken, "the survivor did not start polling within two poll intervals"
        assert taken[0][1] != leader
        assert taken[0][0] - killed_at <= 2 * POLL_SECONDS
    finally:
        for process in (first, second):
            stop(process)
        engine.dispose()
    assert survivor.returncode == 0, "the survivor shuts down cleanly"


def children(pid: int) -> set[int]:
    """The pid and every descendant (gunicorn's worker runs the ingest service)."""
    found, queue = {pid}, [pid]
    while queue:
        parent = queue.pop()
        result = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True,
                                check=False)
        kids = {int(line) for line in result.stdout.split()}
        queue.extend(kids - found)
        found |= kids
    return found
