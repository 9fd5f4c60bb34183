"""Stream an export (db/export.py) as CSV, Excel-ready text, Parquet or Binance's layout.

CSV and Excel come from `COPY (SELECT ...) TO STDOUT` and are passed on block by block;
Parquet and aggregated candles read a server-side cursor in bounded batches. Memory stays
flat whatever the row count. An error in the middle raises out of the generator: the HTTP
layer then aborts the chunked response, so a client never gets a cut file that looks whole
(a CSV's last line has no line end, and the chunked stream has no final chunk).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from db.export import ROW_GROUP, ExportRequest, Query, candle_windows
from db.intervals import to_ms

BOM = "\ufeff"
ARROW_TYPES = {"text": pa.string(), "int": pa.int64(), "decimal": pa.decimal128(38, 18),
               "time": pa.timestamp("us", tz="UTC"), "bool": pa.bool_()}
CHUNK = 256 * 1024  # bytes handed to the web server at a time
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


def copy_blocks(engine: Engine, query: Query, options: str) -> Iterator[bytes]:
    """COPY (query) TO STDOUT WITH (options), in chunks of about CHUNK bytes (psycopg hands
    over one row per block: passing each on would cost a write and a chunk per row)."""
    sql, params = _compiled(engine, query)
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY ({sql}) TO STDOUT WITH ({options})", params) as copy:
            pending, size = [], 0
            for block in copy:
                pending.append(bytes(block))
                size += len(block)
                if size >= CHUNK:
                    yield b"".join(pending)
                    pending, size = [], 0
            if pending:
                yield b"".join(pending)


def csv_stream(engine: Engine, request: ExportRequest) -> Iterator[bytes]:
    if request.query.rows is not None:
        yield from _text_rows(engine, request, separator=",")
        return
    yield from copy_blocks(engine, request.query, "FORMAT csv, HEADER")


def excel_stream(engine: Engine, request: ExportRequest) -> Iterator[bytes]:
    """UTF-16LE with a BOM, tab-separated, CRLF: Excel's own Unicode text in any locale."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    yield BOM.encode("utf-16-le")
    blocks = (_text_rows(engine, request, separator="\t") if request.query.rows is not None
              else copy_blocks(engine, request.query, "FORMAT csv, HEADER, DELIMITER E'\\t'"))
    for block in blocks:
        yield decoder.decode(block).replace("\n", "\r\n").encode("utf-16-le")
    yield decoder.decode(b"", final=True).encode("utf-16-le")


def parquet_stream(engine: Engine, request: ExportRequest) -> Iterator[bytes]:
    """Row groups of ROW_GROUP rows; decimals as decimal128(38, 18), times in UTC."""
    columns = request.query.columns
    schema = pa.schema([(column.name, ARROW_TYPES[column.kind]) for column in columns])
    sink = io.BytesIO()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for batch in _row_batches(engine, request):
            if not batch:
                continue
            arrays = [pa.array(values, type=ARROW_TYPES[column.kind])
                      for column, values in zip(columns, zip(*batch, strict=True), strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            yield _drain(sink)
    finally:
        writer.close()
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _row_batches(engine: Engine, request: ExportRequest) -> Iterator[list[tuple]]:
    if request.query.rows is not None:
        yield from request.query.rows(engine)
        return
    sql, params = _compiled(engine, request.query, native=True)
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        # A named (server-side) cursor: only one row group is ever in this process.
        with raw.cursor(name="p2pdash_export") as cursor:
            cursor.itersize = ROW_GROUP
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(ROW_GROUP):
                yield batch


def binance_stream(engine: Engine, request: ExportRequest) -> Iterator[bytes]:
    """Binance's kline archive rows: open time ms, O, H, L, C, volume, close time ms, quote
    volume, trades, taker base, taker quote, ignore (0); no header."""
    for candles in candle_windows(engine, request.query.params):
        lines = [",".join((str(to_ms(c.open_time)), _text(c.open), _text(c.high), _text(c.low),
                           _text(c.close), _text(c.volume), str(to_ms(c.close_time)),
                           _text(c.quote_volume), str(c.trades), _text(c.taker_base_volume),
                           _text(c.taker_quote_volume), "0")) for c in candles]
        if lines:
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


def _text_rows(engine: Engine, request: ExportRequest, *, separator: str) -> Iterator[bytes]:
    """CSV text of a Python-computed dataset, quoted like COPY's."""
    columns = request.query.columns
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    for batch in request.query.rows(engine):
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


FORMATS = {"csv": csv_stream, "excel": excel_stream, "parquet": parquet_stream,
           "binance": binance_stream}


def stream(engine: Engine, request: ExportRequest) -> Iterator[bytes]:
    """The export's bytes, in its format, as they are read."""
    return FORMATS[request.format](engine, request)
