"""Test fixtures: a private TimescaleDB cluster per session, a fresh database per test.

The cluster is p2pdash's own EmbeddedPostgres in a temporary directory (as root its server
runs as `postgres`). Migrations run once into a template database; each test gets a clone,
which takes a fraction of a second. Browser tests use Debian's Chromium headless.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from app import create_app
from app.access import ROLES
from app.auth import commands, passwords, users
from app.config import Settings, load_settings
from db.embedded import EmbeddedPostgres, free_port
from db.engine import make_engine
from db.migrate import upgrade
from layouts.ids import NAV_USER

# Argon2id at RFC 9106's cost (64 MiB, 3 passes) takes ~0.35 s a hash and check here, and
# most tests sign someone in: in this process the suite hashes with the same algorithm at
# a test-only cost, through the app's own code. `p2pdash run` in a subprocess keeps the
# real one; test_secrets_at_rest still sees argon2id hashes.
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
passwords._DUMMY_HASH = passwords._hasher.hash("p2pdash-no-such-user")

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


def migrated_cluster(prefix: str, **options: object) -> Iterator[EmbeddedPostgres]:
    """A fast TimescaleDB cluster in a scratch directory, its database migrated; stopped
    and removed after."""
    root = _scratch_dir(prefix)
    cluster = EmbeddedPostgres(root, settings=FAST_UNSAFE, **options)
    cluster.ensure_running()
    engine = make_engine(cluster.url())
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.stop(force=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EmbeddedPostgres]:
    """A TimescaleDB cluster for the whole session, with a migrated template database."""
    yield from migrated_cluster("p2pdash-test-pg-", database=TEMPLATE)


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
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's migrated database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_database_url(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An empty database (no tables, no extension) on the TimescaleDB cluster."""
    yield from _new_database(pg_cluster, None)


@pytest.fixture
def plain_database_url(plain_pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An empty database on a server without TimescaleDB."""
    yield from _new_database(plain_pg_cluster, None)


@pytest.fixture(params=["timescaledb", "plain"])
def each_server_engine(request) -> Iterator[Engine]:
    """A migrated database on TimescaleDB, then one on plain PostgreSQL: a test taking it
    runs on both."""
    fixture = "database_url" if request.param == "timescaledb" else "plain_database_url"
    engine = make_engine(request.getfixturevalue(fixture))
    upgrade(engine)
    yield engine
    engine.dispose()


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


def password_for(role: str) -> str:
    """The password the test users of a role sign in with."""
    return f"correct-horse-{role}-battery"


def add_user(app: Flask, role: str, username: str | None = None,
             password: str | None = None) -> users.User:
    """Create a user of `role` (named after it unless told) through the real command."""
    engine = app.extensions["p2pdash"].engine
    return commands.create_user(engine, "test", username or role, password or password_for(role),
                                role)


def api_key(app: Flask, role: str = "analyst", scopes: tuple[str, ...] = ("read",),
            username: str | None = None, **options) -> tuple[dict, str]:
    """Create an API key (through the real command) for the user named after `role`."""
    engine = app.extensions["p2pdash"].engine
    username = username or role
    if users.find(engine, username) is None:
        add_user(app, role, username)
    return commands.create_key(engine, "test", username, "test key", list(scopes), **options)


def ensure_user(app: Flask, role: str) -> None:
    """Make sure the user named after `role` exists."""
    if users.find(app.extensions["p2pdash"].engine, role) is None:
        add_user(app, role)


class AuthActions:
    """Sign a test client in and out through the real login form (CSRF token and all)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf_token(self) -> str:
        """The CSRF token of a fresh login form."""
        page = self.client.get("/login").get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert match, "the login form carries a CSRF token"
        return match[1]

    def login(self, username: str, password: str, *, remember: bool = False,
              next_path: str | None = None):
        """Post the login form; return the response (302 on success)."""
        form = {"csrf_token": self.csrf_token(), "username": username, "password": password}
        if remember:
            form["remember"] = "y"
        url = "/login" + (f"?next={next_path}" if next_path else "")
        return self.client.post(url, data=form)

    def logout(self):
        """Sign out: POST the form of the sign-out page, CSRF token and all."""
        page = self.client.get("/logout").get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, "the sign-out page carries a CSRF token"
        return self.client.post("/logout", data={"csrf_token": match[1]})

    def dash_headers(self) -> dict[str, str]:
        """Headers a Dash callback POST needs: load a page, echo its CSRF cookie."""
        self.client.get("/")
        cookie = self.client.get_cookie("_csrf_token")
        assert cookie is not None, "a signed-in page load sets the _csrf_token cookie"
        return {"X-CSRFToken": cookie.value}


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def client_as(app: Flask) -> Callable[[str], FlaskClient]:
    """A factory of test clients signed in as the user named after a role."""

    def make(role: str) -> FlaskClient:
        assert role in ROLES
        ensure_user(app, role)
        signed_in = app.test_client()
        response = AuthActions(signed_in).login(role, password_for(role))
        assert response.status_code == 302, response.get_data(as_text=True)
        return signed_in

    return make


def browser_sign_in(dash_duo, username: str, password: str, path: str = "/") -> None:
    """Sign in through the login page in Chromium, then open `path` and wait for Dash."""
    base = dash_duo.server.url
    dash_duo.driver.get(f"{base}/login")
    dash_duo.wait_for_element("#username", timeout=20).send_keys(username)
    dash_duo.find_element("#password").send_keys(password)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element(f"#{NAV_USER}", timeout=20)
    dash_duo.server_url = base
    if path != "/":
        dash_duo.wait_for_page(f"{base}{path}", timeout=20)


@pytest.fixture
def start_as(dash_duo, app: Flask, dash_app, port: int) -> Callable[..., None]:
    """Start the app in a real server and sign Chromium in as the user of a role."""

    def start(role: str, path: str = "/") -> None:
        ensure_user(app, role)
        dash_duo.start_server(dash_app, navigate=False, port=port)
        browser_sign_in(dash_duo, role, password_for(role), path)

    return start


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
