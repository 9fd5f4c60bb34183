"""Ingest leader election: one process per database ingests, the one holding an advisory lock.

The lock (db.locks.INGEST_LEADER_LOCK) is a session lock taken on a dedicated connection,
not one from the pool, so it lives exactly as long as that connection. The leader checks the
connection every `retry_seconds`; when it fails, leadership is lost and ingestion stops
(PostgreSQL released the lock with the session, so another process may already lead). The
others retry the lock at the same interval and take over when the leader dies. Writes are
idempotent, so the moment two processes might overlap during a handover does no harm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from db.locks import INGEST_LEADER_LOCK

log = logging.getLogger(__name__)

# Notice a dead peer within seconds, even when the network drops packets silently.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
             "keepalives_count": 3, "tcp_user_timeout": 10_000, "connect_timeout": 3}


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL of the settings as a plain libpq URL for psycopg."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class LeaderElector:
    """A daemon thread that wins, keeps and loses the ingest leadership, and says so."""

    def __init__(self, database_url: str, *, on_elected: Callable[[], None],
                 on_lost: Callable[[], None], retry_seconds: float = 5.0,
                 key: int = INGEST_LEADER_LOCK) -> None:
        self.url = libpq_url(database_url)
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.retry_seconds = retry_seconds
        self.key = key
        self.elections = 0
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._connection: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._loop, name="ingest-leader", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> LeaderElector:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Step down (stopping ingestion) and release the lock."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True,
                                     application_name="p2pdash-ingest-leader",
                                     **KEEPALIVE) as connection:
                    if self._try_lock(connection):
                        self._lead(connection)
            except psycopg.Error as error:
                log.warning("leader lock connection failed: %s", str(error).strip())
            self._stopping.wait(self.retry_seconds)

    def _try_lock(self, connection: psycopg.Connection) -> bool:
        return bool(connection.execute("SELECT pg_try_advisory_lock(%s)",
                                       (self.key,)).fetchone()[0])

    def _lead(self, connection: psycopg.Connection) -> None:
        """Run ingestion while the lock connection answers; stop it when it does not."""
        self._leading.set()
        self.elections += 1
        log.info("this process is the ingest leader")
        try:
            self._safely(self.on_elected)
            while not self._stopping.wait(self.retry_seconds):
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            log.error("lost the ingest leader lock (its connection failed): %s",
                      str(error).strip())
        finally:
            self._leading.clear()
            self._safely(self.on_lost)
        if self._stopping.is_set() and not connection.closed:
            connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            log.info("stepped down as ingest leader")

    def _safely(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # a failing start/stop must not leave the lock held and idle
            log.exception("ingest leader callback failed")
