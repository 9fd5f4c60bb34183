"""The minimal baseline of bench/ingest.py's stream table: every frame a row, by binary COPY.

What p2pdash's ingestion is set against, run by bench/ingest_side.py in a process of its own:

- connections: websocket-client connects to the same fake, the symbols split over
  connections as p2pdash splits them (ingest.binance_ws.connection_groups) and subscribed
  by message the same way (200 streams a SUBSCRIBE, each answered before the next, at most
  4 messages a second: the fake enforces Binance's limits). Frames are read in bulk with
  ingest.ws_frames.FrameReader, the reader p2pdash uses: websocket-client's own per-frame
  recv costs about three times as much a frame and would make a straw man of the baseline;
- parsing: orjson, the fields taken as they come, prices and amounts made Decimal and times
  datetime (what a binary COPY of numeric and timestamptz takes); no validation;
- writing: one thread takes whatever has arrived every 0.1 s, COPYs it (binary, psycopg)
  into candles, book_tickers and tickers_24h and commits: no coalescing, no merge, no
  idempotency, so every frame is a row.

Every frame a row collides with the tables' primary keys (a candle is updated every few
seconds, a symbol's book ticker many times a second), so the baseline's database has the
same hypertables (same chunks) with each primary key replaced by a plain, non-unique index
on the same columns (`drop_unique_keys`): the same index upkeep, no uniqueness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import psycopg
import websocket
from sqlalchemy import Engine, text

from ingest.binance_ws import MESSAGES_PER_SECOND, SUBSCRIBE_BATCH, connection_groups, stream_names
from ingest.ws_frames import CLOSE, PING, TEXT, FrameReader

FLUSH_SECONDS = 0.1
EXCHANGE = "binance"
COLUMNS = {
    "candles": ("exchange", "symbol", "interval", "open_time", "open", "high", "low", "close",
                "volume", "close_time", "trades", "quote_volume", "taker_base_volume",
                "taker_quote_volume", "is_closed"),
    "book_tickers": ("exchange", "symbol", "ts", "bid", "bid_qty", "ask", "ask_qty"),
    "tickers_24h": ("exchange", "symbol", "ts", "last", "open", "high", "low", "change_pct",
                    "volume", "quote_volume", "trades"),
}
TYPES = {
    "candles": ["text", "text", "text", "timestamptz", *["numeric"] * 5, "timestamptz",
                "bigint", *["numeric"] * 3, "boolean"],
    "book_tickers": ["text", "text", "timestamptz", *["numeric"] * 4],
    "tickers_24h": ["text", "text", "timestamptz", *["numeric"] * 7, "bigint"],
}
KEYS = {"candles": ("exchange", "symbol", "interval", "open_time"),
        "book_tickers": ("exchange", "symbol", "ts"), "tickers_24h": ("exchange", "symbol", "ts")}


def drop_unique_keys(engine: Engine) -> None:
    """Replace each table's primary key by a plain index on the same columns."""
    with engine.begin() as connection:
        for table, key in KEYS.items():
            name = connection.execute(text(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                "AND contype = 'p'"), {"t": table}).scalar_one()
            connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
            connection.execute(text(f"CREATE INDEX {table}_key ON {table} ({', '.join(key)})"))


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def frame_row(data: bytes, second: int) -> tuple[str, tuple, int | None]:
    """(table, row, event ms or None) of one stream frame received in epoch `second`."""
    event = orjson.loads(data)["data"]
    kind = event.get("e")
    if kind == "kline":
        k = event["k"]
        return "candles", (
            EXCHANGE, k["s"], k["i"], _time(k["t"]), Decimal(k["o"]), Decimal(k["h"]),
            Decimal(k["l"]), Decimal(k["c"]), Decimal(k["v"]), _time(k["T"]), k["n"],
            Decimal(k["q"]), Decimal(k["V"]), Decimal(k["Q"]), k["x"]), event["E"]
    if kind == "24hrTicker":
        return "tickers_24h", (
            EXCHANGE, event["s"], _time(event["E"] // 1000 * 1000), Decimal(event["c"]),
            Decimal(event["o"]), Decimal(event["h"]), Decimal(event["l"]),
            Decimal(event["P"]), Decimal(event["v"]), Decimal(event["q"]), event["n"]
        ), event["E"]
    return "book_tickers", (
        EXCHANGE, event["s"], _time(second * 1000), Decimal(event["b"]), Decimal(event["B"]),
        Decimal(event["a"]), Decimal(event["A"])), None


class CopyWriter(threading.Thread):
    """Every FLUSH_SECONDS, COPY what has arrived into the tables and commit."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="baseline-writer", daemon=True)
        self.connection = psycopg.connect(database_url.replace("+psycopg", ""))
        self.lock = threading.Lock()
        self.rows: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
        self.events: list[tuple[str, str, int]] = []
        self.stored: list[tuple[str, str, int, float]] = []
        self.parsed = 0
        self.stopping = threading.Event()

    def add(self, rows: dict[str, list[tuple]], events: list[tuple[str, str, int]]) -> None:
        """Hand over one read's rows and the (table, symbol, event ms) of its events."""
        with self.lock:
            for table, more in rows.items():
                self.rows[table] += more
                self.parsed += len(more)
            self.events += events

    def run(self) -> None:
        while True:
            started = time.monotonic()
            final = self.stopping.is_set()
            self._flush()
            if final:
                return
            self.stopping.wait(max(0.0, started + FLUSH_SECONDS - time.monotonic()))

    def _flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, {table: [] for table in COLUMNS}
            events, self.events = self.events, []
        with self.connection.cursor() as cursor:
            for table, batch in rows.items():
                if not batch:
                    continue
                with cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN "
                                 "(FORMAT BINARY)") as copy:
                    copy.set_types(TYPES[table])
                    for row in batch:
                        copy.write_row(row)
        self.connection.commit()
        stored_at = time.time()
        self.stored += [(table, symbol, event_ms, stored_at)
                        for table, symbol, event_ms in events]

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
        self.connection.close()


