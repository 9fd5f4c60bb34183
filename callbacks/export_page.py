"""Callbacks of the Export page: which parameters the dataset takes, its formats, and the
request built from the controls as a download link, a curl command and pandas code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl

from dash import ALL, Dash, Input, Output, State, html
from flask import request

from app import access, state
from app.auth.users import current_role
from app.exports import EXPORTERS
from callbacks.download import filter_params
from db import views
from db.export import DATASETS, ExportInvalid, parse_request
from db.export_stream import estimate
from layouts import ids
from layouts.controls import options, p2p_markets
from layouts.export_page import DEFAULT_DATASET, FILTERS
from layouts.urlstate import search

HIDDEN = {"display": "none"}
READERS = {"csv": "pd.read_csv(url{options})",
           "excel": 'pd.read_csv(url, sep="\\t", encoding="utf-16"{options})',
           "binance": "pd.read_csv(url, header=None{options})",
           "parquet": "pd.read_parquet(url{options})"}


def shown_params(name: str) -> set[str]:
    """The parameter blocks a dataset uses ("filters" for the P2P offer filters)."""
    found = DATASETS.get(name) or DATASETS[DEFAULT_DATASET]
    params = set(found.params)
    return (params - set(FILTERS)) | ({"filters"} if params & set(FILTERS) else set())


def day_range(start_day: str | None, end_day: str | None) -> dict[str, str | None]:
    """The picked UTC days as start and end (the end day included)."""
    end = (date.fromisoformat(end_day[:10]) + timedelta(days=1)).isoformat() if end_day \
        else None
    return {"start": start_day[:10] if start_day else None, "end": end}


def export_params(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The query parameters of dataset `name` from the page's values, in a stable order."""
    found = DATASETS[name]
    filters = filter_params(values.get("amount"), values.get("payment"),
                            bool(values.get("merchant")), values.get("completion"))
    picked = {**{key: values.get(key) for key in ("symbol", "market", "interval", "bucket",
                                                   "at")}, **filters}
    return {**{key: picked.get(key) for key in found.params},
            **day_range(values.get("start_day"), values.get("end_day")),
            "format": values.get("format") or "csv"}


def curl_command(base: str, name: str, query: str) -> str:
    """The request as curl, with the key from the environment."""
    return f'curl -H "X-API-Key: $P2PDASH_KEY" -OJ "{base}/api/v1/export/{name}{query}"'


def pandas_code(base: str, name: str, query: str, fmt: str) -> str:
    """The request as pandas code (pandas sends storage_options as HTTP headers)."""
    reader = READERS.get(fmt, READERS["csv"]).format(
        options=', storage_options={"X-API-Key": os.environ["P2PDASH_KEY"]}')
    return (f'import os\n\nimport pandas as pd\n\nurl = "{base}/api/v1/export/{name}{query}"\n'
            f"frame = {reader}\n")


def problem_of(name: str, query: str, role: str | None,
               max_days: int | None = None) -> str | None:
    """What the server would refuse in this request (the role's range limit too), or None."""
    try:
        parse_request(name, dict(parse_qsl(query.lstrip("?"))), role=role or "",
                      max_days=max_days)
    except ExportInvalid as invalid:
        return f"{invalid.field}: {invalid.message}"
    return None


VALUES = {"name": Input(ids.EXPORT_DATASET, "value"),
          "format": Input(ids.EXPORT_FORMAT, "value"),
          "symbol": Input(ids.EXPORT_SYMBOL, "value"),
          "market": Input(ids.EXPORT_MARKET, "value"),
          "interval": Input(ids.EXPORT_INTERVAL, "value"),
          "bucket": Input(ids.EXPORT_BUCKET, "value"), "at": Input(ids.EXPORT_AT, "value"),
          "amount": Input(ids.EXPORT_AMOUNT, "value"),
          "payment": Input(ids.EXPORT_PAYMENT, "value"),
          "merchant": Input(ids.EXPORT_MERCHANT, "value"),
          "completion": Input(ids.EXPORT_COMPLETION, "value"),
          "start_day": Input(ids.EXPORT_DATES, "start_date"),
          "end_day": Input(ids.EXPORT_DATES, "end_date")}


