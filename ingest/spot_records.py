"""Binance spot payloads (stream frames, REST and archive kline rows) turned into records.

A record is one row for one table with its key; the writer batches records and keeps the
last one per key, which is how a live kline updates its candle and how book tickers and 24h
tickers are sampled to the last value per symbol per second. Numbers are parsed with
Decimal from Binance's strings (a float is refused); anything that does not fit raises
MalformedFrame with the reason, so the stream can count, log and skip it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from db.intervals import INTERVALS, from_ms

EXCHANGE = "binance"
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
# Archive files from 2025 on carry microseconds; anything this large is not milliseconds.
_MICROSECONDS = 10**14

CANDLE_KEY = ("exchange", "symbol", "interval", "open_time")
TICKER_KEY = ("exchange", "symbol", "ts")


class MalformedFrame(ValueError):
    """A payload that is not what Binance sends; the message says what is wrong."""


@dataclass(slots=True)
class Record:
    """One row for `table`; `key` names its row among all tables (the table, then the row's
    key with times as epoch ms, which hash far faster than aware datetimes); `event_ms` is
    Binance's event time, if the frame had one."""

    table: str
    key: tuple
    row: dict[str, Any]
    event_ms: int | None = None


@dataclass(slots=True)
class ParsedFrame:
    """What one stream frame held: records to write, or a control event, or nothing of ours."""

    records: list[Record] = field(default_factory=list)
    server_shutdown: bool = False
    ignored: bool = False


def parse_frame(raw: bytes | str, received_at: float) -> ParsedFrame:
    """Parse a combined-stream (or raw-stream) frame received at `received_at` (epoch s)."""
    event = decode_frame(raw)
    return ParsedFrame(ignored=True) if event is None else parse_event(event, received_at)


def decode_frame(raw: bytes | str) -> dict[str, Any] | None:
    """The event a frame carries, taken out of its combined-stream or WebSocket API
    envelope; None for a frame that holds no event object."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise MalformedFrame(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MalformedFrame("not a JSON object")
    if "stream" in message and "data" in message:
        message = message["data"]
    elif isinstance(message.get("event"), dict):  # the WebSocket API wraps its events
        message = message["event"]
    return message if isinstance(message, dict) else None


def parse_event(event: Mapping[str, Any], received_at: float) -> ParsedFrame:
    """The records of one decoded event received at `received_at` (epoch s)."""
    kind = event.get("e")
    if kind == "kline":
        return ParsedFrame([kline_record(_mapping(event, "k"), _int(event, "E"))])
    if kind == "24hrTicker":
        return ParsedFrame([ticker_record(event)])
    if kind == "serverShutdown":
        return ParsedFrame(server_shutdown=True)
    if kind is None and {"u", "s", "b", "a"} <= event.keys():
        return ParsedFrame([book_ticker_record(event, received_at)])
    return ParsedFrame(ignored=True)


class BookTickerSampler:
    """The last book ticker frame of each symbol in the current receive second, held as it
    came, undecoded.

    book_tickers keeps one row per symbol and second, its last value: a busy symbol sends
    several a second, and all but the last would be decoded, converted, handed to the
    writer and written (each a new row version) only to be replaced. Here a combined-stream
    frame of one of `symbols`' bookTicker streams is told by its stream name alone, and
    only the second's last is decoded and checked, once the second is over (`take`), and
    written once, by the writer's append path. A frame a newer one replaces within its
    second is dropped unexamined (before, it was converted and then replaced in the
    writer's buffer or in the table). Any other frame is not held: it goes the general
    way and is checked at once."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.streams = {f"{symbol.lower()}@bookTicker".encode(): symbol for symbol in symbols}
        self.second: int | None = None
        self._held: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, frame: bytes) -> bool:
        """Hold a book ticker frame of the current second; False for any other frame."""
        if not frame.startswith(_STREAM_PREFIX):
            return False
        name = frame[_NAME_AT:frame.find(b'"', _NAME_AT, _NAME_AT + 40)]
        if name not in self.streams:
            return False
        self._held[name] = frame
        return True

    def take(self) -> tuple[list[Record], list[tuple[MalformedFrame, bytes]]]:
        """The held frames as records of the held second, and the malformed ones with what
        is wrong with them; nothing is held afterwards."""
        held, self._held = self._held, {}
        second = self.second or 0
        records, malformed = [], []
        for name, frame in held.items():
            try:
                event = decode_frame(frame)
                if event is None or "e" in event or event.get("s") != self.streams[name]:
                    raise MalformedFrame(f"not a book ticker of {self.streams[name]}")
                records.append(book_ticker_record(event, second))
            except MalformedFrame as error:
                malformed.append((error, frame))
        return records, malformed


_STREAM_PREFIX = b'{"stream":"'
_NAME_AT = len(_STREAM_PREFIX)


def kline_record(k: Mapping[str, Any], event_ms: int | None = None) -> Record:
    """A candle from a stream kline (`k` of a kline event)."""
    symbol = _symbol(k, "s")
    interval = _interval(k, "i")
    open_ms = _int(k, "t")
    open_time = from_ms(open_ms)
    row = {
        "exchange": EXCHANGE, "symbol": symbol, "interval": interval, "open_time": open_time,
        "open": _amount(k, "o"), "high": _amount(k, "h"), "low": _amount(k, "l"),
        "close": _amount(k, "c"), "volume": _amount(k, "v"), "close_time": from_ms(_int(k, "T")),
        "trades": _count(k, "n"), "quote_volume": _amount(k, "q"),
        "taker_base_volume": _amount(k, "V"), "taker_quote_volume": _amount(k, "Q"),
        "is_closed": _bool(k, "x"),
    }
    _check_range(row)
    return Record("candles", ("candles", symbol, interval, open_ms), row, event_ms)


