"""GET /api/v1/candles: candles at any interval, aggregated from the finest stored ones."""

from __future__ import annotations

from typing import Literal

from flask import Response
from flask import request as flask_request
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse

from app import access, state
from app.api import bp, openapi, principal, spec
from app.api.errors import ApiError
from db.candles_api import DEFAULT_LIMIT, CandleParamError, candles_response


class CandlesQuery(BaseModel):
    """Which candles: start and end take ISO 8601 (UTC unless an offset is given) or epoch ms."""

    symbol: str = Field(description="a spot symbol, e.g. BTCUSDT", pattern=openapi.SYMBOL)
    interval: Literal[openapi.INTERVAL_NAMES] = "1h"  # type: ignore[valid-type]
    start: str | None = openapi.time_field("default: end - limit intervals")
    end: str | None = openapi.time_field("default: now, or start + limit intervals")
    limit: int | None = openapi.limit_field(default=DEFAULT_LIMIT)
    format: Literal["json", "csv"] = Field("json", description="csv needs the export scope")


class CandleOut(BaseModel):
    """One candle; decimals as strings, times as ISO 8601 UTC."""

    open_time: str
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: str
    quote_volume: str
    trades: int
    taker_base_volume: str
    taker_quote_volume: str


class CandlesOut(BaseModel):
    """The candles of one symbol at one interval, oldest first."""

    symbol: str
    interval: str
    candles: list[CandleOut]


openapi.file_answer("/api/v1/candles", "get", {"text/csv": openapi.TEXT})


@bp.get("/candles")
@access.api_key("read")
@spec.validate(query=CandlesQuery, resp=SpecResponse(HTTP_200=CandlesOut),
               tags=["market data"],
               # Documented from the models, checked by parse_candle_query (field-named 400s):
               # spectree would reject the CSV body as invalid JSON.
               skip_validation=True)
def candles():
    """Candles of a symbol between start and end, as JSON or (format=csv, with the export
    scope) CSV."""
    if flask_request.args.get("format") == "csv" and "export" not in principal().scopes:
        raise ApiError(403, "insufficient_scope", "CSV needs the 'export' scope",
                       [{"index": None, "field": "format",
                         "message": "CSV needs the 'export' scope; JSON needs 'read'"}])
    try:
        body, mimetype = candles_response(state.current().engine, flask_request.args)
    except CandleParamError as error:
        raise ApiError(400, "bad_parameter", str(error),
                       [{"index": None, "field": error.field, "message": str(error)}]) from None
    return Response(body, mimetype=mimetype)
