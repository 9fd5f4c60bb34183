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
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql


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


@cache
def _types(table: Table, columns: tuple[str, ...]) -> list[str]:
    """PostgreSQL type names of `columns`, for a binary COPY."""
    dialect = postgresql.dialect()
    return [table.columns[name].type.compile(dialect=dialect).lower() for name in columns]


def _copy(cursor: Any, target: str, table: Table, rows: Sequence[Mapping[str, Any]], *,
          binary: bool) -> None:
    """COPY `rows` into `target` (shaped like `table`), as text or binary.

    Text is the default: measured side by side (bench/write_path.py), binary COPY of these
    rows is no faster in the server and costs this process more CPU (psycopg encodes a
    Decimal as binary numeric in more steps than str() formats it). Binary needs values of
    the column's Python type (Decimal for numeric, aware datetime for timestamptz).
    """
    columns = list(rows[0].keys())
    cols = ", ".join(map(_quote, columns))
    options = " (FORMAT BINARY)" if binary else ""
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN{options}") as copy:
        if binary:
            copy.set_types(_types(table, tuple(columns)))
        for row in rows:
            copy.write_row(values(row))


def _stage(cursor: Any, table: Table, rows: Sequence[Mapping[str, Any]], *,
           binary: bool) -> str:
    """COPY `rows` into this session's staging table for `table` and its columns (created
    on first use, emptied at commit); its quoted name."""
    stage = _stage_name(table, list(rows[0].keys()))
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                   f"(LIKE {_quote(table.name)} INCLUDING DEFAULTS, "
                   "_seq bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DELETE ROWS")
    _copy(cursor, stage, table, rows, binary=binary)
    return stage


def copy_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
              binary: bool = False) -> int:
    """COPY `rows` straight into `table`, for rows whose keys are known to be new.

    A key that is there already fails the whole COPY (UniqueViolation); the caller merges
    those rows instead. Returns the rows written.
    """
    if rows:
        cursor = connection.connection.driver_connection.cursor()
        _copy(cursor, _quote(table.name), table, rows, binary=binary)
    return len(rows)


def copy_merge(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
               key: Sequence[str], update: Sequence[str] = (), only_if: str | None = None,
               unique_keys: bool = False, binary: bool = False) -> MergeResult:
    """Write `rows` into `table`; on a key conflict update the `update` columns, or skip.

    `only_if` is an SQL condition on the stored row (named by the table) that must hold for
    an update to happen, e.g. "candles.is_closed IS NOT TRUE". `unique_keys` promises that
    no two rows share a key, which spares the de-duplicating sort. `binary` stages the rows
    with a binary COPY (see _copy).
    """
    if not rows:
        return MergeResult(0, 0, 0)
    columns = list(rows[0].keys())
    cols = ", ".join(map(_quote, columns))
    keys = ", ".join(map(_quote, key))
    cursor = connection.connection.driver_connection.cursor()
    stage = _stage(cursor, table, rows, binary=binary)
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


def merge_newest(connection: Connection, live: Table, rows: Sequence[Mapping[str, Any]], *,
                 series: Sequence[str], time: str, retire_into: Table | None = None,
                 unique: bool = False) -> tuple[MergeResult, int]:
    """Keep one row per series in `live`, the one with the latest `time`: a row for a newer
    time replaces the stored one, a row for the same time updates it, an older one is
    skipped. Of the rows in `rows`, the last for a series and time wins (`unique` promises
    one row per series, which spares sorting them out).

    `retire_into` (a table shaped like `live`, with a unique key of the series and `time`)
    receives each stored row a newer one replaces, unless it has that key already: an open
    candle whose close never came stays on record, open, for the gap repairer to complete.
    The retiring and the merge are one statement, so the rows retired are the ones the merge
    replaces. Returns what the merge did in `live`, and the rows retired.
    """
    total = len(rows)
    if not unique:
        newest: dict[Any, Mapping[str, Any]] = {}
        at = itemgetter(*series)
        for row in rows:
            key = at(row)
            held = newest.get(key)
            if held is None or row[time] >= held[time]:
                newest[key] = row
        rows = list(newest.values())
    if not rows:
        return MergeResult(0, 0, total), 0
    columns = list(rows[0].keys())
    cols = ", ".join(map(_quote, columns))
    keys = ", ".join(map(_quote, series))
    when = _quote(time)
    cursor = connection.connection.driver_connection.cursor()
    stage = _stage(cursor, live, rows, binary=False)
    update = [column for column in columns if column not in series]
    target = _quote(live.name)
    matches = " AND ".join(f"l.{name} = s.{name}" for name in map(_quote, series))
    retire = ""
    if retire_into is not None:
        stored = ", ".join(f"l.{_quote(column)}" for column in columns)
        retire = (f"retired AS (INSERT INTO {_quote(retire_into.name)} ({cols}) "
                  f"SELECT {stored} FROM {target} AS l JOIN {stage} AS s "
                  f"ON {matches} WHERE s.{when} > l.{when} "
                  "ON CONFLICT DO NOTHING RETURNING 1), ")
    # An UPDATE joined to the staged rows for the series stored (twice as fast as the same
    # rows through INSERT ... ON CONFLICT DO UPDATE, which locks each row before updating
    # it); an INSERT of the others: new series, or rows older than the stored one, which
    # its ON CONFLICT skips (and which also covers a series another writer just inserted).
    sets = ", ".join(f"{_quote(column)} = s.{_quote(column)}" for column in update)
    returned = ", ".join(f"l.{name}" for name in map(_quote, series))
    cursor.execute(
        f"WITH {retire}updated AS (UPDATE {target} AS l SET {sets} FROM {stage} AS s "
        f"WHERE {matches} AND l.{when} <= s.{when} RETURNING {returned}), "
        f"added AS (INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage} AS s "
        f"WHERE NOT EXISTS (SELECT FROM updated AS l WHERE {matches}) "
        f"ON CONFLICT ({keys}) {_action(update, f'{target}.{when} <= EXCLUDED.{when}')} "
        "RETURNING (xmax = 0) AS fresh) "
        "SELECT count(*) FILTER (WHERE fresh), "
        "count(*) FILTER (WHERE NOT fresh) + (SELECT count(*) FROM updated), "
        f"{'(SELECT count(*) FROM retired)' if retire else '0'} FROM added")
    inserted, updated, retired = cursor.fetchone()
    cursor.execute(f"DELETE FROM {stage}")
    return MergeResult(inserted, updated, total - inserted - updated), retired


def _action(update: Sequence[str], only_if: str | None) -> str:
    if not update:
        return "DO NOTHING"
    sets = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in update)
    return f"DO UPDATE SET {sets}" + (f" WHERE {only_if}" if only_if else "")

