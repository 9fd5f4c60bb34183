"""Export: pick a dataset, its parameters, a date range and a format; download it here, or
copy the same request as curl or pandas against the API (an `export` key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.auth.users import current_role
from app.exports import EXPORTERS
from db.export import BUCKETS as HISTORY_BUCKETS
from db.export import DATASETS
from db.intervals import INTERVALS
from layouts import ids
from layouts.controls import (
    LOADING_DELAY_MS,
    field,
    market_keys,
    payment_dropdown,
    select,
    spot_symbols,
)

PATH = "/exports"
NAME = "Export"
TITLE = "Export · p2pdash"
ORDER = 60
ROLES = EXPORTERS

DEFAULT_DATASET = "p2p_history"
# The filters the P2P datasets share, shown together.
FILTERS = ("amount", "payment", "merchant_only", "min_completion")


def datasets_for(role: str | None) -> list[str]:
    """The datasets a role may export (admins also the ingestion logs)."""
    return [name for name, found in DATASETS.items()
            if role == "admin" or not found.admins_only]


def _param(name: str) -> dict[str, str]:
    """The id of a parameter's block, shown only for the datasets that take it."""
    return {"type": ids.EXPORT_PARAM, "name": name}


def dataset_controls() -> dbc.Row:
    """The dataset and the format (the format's choices follow the dataset)."""
    names = datasets_for(current_role())
    labels = {name: f"{name}: {DATASETS[name].label}" for name in names}
    return dbc.Row([
        field("Dataset", select(ids.EXPORT_DATASET, names, DEFAULT_DATASET
                                if DEFAULT_DATASET in names else names[0], labels), 6),
        field("Format", select(ids.EXPORT_FORMAT, ("csv",), "csv"), 2),
    ], className="align-items-end")


def parameter_controls() -> dbc.Row:
    """Symbol, market, interval, bucket and snapshot time: each for the datasets using it."""
    symbols, markets = spot_symbols(), market_keys()
    return dbc.Row([
        field("Symbol", select(ids.EXPORT_SYMBOL, symbols, symbols[0] if symbols else None),
              2, id=_param("symbol")),
        field("Market", select(ids.EXPORT_MARKET, markets, markets[0] if markets else None),
              3, id=_param("market")),
        field("Interval", select(ids.EXPORT_INTERVAL, INTERVALS, "1h"), 2,
              id=_param("interval")),
        field("Bucket", select(ids.EXPORT_BUCKET, HISTORY_BUCKETS, "1h"), 2,
              id=_param("bucket")),
        field("Snapshot at (UTC, empty: the latest)", dbc.Input(
            id=ids.EXPORT_AT, size="sm", debounce=True, placeholder="2026-02-01T12:00Z"), 3,
              id=_param("at")),
    ], className="align-items-end")


def filter_controls() -> dbc.Row:
    """The P2P offer filters, as the views have them."""
    return dbc.Row(id=_param("filters"), className="align-items-end", children=[
        field("Amount (fiat)", dbc.Input(id=ids.EXPORT_AMOUNT, type="number", min=0,
                                         debounce=True, size="sm", placeholder="any"), 2),
        field("Payment methods", payment_dropdown(ids.EXPORT_PAYMENT, []), 4),
        field("Min completion %", dbc.Input(id=ids.EXPORT_COMPLETION, type="number", min=0,
                                            max=100, debounce=True, size="sm",
                                            placeholder="any"), 2),
        field("Merchants", dbc.Switch(id=ids.EXPORT_MERCHANT, label="merchants only",
                                      value=False), "auto"),
    ])


def range_control() -> dbc.Row:
    """The days to export (UTC; the end day included), yesterday and today by default."""
    today = datetime.now(UTC).date()
    return dbc.Row(field("Days (UTC, the end day included)", dcc.DatePickerRange(
        id=ids.EXPORT_DATES, start_date=(today - timedelta(days=1)).isoformat(),
        end_date=today.isoformat(), display_format="YYYY-MM-DD",
        minimum_nights=0, clearable=False), "auto"))


def snippet(title: str, pre_id: str) -> dbc.Card:
    """A copyable block of code."""
    return dbc.Card([
        dbc.CardHeader(html.Div([html.Span(title, className="small fw-semibold"),
                                 dcc.Clipboard(target_id=pre_id, title="Copy")],
                                className="d-flex justify-content-between")),
        dbc.CardBody(html.Pre(id=pre_id, className="small mb-0",
                              style={"whiteSpace": "pre-wrap", "wordBreak": "break-all"})),
    ], className="mb-3")


def result_block() -> html.Div:
    """The download link, and the same request as curl and pandas."""
    return html.Div([
        html.Div(id=ids.EXPORT_PROBLEM, role="status"),
        html.Div([
            dbc.Button([html.I(className="bi bi-download me-1"), "Download"],
                       id=ids.EXPORT_DOWNLOAD, color="primary", href="", external_link=True),
            dcc.Loading(html.Span(id=ids.EXPORT_ESTIMATE, className="text-body-secondary"),
                        type="dot", delay_show=LOADING_DELAY_MS),
        ], className="d-flex align-items-center gap-3 my-3"),
        snippet("Copy as curl (an API key with the export scope in $P2PDASH_KEY)",
                ids.EXPORT_CURL),
        snippet("Copy as pandas", ids.EXPORT_PANDAS),
    ])


def layout(**_params: str) -> html.Div:
    """Dataset and format, its parameters and filters, the days, then the link."""
    return html.Div([
        html.H2("Export", className="h4 mb-3"),
        dataset_controls(),
        parameter_controls(),
        filter_controls(),
        range_control(),
        result_block(),
    ])
