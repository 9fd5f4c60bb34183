"""Bulk merge: COPY rows into a temporary staging table, then INSERT ... ON CONFLICT.

COPY is PostgreSQL's fastest way in; the merge makes the write idempotent (a re-delivered
message or a re-run backfill changes nothing). Within one batch the last row for a key wins.

The staging table lives as long as the database session (ON COMMIT DELETE ROWS empties it),
so a busy writer does not create and drop a table, with its catalog rows, in every batch.
Its name carries a digest of the column list, so a session never copies into a staging table
of an older shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: rows new to the table, rows updated, and rows left as they were."""

    inserted: int
    updated: int
    skipped: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_name(table: Table, columns: Sequence[str]) -> str:
    digest = hashlib.sha1(",".join(columns).encode()).hexdigest()[:10]
    return _quote(f"stage_{table.name}_{digest}")


def copy_merge(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
               key: Sequence[str], update: Sequence[str] = (), only_if: str | None = None,
               unique_keys: bool = False) -> MergeResult:
    """Write `rows` into `table`; on a key conflict update the `update` columns, or skip.

    `only_if` is an SQL condition on the stored row (named by the table) that must hold for
    an update to happen, e.g. "candles.is_closed IS NOT TRUE". `unique_keys` promises that
    no two rows share a key, which spares the de-duplicating sort.
    """
    if not rows:
        return MergeResult(0, 0, 0)
    columns = list(rows[0].keys())
    stage = _stage_name(table, columns)
    cols = ", ".join(map(_quote, columns))
    keys = ", ".join(map(_quote, key))
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                   f"(LIKE {_quote(table.name)} INCLUDING DEFAULTS, "
                   "_seq bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])
    source = (f"SELECT {cols} FROM {stage}" if unique_keys else
              f"SELECT DISTINCT ON ({keys}) {cols} FROM {stage} ORDER BY {keys}, _seq DESC")
    cursor.execute(
        f"WITH merged AS (INSERT INTO {_quote(table.name)} ({cols}) {source} "
        f"ON CONFLICT ({keys}) {_action(update, only_if)} RETURNING (xmax = 0) AS fresh) "
        "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) FROM merged")
    inserted, updated = cursor.fetchone()
    # Emptied at commit anyway; emptied now so a second merge in this transaction starts clean.
    cursor.execute(f"DELETE FROM {stage}")
    return MergeResult(inserted, updated, len(rows) - inserted - updated)


def _action(update: Sequence[str], only_if: str | None) -> str:
    if not update:
        return "DO NOTHING"
    sets = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in update)
    return f"DO UPDATE SET {sets}" + (f" WHERE {only_if}" if only_if else "")
