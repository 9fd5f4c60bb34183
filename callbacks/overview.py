"""Callbacks of the overview: the P2P markets, spot tickers and feed health tables, live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from app import access
from callbacks import common, p2p_overview
from db import views
from layouts import ids
from layouts.controls import spot_symbols
from layouts.figures import DOWN, UP, sparkline
from layouts.urlstate import search

FEED_LABELS = {"book_ticker": "book ticker", "ticker_24h": "24h ticker",
               "candle_1m": "1m candle"}


def fmt(value: float | None, digits: int | None = None) -> str:
    """A number for a table: thousands separators, sensible decimals, '-' when missing."""
    if value is None:
        return "-"
    if digits is None:
        digits = 2 if abs(value) >= 100 else 4 if abs(value) >= 1 else 6
    return f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str) -> dbc.Table:
    """A compact table of cells."""
    head = html.Thead(html.Tr([html.Th(header) for header in headers]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])
    return dbc.Table([head, body], size="sm", hover=True, responsive=True, id=table_id,
                     className="mb-0 align-middle small")


def change(pct: float | None) -> html.Span:
    """A 24h change in %, green when up and red when down."""
    if pct is None:
        return html.Span("-")
    colour = UP if pct >= 0 else DOWN
    return html.Span(f"{pct:+.2f} %", style={"color": colour})


def spark(values: Sequence[float | None], colour: str) -> html.Img | str:
    """A sparkline image, or nothing when there are too few points."""
    uri = sparkline(values, colour)
    return html.Img(src=uri, alt="24h", height=28) if uri else ""


def ticker_rows(tickers: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per spot symbol: last, 24h change, high, low, volumes, trades, sparkline."""
    rows = []
    days = views.spot_day_closes(spot_symbols())
    for ticker in tickers:
        closes = days.get(ticker["symbol"], [])
        colour = UP if (ticker["change_pct"] or 0) >= 0 else DOWN
        rows.append([html.B(ticker["symbol"]), fmt(ticker["last"]), change(ticker["change_pct"]),
                     fmt(ticker["high"]), fmt(ticker["low"]), fmt(ticker["volume"], 2),
                     fmt(ticker["quote_volume"], 0), fmt(ticker["trades"], 0),
                     spark(closes, colour), common.age(ticker["ts"])])
    return rows


def tickers_block() -> Any:
    """The spot tickers table, or why there is none."""
    symbols = spot_symbols()
    if not symbols:
        return html.P(common.NO_SPOT, className="text-body-secondary mb-0")
    tickers = views.tickers(symbols)
    if not tickers:
        return html.P("No 24h tickers stored yet for " + ", ".join(symbols) +
                      ": is ingestion running? See the Status page.",
                      className="text-body-secondary mb-0")
    return table(["Symbol", "Last", "24h", "High", "Low", "Volume", "Quote vol.", "Trades",
                  "24h trend", "Updated"], ticker_rows(tickers), ids.OVERVIEW_TICKERS + "-table")


def spot_feed_rows() -> list[list[Any]]:
    """One row per spot symbol: the age of its newest book ticker, 24h ticker, 1m candle."""
    symbols = spot_symbols()
    return [[fresh["symbol"], *(common.freshness_badge(fresh[source], common.STALE_SECONDS[source])
                                for source in FEED_LABELS)]
            for fresh in (views.spot_freshness(symbols) if symbols else [])]


def feeds_block() -> Any:
    """Every feed with the age of its newest data: spot per source, P2P per market."""
    spot_rows, p2p_rows = spot_feed_rows(), p2p_overview.feed_rows()
    if not spot_rows and not p2p_rows:
        return html.P("No feeds configured.", className="text-body-secondary mb-0")
    blocks = []
    if spot_rows:
        blocks.append(table(["Spot", *FEED_LABELS.values()], spot_rows,
                            ids.OVERVIEW_FEEDS + "-spot"))
    if p2p_rows:
        blocks.append(table(["P2P market", "snapshot"], p2p_rows, ids.OVERVIEW_FEEDS + "-p2p"))
    return html.Div(blocks)


def register(dash_app: Dash) -> None:
    """Fill the three tables on load, on filter changes and on every live tick."""

    @access.callback(
        dash_app,
        Output(ids.OVERVIEW_MARKETS, "children"),
        Output(ids.OVERVIEW_TICKERS, "children"),
        Output(ids.OVERVIEW_FEEDS, "children"),
        Input(ids.OVERVIEW_EXCHANGES, "value"),
        Input(ids.OVERVIEW_FIATS, "value"),
        Input(ids.LIVE, "n_intervals"),
        roles=access.EVERYONE,
    )
    def update_overview(exchanges, fiats, _ticks):
        return (p2p_overview.markets_block(exchanges or [], fiats or []), tickers_block(),
                feeds_block())

    @access.callback(
        dash_app,
        Output(ids.OVERVIEW_URL, "search"),
        Input(ids.OVERVIEW_EXCHANGES, "value"),
        Input(ids.OVERVIEW_FIATS, "value"),
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_filters(exchanges, fiats):
        return search({"exchange": exchanges, "fiat": fiats})
