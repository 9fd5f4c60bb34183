"""Helpers for the spot ingestion tests: fixture files, waiting on conditions, a database outage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from db.embedded import EmbeddedPostgres
from tests.fixtures_path import shared_fixtures

FIXTURES = shared_fixtures()
BINANCE = FIXTURES / "binance"
KLINES = FIXTURES / "klines"


def wait_until(condition: Callable[[], object], timeout: float = 20.0,
               interval: float = 0.05, message: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@contextmanager
def database_down(cluster: EmbeddedPostgres, database_url: str) -> Iterator[None]:
    """Refuse every connection to the test's database (and cut the open ones) for a while."""
    name = make_url(database_url).database
    admin_url = cluster.url("postgres").replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    try:
        yield
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
