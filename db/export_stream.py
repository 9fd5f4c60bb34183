"""Stream an export (db/export.py) as CSV, Excel-ready text, Parquet or Binance's layout.

CSV and Excel come from `COPY (SELECT ...) TO STDOUT` and are passed on block by block;
Parquet reads the same COPY through Arrow's streaming CSV reader (text straight into
decimal128 and timestamp columns, no Python object per value) into row groups; datasets
computed in Python come in bounded batches. Memory stays flat whatever the row count, and a
Tally counts the rows sent for the audit log. An error in the middle raises out of the
generator: the HTTP layer then aborts the chunked response, so a client never gets a cut
file that looks whole (a CSV's last line has no line end, the chunked stream no final
chunk).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from db.export import ExportRequest, Query, candle_windows
from db.intervals import to_ms

# Arrow allocates through malloc, not its bundled jemalloc, whose retained pages grew the
# web process by ~30 MB more per Parquet export (bench/export.py).
pa.set_memory_pool(pa.system_memory_pool())

BOM = "\ufeff"
ARROW_TYPES = {"text": pa.string(), "int": pa.int64(), "decimal": pa.decimal128(38, 18),
               "time": pa.timestamp("us", tz="UTC"), "bool": pa.bool_()}
CHUNK = 256 * 1024  # bytes handed to the web server at a time
# Parquet rows per row group and CSV bytes Arrow parses at a time: a 265k-row candle export
# grew the process by 54 MB at 50,000 and 1 MB, 40 MB at these.
ROW_GROUP = 20_000
ARROW_BLOCK = 256 * 1024
WINDOW_WORK_MEM = "64MB"  # a windowed export's sort memory (one window of one market)
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "excel": "text/tab-separated-values; charset=utf-16le",
                 "parquet": "application/vnd.apache.parquet", "binance": "text/csv"}
EXTENSIONS = {"csv": "csv", "excel": "tsv", "parquet": "parquet", "binance": "csv"}


def filename(request: ExportRequest) -> str:
    return f"{request.query.filename}.{EXTENSIONS[request.format]}"


def _compiled(engine: Engine, query: Query, *, native: bool = False) -> tuple[str, Any]:
    """The query as psycopg takes it (%(name)s placeholders) and its parameters."""
    compiled = text(query.sql(native=native)).compile(dialect=engine.dialect)
    return str(compiled), {key: query.params[key] for key in compiled.params}


class Tally:
    """Rows sent so far, for the audit log (counted by the stream, not by line ends: a
    quoted field may hold a newline)."""

    def __init__(self) -> None:
        self.rows = 0


def copy_blocks(engine: Engine, query: Query, options: str, tally: Tally) -> Iterator[bytes]:
    """COPY (query) TO STDOUT WITH (options), in chunks of about CHUNK bytes (psycopg hands
    over one row per block: passing each on would cost a write and a chunk per row).

    A query with a `window` runs as one COPY per window of its range, in order, the header
    in the first only: each window's sort then fits in memory (one COPY of a month of a
    market's adverts sorted 1.7M rows on disk)."""
    sql, params = _compiled(engine, query)
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            if query.window is not None:
                cursor.execute(f"SET LOCAL work_mem = '{WINDOW_WORK_MEM}'")
            pending, size = [], 0
            for number, bounds in enumerate(_windows(query, params)):
                with cursor.copy(f"COPY ({sql}) TO STDOUT WITH "
                                 f"({options if number == 0 else _no_header(options)})",
                                 {**params, **bounds}) as copy:
                    for block in copy:
                        pending.append(bytes(block))
                        size += len(block)
                        if size >= CHUNK:
                            yield b"".join(pending)
                            pending, size = [], 0
                tally.rows += max(cursor.rowcount, 0)  # COPY's own count, known at its end
            if pending:
                yield b"".join(pending)


