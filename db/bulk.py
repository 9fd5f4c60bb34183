"""Bulk merge: COPY rows into a temporary staging table, then INSERT ... ON CONFLICT.

COPY is PostgreSQL's fastest way in; the merge makes the write idempotent (a re-delivered
message or a re-run backfill changes nothing). Within one batch the last row for a key wins.
"""

from __future__ import annotations

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


def copy_merge(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
               key: Sequence[str], update: Sequence[str] = ()) -> MergeResult:
    """Write `rows` into `table`; on a key conflict update the `update` columns, or skip."""
    if not rows:
        return MergeResult(0, 0, 0)
    columns = list(rows[0].keys())
    stage = _quote(f"stage_{table.name}")
    cols = ", ".join(map(_quote, columns))
    keys = ", ".join(map(_quote, key))
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                   f"(LIKE {_quote(table.name)} INCLUDING DEFAULTS, "
                   "_seq bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP")
    with cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])
    action = ("DO UPDATE SET " + ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in update)
              if update else "DO NOTHING")
    cursor.execute(
        f"WITH merged AS (INSERT INTO {_quote(table.name)} ({cols}) "
        f"SELECT DISTINCT ON ({keys}) {cols} FROM {stage} ORDER BY {keys}, _seq DESC "
        f"ON CONFLICT ({keys}) {action} RETURNING (xmax = 0) AS fresh) "
        "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) FROM merged")
    inserted, updated = cursor.fetchone()
    cursor.execute(f"DELETE FROM {stage}")
    return MergeResult(inserted, updated, len(rows) - inserted - updated)
