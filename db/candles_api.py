"""The /api/v1/candles contract: request parameters, and the JSON and CSV it answers with.

Decimals are written as exact strings, times as ISO 8601 UTC (`2022-01-01T00:00:00.000Z`).
start and end accept ISO 8601 dates or date-times (UTC when no offset is given) or epoch
milliseconds; a bad parameter raises CandleParamError naming it. The route is one line:

    body, mimetype = candles_response(engine, request.args)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from db.candles import Candle, get_candles
from db.intervals import INTERVALS, IntervalError, from_ms, parse_interval

FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
          "trades", "taker_base_volume", "taker_quote_volume")
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
_MAX_EPOCH_MS = 32_503_680_000_000  # year 3000, as for ISO times


class CandleParamError(ValueError):
    """A request parameter is missing or wrong; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class CandleQuery:
    """A checked candles request."""

    symbol: str
    interval: str
    start: datetime
    end: datetime
    limit: int
    format: str


def parse_time(field: str, raw: str) -> datetime:
    """An ISO 8601 date or date-time (UTC unless it says otherwise), or epoch milliseconds."""
    value = raw.strip()
    if len(value) > 40:
        raise CandleParamError(field, "is too long for a time")
    if re.fullmatch(r"[0-9]{1,16}", value):  # ASCII digits only: "³".isdigit() is True
        if int(value) > _MAX_EPOCH_MS:
            raise CandleParamError(field, f"{raw!r} is too large for epoch milliseconds")
        return from_ms(int(value))
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise CandleParamError(field, f"{raw!r} is not an ISO 8601 date or date-time, or "
                                      "epoch milliseconds") from None
    if not 1970 <= moment.year <= 2999:  # a range reaching year 1 or 9999 overflowed
        raise CandleParamError(field, "must be between the years 1970 and 2999")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_candle_query(args: Mapping[str, str], now: datetime | None = None) -> CandleQuery:
    """Check symbol, interval, start, end, limit and format; fill what is left out."""
    symbol = (args.get("symbol") or "").strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{2,20}", symbol):
        raise CandleParamError("symbol", "required, a symbol like BTCUSDT")
    try:
        interval = parse_interval(args.get("interval") or "1h")
    except IntervalError as error:
        raise CandleParamError("interval", str(error)) from None
    limit = _limit(args.get("limit"))
    span = timedelta(milliseconds=INTERVALS[interval] * limit)
    end = parse_time("end", args["end"]) if args.get("end") else None
    start = parse_time("start", args["start"]) if args.get("start") else None
    if end is None:
        end = now or datetime.now(UTC)
        end = min(end, start + span) if start else end
    start = start or end - span
    if end <= start:
        raise CandleParamError("end", "must be after start")
    fmt = (args.get("format") or "json").lower()
    if fmt not in ("json", "csv"):
        raise CandleParamError("format", "json or csv")
    return CandleQuery(symbol, interval, start, end, limit, fmt)


def _limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,7}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise CandleParamError("limit", f"a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decimal_text(number: Decimal) -> str:
    """A decimal as plain digits, never in exponent form (0E-8 is written 0.00000000)."""
    return format(number, "f")


def candle_fields(candle: Candle) -> dict[str, Any]:
    """One candle as the API writes it."""
    return {"open_time": iso(candle.open_time), "open": decimal_text(candle.open),
            "high": decimal_text(candle.high), "low": decimal_text(candle.low),
            "close": decimal_text(candle.close), "volume": decimal_text(candle.volume),
            "close_time": iso(candle.close_time),
            "quote_volume": decimal_text(candle.quote_volume), "trades": candle.trades,
            "taker_base_volume": decimal_text(candle.taker_base_volume),
            "taker_quote_volume": decimal_text(candle.taker_quote_volume)}


def candles_json(symbol: str, interval: str, candles: Sequence[Candle]) -> dict[str, Any]:
    """{"symbol", "interval", "candles": [...]}."""
    return {"symbol": symbol, "interval": interval,
            "candles": [candle_fields(candle) for candle in candles]}


def candles_csv(candles: Sequence[Candle]) -> str:
    """The same fields as CSV, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for candle in candles:
        fields = candle_fields(candle)
        writer.writerow([fields[name] for name in FIELDS])
    return out.getvalue()


def candles_response(bind: Engine | Connection, args: Mapping[str, str],
                     now: datetime | None = None) -> tuple[bytes | str, str]:
    """Answer a candles request: (body, mimetype). Raises CandleParamError on bad input."""
    query = parse_candle_query(args, now)
    candles = get_candles(bind, query.symbol, query.interval, query.start, query.end)
    candles = candles[:query.limit] if "start" in args else candles[-query.limit:]
    if query.format == "csv":
        return candles_csv(candles), "text/csv"
    return (orjson.dumps(candles_json(query.symbol, query.interval, candles)),
            "application/json")
