"""P2P routes: push a snapshot (ingest scope); summary, history and depth (read scope).

Query parameters and pushed bodies are checked by p2pdash's own validators, which name
every bad field ({"index", "field", "message"}); the pydantic models below document them
in /api/v1/openapi.json. Decimals are strings, times ISO 8601 UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from flask import jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from app import access, state
from app.api import bp, openapi, principal, spec
from app.api.errors import ApiError
from app.config import EXCHANGES
from db.candles_api import CandleParamError, parse_time
from db.export import PAYMENT
from db.intervals import INTERVALS
from db.p2p import depth, jsonable, summary
from db.p2p_history import history
from db.p2p_query import OfferFilter
from ingest.p2p_normalise import MAX_INTEGER, MAX_METHODS, MAX_TEXT, MalformedAdvert, parse_decimal
from ingest.p2p_push import MAX_PUSH_BYTES, MAX_PUSH_OFFERS, PushRejected, push_snapshot

DEFAULT_HISTORY = timedelta(hours=24)
UPPER_CODE = r"^[A-Z0-9]{2,10}$"


class MarketQuery(BaseModel):
    """A market and the offers that count: amount-aware, by payment method, merchants."""

    exchange: Literal["binance", "okx", "bybit"]
    asset: str = Field(description="e.g. USDT", pattern=openapi.CODE)
    fiat: str = Field(description="e.g. ARS", pattern=openapi.CODE)
    amount: str | None = openapi.decimal_field("fiat amount an offer must accept")
    payment: str | None = Field(None, description="canonical codes, comma-separated, at most 20",
                                max_length=2000, pattern=openapi.PAYMENTS)
    merchant_only: bool = False
    min_completion: str | None = Field(None, description="0 to 1, e.g. 0.95", max_length=8,
                                       pattern=openapi.FRACTION)


class HistoryQuery(MarketQuery):
    """A market's metrics over time, one row per bucket."""

    start: str | None = openapi.time_field("default: end - 24 h")
    end: str | None = openapi.time_field("default: now")
    bucket: Literal[openapi.BUCKET_NAMES] = "1h"  # type: ignore[valid-type]


class Summary(BaseModel):
    """Best prices, spread and liquidity of the latest complete snapshots."""

    exchange: str
    asset: str
    fiat: str
    captured_at: str | None
    best_ask: str | None
    best_bid: str | None
    spread: str | None
    spread_pct: str | None
    ask_offers: int
    bid_offers: int
    ask_liquidity: str | None
    bid_liquidity: str | None


class DepthLevel(BaseModel):
    """One price level: what it offers and the running totals from the best price."""

    price: str
    available: str
    offers: int
    cum_available: str
    cum_fiat: str


class Depth(BaseModel):
    """Cumulative depth of the latest complete snapshot of each side."""

    exchange: str
    asset: str
    fiat: str
    captured_at: str | None
    asks: list[DepthLevel]
    bids: list[DepthLevel]


class PushedOffer(BaseModel):
    """One advert in p2pdash's normalised form; decimals as strings."""

    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=1, max_length=MAX_TEXT)
    price: str = Field(pattern=openapi.POSITIVE_DECIMAL, max_length=40)
    available: str | None = openapi.decimal_field("asset on offer")
    min_fiat: str | None = openapi.decimal_field("smallest fiat amount")
    max_fiat: str | None = openapi.decimal_field("largest fiat amount, not below min_fiat")
    advertiser_id: str | None = Field(None, max_length=MAX_TEXT)
    advertiser_name: str | None = Field(None, max_length=MAX_TEXT)
    is_merchant: bool = False
    month_orders: int | None = Field(None, ge=0, le=MAX_INTEGER)
    month_finish_rate: str | None = Field(None, description="0 to 1", max_length=8,
                                          pattern=openapi.FRACTION)
    payment_methods: list[str] = Field(default_factory=list, max_length=MAX_METHODS,
                                       description="the exchange's stable identifiers")
    rank: int | None = Field(None, ge=0, le=MAX_INTEGER)


class PushedSnapshot(BaseModel):
    """One complete side of one market at one moment."""

    model_config = ConfigDict(extra="forbid")

    exchange: Literal["binance", "okx", "bybit"]
    asset: str = Field(pattern=UPPER_CODE)
    fiat: str = Field(pattern=UPPER_CODE)
    side: Literal["ask", "bid"]
    captured_at: str = Field(description="ISO 8601 with a time zone, from 2017 to now",
                             pattern=openapi.CAPTURED_AT)
    offers: list[PushedOffer] = Field(max_length=MAX_PUSH_OFFERS)


class PushResult(BaseModel):
    """What the push stored (a re-sent snapshot stores nothing twice)."""

    run_id: int
    inserted: int
    duplicates_skipped: int


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{field}: {message}",
                    [{"index": None, "field": field, "message": message}])


