"""Test fixtures: a private TimescaleDB cluster per session, a fresh database per test.

The cluster is p2pdash's own EmbeddedPostgres in a temporary directory (as root its server
runs as `postgres`). Migrations run once into a template database; each test gets a clone,
which takes a fraction of a second. Browser tests use Debian's Chromium headless.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from app import create_app
from app.config import Settings, load_settings
from db.embedded import EmbeddedPostgres, free_port
from db.engine import make_engine
from db.migrate import upgrade

TEMPLATE = "p2pdash_template"
TEST_SECRET = "test-secret-key-" + "x" * 32
# Without this, TimescaleDB's background workers hold connections to the template now and
# then, and CREATE DATABASE ... TEMPLATE fails with "source database is being accessed".
FAST_UNSAFE = {"timescaledb.max_background_workers": "0", "fsync": "off",
               "synchronous_commit": "off", "full_page_writes": "off"}

os.environ.setdefault("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")


def _scratch_dir(prefix: str) -> Path:
    # Searchable by the postgres user, which runs the server when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _admin(cluster: EmbeddedPostgres) -> psycopg.Connection:
    return psycopg.connect(cluster.url("postgres").replace("+psycopg", ""), autocommit=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EmbeddedPostgres]:
    """A TimescaleDB cluster for the whole session, with a migrated template database."""
    root = _scratch_dir("p2pdash-test-pg-")
    cluster = EmbeddedPostgres(root, settings=FAST_UNSAFE, database=TEMPLATE)
    cluster.ensure_running()
    engine = make_engine(cluster.url())
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.stop(force=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def plain_pg_cluster() -> Iterator[EmbeddedPostgres]:
    """A cluster without TimescaleDB preloaded: what a plain PostgreSQL server offers."""
    root = _scratch_dir("p2pdash-test-plainpg-")
    cluster = EmbeddedPostgres(root, timescaledb=False, settings={"fsync": "off"})
    cluster.ensure_running()
    yield cluster
    cluster.stop(force=True)
    shutil.rmtree(root, ignore_errors=True)


def _new_database(cluster: EmbeddedPostgres, template: str | None) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with _admin(cluster) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{clause}')
    yield cluster.url(name)
    with _admin(cluster) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """A migrated TimescaleDB database of this test's own."""
    yield from _new_database(pg_cluster, TEMPLATE)


@pytest.fixture
def empty_database_url(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An empty database (no tables, no extension) on the TimescaleDB cluster."""
    yield from _new_database(pg_cluster, None)


@pytest.fixture
def plain_database_url(plain_pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An empty database on a server without TimescaleDB."""
    yield from _new_database(plain_pg_cluster, None)


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings for a test app: its own data dir, no ingestion, a fixed secret."""
    base = {"P2PDASH_ENV": "test", "P2PDASH_DATA_DIR": str(tmp_path / "var"),
            "SECRET_KEY": TEST_SECRET, "INGEST_ENABLED": "false", "P2P_MARKETS": ""}
    return load_settings(environ={**base, **env}, env_file=None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, DATABASE_URL=database_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    server = create_app(settings)
    yield server
    server.extensions["p2pdash"].engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def dash_app(app: Flask):
    """The Dash app mounted on `app`, for dash_duo.start_server(dash_app, port=...)."""
    return app.extensions["dash"]


@pytest.fixture
def port() -> int:
    return free_port()


def pytest_setup_options():
    """Chromium flags for a closed network: no background traffic, no first-run work."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for flag in ("--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--window-size=1400,1000"):
        options.add_argument(flag)
    return options


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/browser/ carries the browser marker."""
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _chromium_present(request: pytest.FixtureRequest) -> None:
    wants_browser = any(item.get_closest_marker("browser") for item in request.session.items)
    if wants_browser and not shutil.which("chromedriver"):
        pytest.exit("chromedriver not found: run scripts/bootstrap.sh --test", returncode=3)
