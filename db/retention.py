"""Retention: drop raw rows older than each table's keep time, and say what went.

On TimescaleDB a hypertable loses whole chunks (`drop_chunks`: no row-by-row delete, no
bloat, no long lock): a chunk goes only when all of it is older than the cutoff, so nothing
newer is touched and the oldest row kept may be up to one chunk older than the cutoff. On
plain PostgreSQL the same cutoff is applied by DELETE in batches, each its own short
transaction, so ingestion keeps writing meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.errors import LockNotAvailable
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from db.timescale import installed_version

# The tables retention may cut, and the time column each is cut by.
TIME_COLUMNS = {"book_tickers": "ts", "tickers_24h": "ts", "p2p_offers": "captured_at",
                "candles": "open_time", "p2p_snapshots": "captured_at"}
# Tables whose rows are cut only once rolled up: the end of what the rollup holds. The
# hourly job rolls every market's hour up together, so all hours before it are in.
ROLLED_UP_UNTIL = {
    "p2p_snapshots": "SELECT max(bucket) + interval '1 hour' FROM p2p_hourly",
}
DELETE_BATCH = 5_000
LOCK_TIMEOUT = "5s"
COUNT_BYTES = 64 << 20  # a never-analysed chunk up to this size is counted, not estimated
TUPLE_OVERHEAD = 28  # a heap tuple's header and line pointer, beyond its data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dropped:
    """What one table lost: the cutoff, the chunks (TimescaleDB) and about how many rows."""

    table: str
    cutoff: datetime
    chunks: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    postponed: bool = False  # a chunk's lock was not had in time: the next run tries again

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "cutoff": self.cutoff.isoformat(), "rows": self.rows,
                "chunks": self.chunks, "postponed": self.postponed}


def is_hypertable(connection: Connection, table: str) -> bool:
    """Whether `table` is a TimescaleDB hypertable in this database."""
    if installed_version(connection) is None:
        return False
    return bool(connection.scalar(text(
        "SELECT count(*) FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = :t"), {"t": table}))


def _chunks_before(connection: Connection, table: str, cutoff: datetime) -> list[dict[str, Any]]:
    rows = connection.execute(text(
        "SELECT chunk_schema || '.' || chunk_name AS chunk, range_start, range_end, "
        "       c.reltuples::bigint AS rows "
        "FROM timescaledb_information.chunks ch "
        "JOIN pg_class c ON c.oid = (quote_ident(ch.chunk_schema) || '.' || "
        "                           quote_ident(ch.chunk_name))::regclass "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = :t "
        "  AND range_end <= :cutoff ORDER BY range_start"), {"t": table, "cutoff": cutoff})
    return [{"chunk": row.chunk, "from": row.range_start.astimezone(UTC).isoformat(),
             "to": row.range_end.astimezone(UTC).isoformat(),
             "rows": _rows(connection, row.chunk, row.rows)} for row in rows.all()]


def _rows(connection: Connection, chunk: str, estimate: int) -> int:
    """About how many rows a chunk holds: the planner's count once autovacuum has analysed
    it; counted when it is small; else its size over the width of a sample of its rows (a
    day of tickers is far too big to count inside the transaction that drops it)."""
    if estimate >= 0:
        return estimate
    size = connection.scalar(text(f"SELECT pg_relation_size('{chunk}')"))
    if size <= COUNT_BYTES:
        return connection.scalar(text(f"SELECT count(*) FROM {chunk}"))
    return int(connection.scalar(text(
        f"SELECT coalesce(:size / nullif(avg(pg_column_size(s.*)) + {TUPLE_OVERHEAD}, 0), 0) "
        f"FROM (SELECT * FROM {chunk} LIMIT 1000) AS s"), {"size": size}))


def _drop_chunks(engine: Engine, table: str, cutoff: datetime) -> Dropped:
    """Drop the chunks wholly before `cutoff`. drop_chunks takes each chunk's exclusive
    lock: behind a long dashboard query reading one it gives up after LOCK_TIMEOUT rather
    than queue every later reader of the chunk behind itself; the next run tries again."""
    try:
        with engine.begin() as connection:
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            chunks = _chunks_before(connection, table, cutoff)
            if chunks:
                connection.execute(text("SELECT drop_chunks(CAST(:t AS regclass), "
                                        "older_than => CAST(:cutoff AS timestamptz))"),
                                   {"t": table, "cutoff": cutoff})
    except OperationalError as error:
        if not isinstance(error.orig, LockNotAvailable):
            raise
        log.warning("retention: %s waited %s for a chunk's lock; trying again next run",
                    table, LOCK_TIMEOUT, extra={"table": table})
        return Dropped(table, cutoff, [], 0, postponed=True)
    return Dropped(table, cutoff, chunks, sum(chunk["rows"] for chunk in chunks))


def _delete_batches(engine: Engine, table: str, column: str, cutoff: datetime) -> Dropped:
    """DELETE in short transactions, each followed by a pause as long as it took, so that
    ingestion's commits keep their turn; a batch lost in a crash is deleted next run, so
    its commit need not wait for the disk."""
    statement = text(f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                     f"SELECT ctid FROM {table} WHERE {column} < :cutoff LIMIT :batch))")
    total = 0
    while True:
        started = time.monotonic()
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL synchronous_commit = off"))
            deleted = connection.execute(statement, {"cutoff": cutoff,
                                                     "batch": DELETE_BATCH}).rowcount
        total += deleted
        if deleted < DELETE_BATCH:
            return Dropped(table, cutoff, [], total)
        time.sleep(min(1.0, time.monotonic() - started))


def apply(engine: Engine, keep_days: Mapping[str, int], now: datetime | None = None
          ) -> list[Dropped]:
    """Cut every table in `keep_days` (days > 0) at now - days, and a rolled-up table no
    later than what its rollup holds; return what each lost."""
    now = now or datetime.now(UTC)
    dropped = []
    for table, days in keep_days.items():
        if days <= 0:
            continue
        column = TIME_COLUMNS[table]
        cutoff = now - timedelta(days=days)
        with engine.connect() as connection:
            chunked = is_hypertable(connection, table)
            rolled = connection.scalar(text(ROLLED_UP_UNTIL[table])) \
                if table in ROLLED_UP_UNTIL else cutoff
        if rolled is None:
            continue  # nothing is rolled up yet: nothing may go
        cutoff = min(cutoff, rolled)
        dropped.append(_drop_chunks(engine, table, cutoff) if chunked
                       else _delete_batches(engine, table, column, cutoff))
    return dropped


def oldest_rows(engine: Engine) -> dict[str, str | None]:
    """The time of the oldest row of each table retention may cut (ISO 8601, None: empty).

    A hypertable answers from its time index's first chunk (TimescaleDB makes one per
    hypertable); on plain PostgreSQL migration 0007 adds the same time indexes."""
    found = {}
    with engine.connect() as connection:
        for table, column in TIME_COLUMNS.items():
            oldest = connection.scalar(text(
                f"SELECT {column} FROM {table} ORDER BY {column} LIMIT 1"))
            found[table] = oldest.astimezone(UTC).isoformat() if oldest else None
    return found