def _decimal(args: Mapping[str, str], name: str, low: Decimal,
             high: Decimal | None = None) -> Decimal | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_decimal(raw, name)  # bounded: plain ASCII, below 10^20
    except MalformedAdvert as error:
        raise _bad(name, error.reason) from None
    if value < low or (high is not None and value > high):
        raise _bad(name, f"must be from {low}" + (f" to {high}" if high else " up"))
    return value


def _market(args: Mapping[str, str]) -> tuple[str, str, str]:
    exchange = (args.get("exchange") or "").lower()
    if exchange not in EXCHANGES:
        raise _bad("exchange", f"one of {', '.join(EXCHANGES)}")
    codes = []
    for name in ("asset", "fiat"):
        code = (args.get(name) or "").upper()
        if not re.fullmatch(r"[A-Z0-9]{2,10}", code):
            raise _bad(name, "required, a code like USDT or ARS")
        codes.append(code)
    return exchange, codes[0], codes[1]


def _filters(args: Mapping[str, str]) -> OfferFilter:
    merchant = (args.get("merchant_only") or "false").lower()
    if merchant not in ("true", "false", "1", "0"):
        raise _bad("merchant_only", "true or false")
    payment = tuple(code.strip().lower() for code in (args.get("payment") or "")[:2000]
                    .split(",") if code.strip())
    if len(payment) > 20 or not all(PAYMENT.match(code) for code in payment):
        raise _bad("payment", "canonical payment codes like mercadopago, at most 20")
    return OfferFilter(amount=_decimal(args, "amount", Decimal(0)), payment=payment,
                       merchant_only=merchant in ("true", "1"),
                       min_completion=_decimal(args, "min_completion", Decimal(0), Decimal(1)))


def _window(args: Mapping[str, str]) -> tuple[datetime, datetime, timedelta]:
    bucket = args.get("bucket") or "1h"
    if bucket not in INTERVALS or bucket in ("3d", "1w"):
        raise _bad("bucket", "one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d")
    try:
        end = parse_time("end", args["end"]) if args.get("end") else datetime.now(UTC)
        start = parse_time("start", args["start"]) if args.get("start") else end - DEFAULT_HISTORY
    except CandleParamError as error:
        raise _bad(error.field, error.message) from None
    return start, end, timedelta(milliseconds=INTERVALS[bucket])


@bp.get("/p2p/summary")
@access.api_key("read")
@spec.validate(query=MarketQuery, resp=Response(HTTP_200=Summary),
               tags=["p2p"], skip_validation=True)
def p2p_summary():
    """Best ask and bid, spread, offers and liquidity per side of one market, now."""
    args = request.args
    return jsonify(jsonable(summary(state.current().engine, *_market(args), _filters(args))))


@bp.get("/p2p/history")
@access.api_key("read")
@spec.validate(query=HistoryQuery, resp=Response(HTTP_200=list[Summary]),
               tags=["p2p"], skip_validation=True)
def p2p_history():
    """The summary per time bucket, from each bucket's last complete snapshot."""
    args = request.args
    start, end, width = _window(args)
    try:
        rows = history(state.current().engine, *_market(args), start=start, end=end,
                       width=width, filters=_filters(args))
    except ValueError as error:
        raise _bad("bucket", str(error)) from None
    return jsonify(jsonable(rows))


@bp.get("/p2p/depth")
@access.api_key("read")
@spec.validate(query=MarketQuery, resp=Response(HTTP_200=Depth), tags=["p2p"],
               skip_validation=True)
def p2p_depth():
    """Cumulative depth per price level: asks ascending, bids descending."""
    args = request.args
    return jsonify(jsonable(depth(state.current().engine, *_market(args), _filters(args))))


def _pushed_body() -> Any:
    if (request.content_length or 0) > MAX_PUSH_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_PUSH_BYTES} bytes")
    data = request.stream.read(MAX_PUSH_BYTES + 1)
    if len(data) > MAX_PUSH_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_PUSH_BYTES} bytes")
    try:
        body = json.loads(data, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the body is not JSON") from None
    except RecursionError:  # nested deeper than the parser goes
        raise ApiError(400, "bad_json", f"the body nests deeper than {MAX_DEPTH}") from None
    if _depth(body) > MAX_DEPTH:
        raise ApiError(400, "bad_json", f"the body nests deeper than {MAX_DEPTH}")
    return body


MAX_DEPTH = 6  # body > offers > offer > payment_methods > identifier is 4


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((child, level + 1) for child in
                             (item.values() if isinstance(item, dict) else item))
    return deepest


@bp.post("/ingest/p2p-offers")
@access.api_key("ingest")
@spec.validate(json=PushedSnapshot, resp=Response(HTTP_200=PushResult),
               tags=["ingest"], skip_validation=True)
def push_p2p_offers():
    """Store one side of a market's book, pushed by an external worker (idempotent)."""
    body = _pushed_body()
    try:
        result = push_snapshot(state.current().engine, body,
                               source=f"push:{principal().username}")
    except PushRejected as rejected:
        raise ApiError(422, "validation_failed", str(rejected), rejected.errors) from None
    return jsonify(result)