class BaselineConnection(threading.Thread):
    """One connection: subscribe its streams, then parse every frame into a row."""

    def __init__(self, ws_url: str, symbols: Sequence[str], writer: CopyWriter,
                 number: int) -> None:
        super().__init__(name=f"baseline-ws-{number}", daemon=True)
        self.url = f"{ws_url.rstrip('/')}/stream"
        self.streams = stream_names(symbols)
        self.writer = writer
        self.frames = self.subscribed = self.acked = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        ws = websocket.create_connection(self.url, timeout=10, skip_utf8_validation=True)
        ws.settimeout(0.25)
        reader = FrameReader(ws.sock)
        try:
            self._subscribe(ws, reader)
            while not self.stopping.is_set():
                self._handle(ws, reader.read())
        finally:
            ws.shutdown()  # no closing handshake: websocket-client would read on meanwhile

    def _subscribe(self, ws: websocket.WebSocket, reader: FrameReader) -> None:
        for number, first in enumerate(range(0, len(self.streams), SUBSCRIBE_BATCH), 1):
            batch = self.streams[first:first + SUBSCRIBE_BATCH]
            sent_at = time.monotonic()
            ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": batch, "id": number}))
            while self.acked < number or time.monotonic() - sent_at < 1 / MESSAGES_PER_SECOND:
                self._handle(ws, reader.read())
            self.subscribed += len(batch)

    def _handle(self, ws: websocket.WebSocket, frames: Iterable[tuple[int, bytes]]) -> None:
        rows: dict[str, list[tuple]] = {}
        events: list[tuple[str, str, int]] = []
        second = int(time.time())
        for opcode, data in frames:
            if opcode == TEXT and data.startswith(b'{"stream"'):
                table, row, event_ms = frame_row(data, second)
                rows.setdefault(table, []).append(row)
                if event_ms is not None:
                    events.append((table, row[1], event_ms))
                self.frames += 1
            elif opcode == TEXT:
                self.acked = max(self.acked, orjson.loads(data).get("id") or 0)
            elif opcode == PING:
                ws.pong(data)
            elif opcode == CLOSE:
                raise ConnectionError("closed by the fake")
        if rows:
            self.writer.add(rows, events)


class BaselineSide:
    """The baseline's connections and writer, as bench/ingest_side.py measures a side."""

    def __init__(self, database_url: str, ws_url: str, symbols: Sequence[str]) -> None:
        self.writer = CopyWriter(database_url)
        self.connections = [BaselineConnection(ws_url, group, self.writer, number)
                            for number, group in enumerate(connection_groups(list(symbols)))]

    def start(self) -> None:
        self.writer.start()
        for connection in self.connections:
            connection.start()

    def subscribed(self) -> int:
        return sum(c.subscribed for c in self.connections)

    def received(self) -> int:
        return sum(c.frames for c in self.connections)

    def sessions(self) -> tuple[int, int]:
        return len(self.connections), len(self.connections)

    def finish(self) -> None:
        for connection in self.connections:
            connection.stopping.set()
        for connection in self.connections:
            connection.join(5)
        self.writer.stop()

    def expected_rows(self) -> int:
        return self.writer.parsed

    def stored_events(self) -> list[tuple[str, str, int, float]]:
        return self.writer.stored
