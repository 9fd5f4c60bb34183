"""A private PostgreSQL cluster under the data dir: the default database, and the tests' one.

The cluster listens on loopback only, on a free port, with a generated password. It keeps
its data between runs; `ensure_running` reuses a server that is already up (another
p2pdash process started it) and `stop` stops only what this object started. PostgreSQL
refuses to run as root, so under root the server runs as the `postgres` user.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

SERVER_USER = "postgres"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded cluster cannot be created or started; the message says what to do."""


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries (PG_BINDIR, pg_config, or the newest installed)."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                check=False)
        candidates.append(result.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise EmbeddedDatabaseError(
        "no PostgreSQL server found (initdb missing): run scripts/bootstrap.sh, install "
        "postgresql, or set DATABASE_URL to an existing server")


def timescaledb_installed(bindir: Path) -> bool:
    """Whether the server's library directory holds timescaledb."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        libdir = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True,
                                check=True).stdout.strip()
    else:
        libdir = str(bindir.parent / "lib")
    return Path(libdir, "timescaledb.so").exists()


def free_port(preferred: int | None = None) -> int:
    """Return `preferred` if it is free on loopback, else any free loopback port. Closed
    connections of a stopped server (TIME_WAIT) do not make its port taken: PostgreSQL
    binds with SO_REUSEADDR as this probe does, so a restart keeps its port and clients'
    URLs stay valid."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise EmbeddedDatabaseError("no free TCP port on 127.0.0.1")


class EmbeddedPostgres:
    """A PostgreSQL cluster in `root` (data/, log, password), started on demand."""

    def __init__(self, root: Path, *, timescaledb: bool = True,
                 settings: Mapping[str, str] | None = None, database: str = "p2pdash") -> None:
        self.root = Path(root).absolute()
        self.data = _data_dir(self.root)
        self.database = database
        self.want_timescaledb = timescaledb
        self.extra_settings = dict(settings or {})
        self._started_by: int | None = None
        self._bindir: Path | None = None

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    @property
    def log_file(self) -> Path:
        # Inside the data dir: the server user may not write anywhere else under root.
        return self.data / "server.log"

    @property
    def port(self) -> int | None:
        path = self.root / "port"
        return int(path.read_text()) if path.exists() else None

    @property
    def password(self) -> str:
        return (self.root / "password").read_text().strip()

    def url(self, database: str | None = None) -> str:
        """The SQLAlchemy URL of a database in this cluster."""
        return URL.create("postgresql+psycopg", username=SERVER_USER, password=self.password,
                          host="127.0.0.1", port=self.port,
                          database=database or self.database).render_as_string(False)

    def ensure_running(self) -> str:
        """Create the cluster if needed, start it unless it runs already; return the URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not (self.data / "PG_VERSION").exists():
                self._init()
            if self.is_running():
                log.info("reusing embedded PostgreSQL", extra={"port": self.port})
            else:
                self._start()
            self._ensure_database()
        return self.url()

    def is_running(self) -> bool:
        """Whether a server is up on this data directory."""
        if not (self.data / "postmaster.pid").exists():
            return False
        result = self._pg("pg_ctl", "status", "-D", str(self.data), check=False)
        return result.returncode == 0

    @property
    def started_here(self) -> bool:
        """Whether this process started the server. A forked child (a gunicorn worker
        unwinding its parent's stack as it exits) did not, whatever it inherited."""
        return self._started_by == os.getpid()

    def stop(self, *, force: bool = False) -> None:
        """Stop the server if this process started it (or always, with force)."""
        if (self.started_here or force) and self.is_running():
            self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
            log.info("embedded PostgreSQL stopped", extra={"data_dir": str(self.data)})
        self._started_by = None

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _init(self) -> None:
        log.info("creating embedded PostgreSQL cluster", extra={"data_dir": str(self.data)})
        if self.data.parent != self.root:
            log.warning("the postgres user cannot reach %s: the embedded cluster's data lives "
                        "in %s instead", self.root, self.data)
        password_file = self.root / "password"
        password_file.write_text(secrets.token_urlsafe(24) + "\n")
        password_file.chmod(0o600)
        self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        pwfile = self.data.parent / ".initdb-pw"
        pwfile.write_text(self.password + "\n")
        self._hand_to_server_user(self.data, pwfile)
        try:
            self._pg("initdb", "-D", str(self.data), "-U", SERVER_USER, "-E", "UTF8",
                     "--no-locale", "--auth=scram-sha-256", f"--pwfile={pwfile}")
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'p2pdash.conf'\n")

    def _start(self) -> None:
        port = free_port(self.port)
        (self.root / "port").write_text(f"{port}\n")
        settings = {
            "port": str(port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            "fsync": "on",
            **self._timescaledb_settings(),
            **self.extra_settings,
        }
        conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
        (self.data / "p2pdash.conf").write_text(conf)
        self._hand_to_server_user(self.data / "p2pdash.conf")
        log.info("starting embedded PostgreSQL", extra={"port": port, "data_dir": str(self.data)})
        result = self._pg("pg_ctl", "start", "-D", str(self.data), "-w", "-t", "60",
                          "-l", str(self.log_file), check=False)
        if result.returncode != 0:
            tail = _tail(self.log_file)
            raise EmbeddedDatabaseError(f"PostgreSQL did not start: {tail}")
        self._started_by = os.getpid()

    def _timescaledb_settings(self) -> dict[str, str]:
        if not self.want_timescaledb:
            return {}
        if not timescaledb_installed(self.bindir):
            log.warning("timescaledb is not installed for %s: the embedded database will use "
                        "plain tables (run scripts/bootstrap.sh to build it)", self.bindir)
            return {}
        return {"shared_preload_libraries": "'timescaledb'", "timescaledb.telemetry_level": "off"}

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres").replace("+psycopg", ""),
                             autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                        (self.database,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{self.database}"')

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise EmbeddedDatabaseError(
                "running as root, but there is no 'postgres' user to run PostgreSQL as "
                "(install the postgresql package, or run p2pdash as an ordinary user)") from None
        return ["runuser", "-u", SERVER_USER, "--"]

    def _hand_to_server_user(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        self._as_server_user()
        for path in paths:
            shutil.chown(path, SERVER_USER, SERVER_USER)
        _check_traversable(self.data.parent)

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*self._as_server_user(), str(self.bindir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise EmbeddedDatabaseError(f"{program} failed: {message[-1] if message else '?'}")
        return result


def _traversable(path: Path) -> bool:
    """Whether any user can reach `path` through every parent (the o+x bits); a part not
    created yet will be, searchable."""
    return all(os.stat(parent).st_mode & 0o001
               for parent in [path, *path.parents] if parent.exists())


def _data_dir(root: Path) -> Path:
    """Where the cluster's data lives: root/data. Under root, PostgreSQL runs as `postgres`,
    which must reach it; when root sits where it cannot (a clone in /root, or in a private
    temporary directory), the data lives in the postgres user's home instead, in a
    directory named after root, so the same root always finds the same cluster."""
    if os.geteuid() != 0 or _traversable(root):
        return root / "data"
    try:
        home = Path(pwd.getpwnam(SERVER_USER).pw_dir)
    except KeyError:
        return root / "data"  # _as_server_user says what is missing
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return home / "p2pdash" / digest / "data"


def _check_traversable(root: Path) -> None:
    """The postgres user must be able to reach the data dir through every parent."""
    for parent in [root, *root.parents]:
        if not os.stat(parent).st_mode & 0o001:
            raise EmbeddedDatabaseError(
                f"{parent} is not searchable by the 'postgres' user, which must run the "
                f"embedded database under root: chmod o+x {parent}, or set P2PDASH_DATA_DIR "
                "to a directory it can reach")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
