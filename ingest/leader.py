"""Ingest leader election: one process per database ingests, the one holding an advisory lock.

The lock (db.locks.INGEST_LEADER_LOCK) is a session lock taken on a dedicated connection,
not one from the pool, so it lives exactly as long as that connection. The leader checks the
connection every `retry_seconds`. When it fails, the database is gone for a while (a
restart, a network cut): that is an outage, not a lost election. Ingestion goes on (the
writer holds rows, the stream keeps reading) and the leader re-takes the lock as soon as
the database answers. Only if another process took the lock meanwhile does this one step
down; writes are idempotent, so the short overlap duplicates nothing. The others retry the
lock at the same interval and take over when the leader dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from app import metrics
from db.locks import INGEST_LEADER_LOCK

log = logging.getLogger(__name__)

# Notice a dead peer within seconds, even when the network drops packets silently.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
             "keepalives_count": 3, "tcp_user_timeout": 10_000, "connect_timeout": 3}
APPLICATION_NAME = "p2pdash-ingest-leader"

# Which session holds an advisory lock: a bigint key shows as classid (high) and objid (low).
_HOLDER = """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((classid::bigint << 32) | objid::bigint) = %s
"""


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL of the settings as a plain libpq URL for psycopg."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class LeaderElector:
    """A daemon thread that wins, keeps (through outages) and loses the ingest leadership."""

    def __init__(self, database_url: str, *, on_elected: Callable[[], None],
                 on_lost: Callable[[], None], on_retaken: Callable[[], None] | None = None,
                 retry_seconds: float = 5.0, key: int = INGEST_LEADER_LOCK) -> None:
        self.url = libpq_url(database_url)
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.on_retaken = on_retaken
        self.retry_seconds = retry_seconds
        self.key = key
        self.elections = 0
        self.retakes = 0
        self.outages = 0
        self.outage_since: float | None = None  # epoch s, while leading without the lock
        self._backend_pid: int | None = None
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ingest-leader", daemon=True)

    @property
    def is_leader(self) -> bool:
        """Whether this process ingests: it holds the lock, or held it when the database
        went away and nobody else has taken it since."""
        return self._leading.is_set()

    @property
    def holds_lock(self) -> bool:
        return self.is_leader and self.outage_since is None

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
                                     application_name=APPLICATION_NAME,
                                     **KEEPALIVE) as connection:
                    if self._try_lock(connection) or self._take_back(connection):
                        self._lead(connection)
                    elif self.is_leader:
                        self._step_down("another process took the ingest leadership while "
                                        "the database was unreachable")
            except psycopg.Error as error:
                self._connection_failed(error)
            self._stopping.wait(self.retry_seconds)
        if self.is_leader:  # stopped while the database was away
            self._step_down("stopped while the database was unreachable")

    def _try_lock(self, connection: psycopg.Connection) -> bool:
        return bool(connection.execute("SELECT pg_try_advisory_lock(%s)",
                                       (self.key,)).fetchone()[0])

    def _take_back(self, connection: psycopg.Connection) -> bool:
        """After a network cut the server may still keep our old session, and the lock with
        it: end that session (ours, so nobody else leads) and take the lock again."""
        if not self.is_leader or self._backend_pid is None:
            return False
        holder = connection.execute(_HOLDER, (self.key,)).fetchone()
        if holder is None or holder[0] != self._backend_pid:
            return holder is None and self._try_lock(connection)
        log.warning("ending this process's old leader session, which still holds the lock",
                    extra={"backend_pid": self._backend_pid})
        connection.execute("SELECT pg_terminate_backend(%s, 5000)", (self._backend_pid,))
        return self._try_lock(connection)

    def _lead(self, connection: psycopg.Connection) -> None:
        """Ingest while the lock connection answers; on failure keep ingesting (an outage)."""
        self._backend_pid = connection.info.backend_pid
        if self.is_leader:
            self._retaken()
        else:
            self._leading.set()
            metrics.LEADER.set(1)
            self.elections += 1
            log.info("this process is the ingest leader")
            self._safely(self.on_elected)
        try:
            while not self._stopping.wait(self.retry_seconds):
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            self.outage_since = time.time()
            self.outages += 1
            log.error("the ingest leader lock connection failed (%s): ingestion goes on, "
                      "the writer holds rows, and the lock is re-taken when the database "
                      "answers", str(error).strip())
            return
        self._step_down("stopping")
        if not connection.closed:
            connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))

    def _retaken(self) -> None:
        down = time.time() - (self.outage_since or time.time())
        self.outage_since = None
        self.retakes += 1
        log.warning("re-took the ingest leader lock after %.1f s without the database", down)
        if self.on_retaken is not None:
            self._safely(self.on_retaken)

    def _connection_failed(self, error: psycopg.Error) -> None:
        if self.outage_since is not None:
            log.warning("still no database after %.1f s; ingestion goes on as leader: %s",
                        time.time() - self.outage_since, str(error).strip())
        else:
            log.warning("leader lock connection failed: %s", str(error).strip())

    def _step_down(self, reason: str) -> None:
        self._leading.clear()
        metrics.LEADER.set(0)
        self.outage_since = None
        self._backend_pid = None
        self._safely(self.on_lost)
        log.info("stepped down as ingest leader (%s)", reason)

    def _safely(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # a failing start/stop must not leave the lock held and idle
            log.exception("ingest leader callback failed")
