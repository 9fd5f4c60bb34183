"""P2P spread: best ask, best bid and spread % over time for one or more markets, the price
for a fiat amount, spread by payment method, and the current top adverts; a point or a row
opens the run that brought it."""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from layouts import ids
from layouts.controls import (
    BUCKETS,
    RANGES,
    buttons,
    chart,
    field,
    market_keys,
    note_area,
    payment_dropdown,
    select,
)
from layouts.download import chart_header
from layouts.grids import grid, number_column, text_column
from layouts.urlstate import location, pick, pick_codes, pick_flag, pick_many, pick_number

PATH = "/spread"
NAME = "Spread"
TITLE = "P2P spread · p2pdash"
ORDER = 10
ROLES = access.EVERYONE

DEFAULT_RANGE = "1d"
DEFAULT_BUCKET = "5m"
ADVERT_PAGE_SIZE = 20
ADVERT_COLUMNS = [
    text_column("side", "Side"), number_column("price", "Price"),
    number_column("available", "Available"), number_column("min_fiat", "Min (fiat)"),
    number_column("max_fiat", "Max (fiat)"),
    text_column("methods", "Payment methods", minWidth=200, tooltipField="methods"),
    text_column("merchant", "Merchant"), text_column("advertiser", "Advertiser"),
    number_column("completion", "Completion %"), number_column("orders", "Orders (30d)"),
]


def market_controls(params: dict[str, str]) -> dbc.Row:
    """Markets to compare, range and bucket."""
    markets = market_keys()
    return dbc.Row([
        field("Markets", dcc.Dropdown(id=ids.SPREAD_MARKETS, options=markets, multi=True,
                                      value=pick_many(params, "markets", markets, markets[:1])),
              5),
        field("Range", buttons(ids.SPREAD_RANGE, RANGES,
                               pick(params, "range", RANGES, DEFAULT_RANGE)), "auto"),
        field("Bucket", select(ids.SPREAD_BUCKET, BUCKETS,
                               pick(params, "bucket", BUCKETS, DEFAULT_BUCKET)), 1),
    ], className="align-items-end")


def offer_filters(params: dict[str, str]) -> dbc.Row:
    """Which adverts count: amount, payment methods, merchants, completion rate."""
    amount = pick_number(params, "amount", 0)
    completion = pick_number(params, "completion", 0, 100)
    return dbc.Row([
        field("Amount (fiat)", dbc.Input(id=ids.SPREAD_AMOUNT, type="number", min=0,
                                         value=amount, debounce=True, size="sm",
                                         placeholder="any"), 2),
        field("Payment methods", payment_dropdown(ids.SPREAD_PAYMENT,
                                                  pick_codes(params, "payment")), 4),
        field("Min completion %", dbc.Input(id=ids.SPREAD_COMPLETION, type="number", min=0,
                                            max=100, value=completion, debounce=True,
                                            size="sm", placeholder="any"), 2),
        field("Merchants", dbc.Switch(id=ids.SPREAD_MERCHANT, label="merchants only",
                                      value=pick_flag(params, "merchant")), "auto"),
    ], className="align-items-end")


def adverts_table() -> dag.AgGrid:
    """The top adverts, sortable and filterable in the browser, a page at a time; a click on
    a cell opens the run that brought its advert."""
    return grid(ids.SPREAD_ADVERTS, ADVERT_COLUMNS, row_id="key", floating_filters=True,
                style={}, domLayout="autoHeight", pagination=True,
                paginationPageSize=ADVERT_PAGE_SIZE, paginationPageSizeSelector=False)


def run_modal() -> dbc.Modal:
    """Where a clicked point or row shows the run that brought it."""
    return dbc.Modal([dbc.ModalHeader(dbc.ModalTitle("Where this came from")),
                      dbc.ModalBody(html.Div(id=ids.SPREAD_RUN_BODY))],
                     id=ids.SPREAD_RUN, is_open=False, size="lg")


def layout(**params: str) -> html.Div:
    """Controls and filters, the spread chart, the market now, by method and the adverts."""
    return html.Div([
        location(ids.SPREAD_URL),
        html.H2("P2P spread", className="h4 mb-3"),
        market_controls(params),
        offer_filters(params),
        note_area(ids.SPREAD_NOTE),
        dcc.Loading(html.Div(id=ids.SPREAD_NOW, className="mb-2"), delay_show=400, type="dot"),
        chart_header(None, ids.DOWNLOAD_SPREAD),
        chart(ids.SPREAD_GRAPH, height="55vh", marks_id=ids.SPREAD_MARKS),
        html.P("Click a point or an advert to see the poll that brought it.",
               className="small text-body-secondary"),
        dbc.Row([
            dbc.Col([html.H3("Spread by payment method", className="h6"),
                     chart(ids.SPREAD_METHODS, height="40vh")], lg=5),
            dbc.Col([chart_header("Top adverts now", ids.DOWNLOAD_ADVERTS), adverts_table()],
                    lg=7),
        ], className="mt-3"),
        run_modal(),
    ])
