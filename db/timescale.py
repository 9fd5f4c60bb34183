"""TimescaleDB detection: use the extension when the server has it, say loudly when it does not."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

PLAIN_POSTGRES_WARNING = (
    "TimescaleDB is not available: tables are plain PostgreSQL tables. You lose hypertable "
    "chunking (time-range queries scan whole indexes and slow down as data grows) and "
    "chunk-based retention (old rows are removed by DELETE instead of dropping chunks)."
)


def installed_version(connection: Connection) -> str | None:
    """Return the version of the timescaledb extension in this database, or None."""
    return connection.scalar(
        text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    )


def uses_timescaledb(connection: Connection) -> bool:
    """Whether the database has TimescaleDB (asked once per pooled connection)."""
    if "timescaledb" not in connection.info:
        connection.info["timescaledb"] = installed_version(connection) is not None
    return connection.info["timescaledb"]


def _why_unavailable(connection: Connection) -> str | None:
    available = connection.scalar(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    )
    if not available:
        return "the server has no timescaledb extension installed"
    preload = connection.scalar(text("SELECT current_setting('shared_preload_libraries')"))
    if "timescaledb" not in (preload or ""):
        return "timescaledb is installed but not in shared_preload_libraries"
    return None


def ensure_extension(connection: Connection) -> str | None:
    """Create the extension if the server can load it; return its version or None."""
    version = installed_version(connection)
    if version:
        return version
    reason = _why_unavailable(connection)
    if reason is None:
        savepoint = connection.begin_nested()
        try:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
            savepoint.commit()
        except DBAPIError as error:
            savepoint.rollback()
            reason = f"CREATE EXTENSION timescaledb was refused: {error.orig}"
    if reason is None:
        return installed_version(connection)
    log.warning("%s (%s)", PLAIN_POSTGRES_WARNING, reason)
    return None


def make_hypertable(connection: Connection, table: str, column: str, interval: str) -> None:
    """Turn an empty table into a hypertable partitioned by time."""
    connection.execute(
        text("SELECT create_hypertable(:table, :column, "
             "chunk_time_interval => CAST(:i AS interval))"),
        {"table": table, "column": column, "i": interval},
    )
