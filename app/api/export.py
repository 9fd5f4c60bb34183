"""GET /api/v1/export/{dataset}: any dataset streamed as CSV, Excel text, Parquet or
Binance's kline layout (export scope). A bad parameter is a 400 naming it, before any byte."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Literal

from flask import request as flask_request
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse

from app import access, state
from app.api import bp, openapi, principal, spec
from app.api.errors import ApiError
from app.exports import attachment, open_export
from db.export import DATASETS, MARKET, ExportInvalid


class ExportQuery(BaseModel):
    """What to export: the dataset's own filters, a range and a format."""

    start: str | None = openapi.time_field("default: end - 24 h")
    end: str | None = openapi.time_field("default: now")
    format: Literal["csv", "excel", "parquet", "binance"] = Field(
        "csv", description="csv, excel (UTF-16 tab-separated), parquet, or binance (candles "
                           "only)")
    symbol: str | None = Field(None, description="candles, book_tickers, tickers_24h",
                               pattern=openapi.SYMBOL)
    interval: Literal[openapi.INTERVAL_NAMES] | None = Field(  # type: ignore[valid-type]
        None, description="candles: default 1m")
    market: str | None = Field(None, description="p2p_*: exchange:ASSET/FIAT", max_length=40,
                               pattern=MARKET.pattern)
    bucket: Literal[openapi.BUCKET_NAMES] | None = Field(  # type: ignore[valid-type]
        None, description="p2p_history: default 1h")
    at: str | None = openapi.time_field("p2p_depth: the snapshot at or before; default now")
    amount: str | None = openapi.decimal_field("p2p_*: fiat amount an advert accepts")
    payment: str | None = Field(None, description="p2p_*: canonical codes, comma-separated",
                                max_length=2000, pattern=openapi.PAYMENTS)
    merchant_only: bool | None = Field(None, description="p2p_*: true or false")
    min_completion: str | None = Field(None, description="p2p_*: 0 to 1", max_length=8,
                                       pattern=openapi.FRACTION)


def documented_only(**options: Any) -> Callable[[Callable], Callable]:
    """Document a route in the OpenAPI document without spectree wrapping the call: its
    response check reads the whole body (get_data), which would buffer a streamed file."""

    def decorate(view: Callable) -> Callable:
        described = spec.validate(**options)(view)

        @wraps(view)
        def plain(*args: Any, **kwargs: Any) -> Any:
            return view(*args, **kwargs)

        plain.__wrapped__ = described  # spectree finds its metadata down this chain
        return plain

    return decorate


openapi.path_parameter("/api/v1/export/{name}", "name",
                       {"type": "string", "enum": sorted(DATASETS)})
openapi.file_answer("/api/v1/export/{name}", "get", {
    "text/csv": openapi.TEXT, "text/tab-separated-values": openapi.TEXT,
    "application/vnd.apache.parquet": openapi.BINARY})


@bp.get("/export/<name>")
@access.api_key("export")
@documented_only(query=ExportQuery, resp=SpecResponse(), tags=["export"], skip_validation=True)
def export_dataset(name: str):
    """Stream a dataset: candles, book_tickers, tickers_24h, p2p_offers, p2p_history,
    p2p_depth, alert_events, and for admins runs and ingest_errors."""
    caller = principal()
    if len(name) > 40 or name not in DATASETS:
        raise ApiError(400, "bad_parameter", "unknown dataset", [
            {"index": None, "field": "dataset",
             "message": f"must be one of {', '.join(sorted(DATASETS))}"}])
    try:
        current = state.current()
        opened = open_export(current.engine, name, flask_request.args, actor=caller.username,
                             role=caller.role, user_id=caller.user_id,
                             max_days=current.settings.export_max_days.get(caller.role))
    except ExportInvalid as invalid:
        raise ApiError(400, "bad_parameter", f"{invalid.field}: {invalid.message}", [
            {"index": None, "field": invalid.field, "message": invalid.message}]) from None
    return attachment(opened)