def _windows(query: Query, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The range in the query's windows (one window: the whole range)."""
    if query.window is None or "start" not in params or "end" not in params:
        yield {}
        return
    start, end = params["start"], params["end"]
    while True:
        stop = min(start + query.window, end)
        yield {"start": start, "end": stop}
        if stop >= end:
            return
        start = stop


def _no_header(options: str) -> str:
    return options.replace(", HEADER", "")


def csv_stream(engine: Engine, request: ExportRequest, tally: Tally) -> Iterator[bytes]:
    if request.query.rows is not None:
        yield from _text_rows(engine, request, tally, separator=",")
        return
    yield from copy_blocks(engine, request.query, "FORMAT csv, HEADER", tally)


def excel_stream(engine: Engine, request: ExportRequest, tally: Tally) -> Iterator[bytes]:
    """UTF-16LE with a BOM, tab-separated, CRLF: Excel's own Unicode text in any locale."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    yield BOM.encode("utf-16-le")
    blocks = (_text_rows(engine, request, tally, separator="\t")
              if request.query.rows is not None
              else copy_blocks(engine, request.query, "FORMAT csv, HEADER, DELIMITER E'\\t'",
                               tally))
    for block in blocks:
        yield decoder.decode(block).replace("\n", "\r\n").encode("utf-16-le")
    yield decoder.decode(b"", final=True).encode("utf-16-le")


def parquet_stream(engine: Engine, request: ExportRequest, tally: Tally) -> Iterator[bytes]:
    """Row groups of ROW_GROUP rows; decimals as decimal128(38, 18), times in UTC."""
    columns = request.query.columns
    schema = pa.schema([(column.name, ARROW_TYPES[column.kind]) for column in columns])
    sink = io.BytesIO()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    try:
        for batch in _arrow_batches(engine, request, schema, Tally()):
            pending.append(batch)
            if sum(part.num_rows for part in pending) >= ROW_GROUP:
                yield _write(writer, sink, schema, pending, tally)
        if pending:
            yield _write(writer, sink, schema, pending, tally)
    finally:
        writer.close()
    yield _drain(sink)


def _write(writer: pq.ParquetWriter, sink: io.BytesIO, schema: pa.Schema,
           pending: list[pa.RecordBatch], tally: Tally) -> bytes:
    table = pa.Table.from_batches(pending, schema=schema)
    writer.write_table(table, row_group_size=table.num_rows)
    tally.rows += table.num_rows
    pending.clear()
    return _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _arrow_batches(engine: Engine, request: ExportRequest, schema: pa.Schema, tally: Tally
                   ) -> Iterator[pa.RecordBatch]:
    """The export as Arrow record batches of `schema`."""
    if request.query.rows is not None:
        for rows in request.query.rows(engine):
            if rows:
                yield pa.RecordBatch.from_arrays(
                    [pa.array(values, type=field.type)
                     for field, values in zip(schema, zip(*rows, strict=True), strict=True)],
                    schema=schema)
        return
    reader = pacsv.open_csv(
        _BlockReader(copy_blocks(engine, request.query, "FORMAT csv, HEADER", tally)),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=ARROW_BLOCK),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False))  # COPY writes NULL bare, '' quoted
    try:
        yield from reader
    finally:
        reader.close()


class _BlockReader(io.RawIOBase):
    """A read-only file over an iterator of byte blocks (what Arrow's reader reads)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._rest = block
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()
        super().close()


def binance_stream(engine: Engine, request: ExportRequest, tally: Tally) -> Iterator[bytes]:
    """Binance's kline archive rows: open time ms, O, H, L, C, volume, close time ms, quote
    volume, trades, taker base, taker quote, ignore (0); no header."""
    for candles in candle_windows(engine, request.query.params):
        lines = [",".join((str(to_ms(c.open_time)), _text(c.open), _text(c.high), _text(c.low),
                           _text(c.close), _text(c.volume), str(to_ms(c.close_time)),
                           _text(c.quote_volume), str(c.trades), _text(c.taker_base_volume),
                           _text(c.taker_quote_volume), "0")) for c in candles]
        if lines:
            tally.rows += len(lines)
            yield ("\n".join(lines) + "\n").encode()


def _text(value: Decimal) -> str:
    return format(value, "f")


def _iso(moment: Any) -> str:
    text_value = moment.astimezone(UTC).isoformat().replace("+00:00", "")
    if "." in text_value:
        text_value = text_value.rstrip("0").rstrip(".")
    return text_value + "Z"


def _cell(kind: str, value: Any) -> str:
    """A value as COPY's CSV would write it (empty for NULL, quoted when needed)."""
    if value is None:
        return ""
    if kind == "time":
        return _iso(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind == "decimal":
        return _text(value)
    return str(value)


def _text_rows(engine: Engine, request: ExportRequest, tally: Tally, *, separator: str
               ) -> Iterator[bytes]:
    """CSV text of a Python-computed dataset, quoted like COPY's."""
    columns = request.query.columns
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    for batch in request.query.rows(engine):
        tally.rows += len(batch)
        for row in batch:
            writer.writerow([_cell(column.kind, value)
                             for column, value in zip(columns, row, strict=True)])
        yield _drain_text(out)
    yield _drain_text(out)


def _drain_text(out: io.StringIO) -> bytes:
    data = out.getvalue().encode()
    out.seek(0)
    out.truncate()
    return data


# ---- estimates ---------------------------------------------------------------------------

COUNT_TIMEOUT_MS = 1500  # an exact count longer than this gives way to the planner's guess
SAMPLE_ROWS = 2000  # rows exported to learn a dataset's bytes per row in a format
# Bytes per value of each kind in CSV, for datasets computed in Python (no sample to take).
TEXT_WIDTHS = {"time": 25, "decimal": 14, "int": 6, "text": 10, "bool": 6}


@dataclass(frozen=True)
class Estimate:
    """What an export will hold: rows (exact, or at most / about), and bytes, roughly."""

    rows: int
    exact: bool
    bytes: int


def estimate(engine: Engine, request: ExportRequest) -> Estimate:
    """Rows and size of an export before it is taken, in about COUNT_TIMEOUT_MS at most."""
    query = request.query
    if query.rows is not None:
        rows, exact = _python_rows(engine, query)
        per_row = sum(TEXT_WIDTHS[column.kind] for column in query.columns) + 1
        return Estimate(rows, exact, int(rows * per_row * _text_factor(request.format)))
    rows, exact = _count(engine, query)
    if not rows:
        return Estimate(0, exact, 0)
    sample = replace(query, template=f"{query.template} LIMIT {SAMPLE_ROWS}", window=None)
    tally = Tally()
    size = sum(len(block) for block in stream(engine, replace(request, query=sample), tally))
    return Estimate(rows, exact, int(size / max(tally.rows, 1) * rows))


def _text_factor(fmt: str) -> float:
    # Excel's UTF-16 doubles the text; Parquet's zstd columns come to about a quarter.
    return {"excel": 2.0, "parquet": 0.25}.get(fmt, 1.0)


def _python_rows(engine: Engine, query: Query) -> tuple[int, bool]:
    if query.most is not None:
        return query.most, False
    return sum(len(batch) for batch in query.rows(engine)), True


def _count(engine: Engine, query: Query) -> tuple[int, bool]:
    """count(*) of the rows, or the planner's estimate when counting takes too long."""
    compiled = text(query.bare_sql()).compile(dialect=engine.dialect)
    sql, params = str(compiled), {key: query.params[key] for key in compiled.params}
    try:
        # The timeout lives and dies with this transaction; a savepoint would not do, as
        # its own ROLLBACK TO can be cancelled by the same short timeout.
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {COUNT_TIMEOUT_MS}")
                return int(cursor.execute(f"SELECT count(*) FROM ({sql}) AS counted",
                                          params).fetchone()[0]), True
    except psycopg.errors.QueryCanceled:
        pass
    with engine.connect() as connection:  # planning is quick, and needs no timeout
        raw = connection.connection.driver_connection
        with raw.transaction(), raw.cursor() as cursor:
            plan = cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()[0]
            return int(plan[0]["Plan"]["Plan Rows"]), False


FORMATS = {"csv": csv_stream, "excel": excel_stream, "parquet": parquet_stream,
           "binance": binance_stream}


def stream(engine: Engine, request: ExportRequest, tally: Tally | None = None
           ) -> Iterator[bytes]:
    """The export's bytes, in its format, as they are read (rows counted in `tally`)."""
    return FORMATS[request.format](engine, request, tally or Tally())