def register(dash_app: Dash) -> None:
    """The Export page's parameter blocks, formats, payment choices and request."""
    _register_controls(dash_app)

    @access.callback(
        dash_app,
        output=[Output(ids.EXPORT_DOWNLOAD, "href"), Output(ids.EXPORT_DOWNLOAD, "disabled"),
                Output(ids.EXPORT_PROBLEM, "children"), Output(ids.EXPORT_CURL, "children"),
                Output(ids.EXPORT_PANDAS, "children")],
        inputs=VALUES,
        roles=EXPORTERS,
    )
    def update_request(*, name, **values):
        name = name if name in DATASETS else DEFAULT_DATASET
        params = export_params(name, values)
        query, base = search(params), request.url_root.rstrip("/")
        role = current_role()
        problem = problem_of(name, query, role,
                             state.current().settings.export_max_days.get(role or ""))
        alert = html.Div(problem, className="alert alert-warning py-2 small") \
            if problem else None
        return (f"/export/{name}{query}", problem is not None, alert,
                curl_command(base, name, query),
                pandas_code(base, name, query, params["format"]))


def byte_size(count: int) -> str:
    """1234567 -> "1.2 MB" (decimal units, as browsers show downloads)."""
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def estimate_text(name: str, query: str, role: str | None, max_days: int | None) -> str:
    """"12,345 rows, about 1.2 MB" for the request, or "" when it would be refused."""
    try:
        request_ = parse_request(name, dict(parse_qsl(query.lstrip("?"))), role=role or "",
                                 max_days=max_days)
    except ExportInvalid:
        return ""
    found = estimate(state.current().engine, request_)
    if not found.rows:
        return "No rows in this range"
    rows = f"{found.rows:,} rows" if found.exact else (
        f"up to {found.rows:,} rows" if request_.query.rows is not None
        else f"about {found.rows:,} rows")
    return f"{rows}, about {byte_size(found.bytes)} as {request_.format}"


def _register_controls(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        output=Output(ids.EXPORT_ESTIMATE, "children"),
        inputs=VALUES,
        roles=EXPORTERS,
    )
    def update_estimate(*, name, **values):
        name = name if name in DATASETS else DEFAULT_DATASET
        role = current_role()
        return estimate_text(name, search(export_params(name, values)), role,
                             state.current().settings.export_max_days.get(role or ""))

    @access.callback(
        dash_app,
        output=[Output({"type": ids.EXPORT_PARAM, "name": ALL}, "style"),
                Output(ids.EXPORT_FORMAT, "options"), Output(ids.EXPORT_FORMAT, "value")],
        inputs={"name": Input(ids.EXPORT_DATASET, "value")},
        state={"blocks": State({"type": ids.EXPORT_PARAM, "name": ALL}, "id"),
               "fmt": State(ids.EXPORT_FORMAT, "value")},
        roles=EXPORTERS,
    )
    def update_parameters(*, name, blocks, fmt):
        name = name if name in DATASETS else DEFAULT_DATASET
        shown, formats = shown_params(name), DATASETS[name].formats
        styles = [None if block["name"] in shown else HIDDEN for block in blocks or []]
        return styles, options(formats), fmt if fmt in formats else formats[0]

    @access.callback(
        dash_app,
        Output(ids.EXPORT_PAYMENT, "options"),
        Input(ids.EXPORT_MARKET, "value"),
        State(ids.EXPORT_PAYMENT, "value"),
        roles=EXPORTERS,
    )
    def update_payment_options(market, selected):
        exchanges = tuple(sorted({market.exchange for market in p2p_markets()}))
        codes = views.p2p_method_codes(exchanges) if exchanges else []
        return sorted(set(codes) | set(selected or []))