def kline_record_from_row(symbol: str, interval: str, row: Sequence[Any],
                          now_ms: int) -> Record:
    """A candle from a REST /api/v3/klines row or a kline archive line (12 columns)."""
    if not isinstance(row, Sequence) or isinstance(row, str) or len(row) < 11:
        raise MalformedFrame(f"a kline row has 12 columns; got {str(row)[:80]}")
    names = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q")
    fields = dict(zip(names, row, strict=False))
    for name in ("t", "T"):
        fields[name] = _epoch_ms(fields[name], name)
    fields["n"] = _whole(fields["n"], "n")
    close_ms = fields["T"]
    k = {**fields, "s": symbol, "i": interval, "x": close_ms < now_ms}
    return kline_record(k)


def book_ticker_record(event: Mapping[str, Any], received_at: float) -> Record:
    """A book ticker sample; spot bookTicker has no event time, so the receive second (of
    `received_at`, epoch s) is used."""
    symbol = _symbol(event, "s")
    second = int(received_at)
    row = {"exchange": EXCHANGE, "symbol": symbol, "ts": from_ms(second * 1000),
           "bid": _amount(event, "b"), "bid_qty": _amount(event, "B"),
           "ask": _amount(event, "a"), "ask_qty": _amount(event, "A")}
    return Record("book_tickers", ("book_tickers", symbol, second), row, None)


def ticker_record(event: Mapping[str, Any]) -> Record:
    """A 24h ticker sample at its event second."""
    symbol = _symbol(event, "s")
    event_ms = _int(event, "E")
    second = event_ms // 1000
    row = {"exchange": EXCHANGE, "symbol": symbol, "ts": from_ms(second * 1000),
           "last": _amount(event, "c"),
           "open": _amount(event, "o"), "high": _amount(event, "h"), "low": _amount(event, "l"),
           "change_pct": _decimal(event, "P"), "volume": _amount(event, "v"),
           "quote_volume": _amount(event, "q"), "trades": _count(event, "n")}
    return Record("tickers_24h", ("tickers_24h", symbol, second), row, event_ms)


def _check_range(row: Mapping[str, Any]) -> None:
    low, high = min(row["open"], row["close"]), max(row["open"], row["close"])
    if not row["low"] <= low <= high <= row["high"]:
        raise MalformedFrame(f"{row['symbol']} candle prices out of order "
                             f"(o={row['open']} h={row['high']} l={row['low']} c={row['close']})")
    if row["close_time"] <= row["open_time"]:
        raise MalformedFrame(f"{row['symbol']} candle closes before it opens")


def _mapping(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    if not isinstance(value, dict):
        raise MalformedFrame(f"field {name!r} missing or not an object")
    return value


def _field(event: Mapping[str, Any], name: str) -> Any:
    try:
        return event[name]
    except KeyError:
        raise MalformedFrame(f"field {name!r} missing") from None


def _int(event: Mapping[str, Any], name: str) -> int:
    value = _field(event, name)
    if type(value) is not int:
        raise MalformedFrame(f"field {name!r} is not a whole number: {value!r}")
    return value


def _count(event: Mapping[str, Any], name: str) -> int:
    value = _int(event, name)
    if value < 0:
        raise MalformedFrame(f"field {name!r} is negative: {value}")
    return value


def _whole(value: Any, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise MalformedFrame(f"field {name!r} is not a whole number: {value!r}")


def _epoch_ms(value: Any, name: str) -> int:
    number = _whole(value, name)
    return number // 1000 if number >= _MICROSECONDS else number


def _bool(event: Mapping[str, Any], name: str) -> bool:
    value = _field(event, name)
    if not isinstance(value, bool):
        raise MalformedFrame(f"field {name!r} is not true or false: {value!r}")
    return value


def _symbol(event: Mapping[str, Any], name: str) -> str:
    value = _field(event, name)
    if not isinstance(value, str) or not _SYMBOL.match(value):
        raise MalformedFrame(f"field {name!r} is not a symbol: {value!r}")
    return value


def _interval(event: Mapping[str, Any], name: str) -> str:
    value = _field(event, name)
    if value not in INTERVALS:
        raise MalformedFrame(f"field {name!r} is not a known interval: {value!r}")
    return value


def _decimal(event: Mapping[str, Any], name: str) -> Decimal:
    value = _field(event, name)
    if not isinstance(value, str):
        raise MalformedFrame(f"field {name!r} is not a decimal string: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MalformedFrame(f"field {name!r} is not a number: {value[:40]!r}") from None
    if not number.is_finite():
        raise MalformedFrame(f"field {name!r} is not finite: {value[:40]!r}")
    return number


def _amount(event: Mapping[str, Any], name: str) -> Decimal:
    number = _decimal(event, name)
    if number < 0:
        raise MalformedFrame(f"field {name!r} is negative: {number}")
    return number


