"""Callbacks of the overview: the P2P markets, spot tickers and feed health tables, live."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import Dash, Input, Output

from app import access
from callbacks import common, p2p_overview
from db import views
from layouts import ids
from layouts.controls import spot_symbols
from layouts.figures import spark_text
from layouts.grids import fitted_height
from layouts.urlstate import search

FEED_LABELS = {"book_ticker": "book ticker", "ticker_24h": "24h ticker",
               "candle_1m": "1m candle"}
# Each grid with the note that says why it is empty, in the order update_overview fills them.
GRIDS = ((ids.OVERVIEW_MARKETS_TABLE, ids.OVERVIEW_MARKETS),
          (ids.OVERVIEW_TICKERS_TABLE, ids.OVERVIEW_TICKERS),
          (ids.OVERVIEW_FEEDS_TABLE, ids.OVERVIEW_FEEDS))
TICKER_NUMBERS = ("last", "change_pct", "high", "low", "volume", "quote_volume", "trades")


def ticker_row(ticker: Mapping[str, Any], closes: list[float | None]) -> dict[str, Any]:
    """One spot symbol: last, 24h change, high, low, volumes, trades, trend, age."""
    return {"symbol": ticker["symbol"], **{name: ticker[name] for name in TICKER_NUMBERS},
            "trend": spark_text(closes), "updated": common.age(ticker["ts"])}


def tickers_rows() -> tuple[list[dict[str, Any]], str | None]:
    """The spot tickers table's rows, or why there are none."""
    symbols = spot_symbols()
    if not symbols:
        return [], common.NO_SPOT
    tickers = views.tickers(symbols)
    if not tickers:
        return [], (f"No 24h tickers stored yet for {', '.join(symbols)}: is ingestion "
                    "running? See the Status page.")
    days = views.spot_day_closes(symbols)
    return [ticker_row(ticker, days.get(ticker["symbol"], [])) for ticker in tickers], None


def spot_feed_rows() -> list[dict[str, Any]]:
    """Per spot symbol and source: the newest data and its age."""
    symbols = spot_symbols()
    return [common.feed_row(f"{fresh['symbol']} {label}", fresh[source],
                     common.STALE_SECONDS[source])
            for fresh in (views.spot_freshness(symbols) if symbols else [])
            for source, label in FEED_LABELS.items()]


def feeds_rows() -> tuple[list[dict[str, Any]], str | None]:
    """Every feed with the age of its newest data: spot per source, P2P per market."""
    rows = spot_feed_rows() + p2p_overview.feed_rows()
    return rows, None if rows else "No feeds configured."


def register(dash_app: Dash) -> None:
    """Fill the three grids on load, on filter changes and on every live tick."""

    @access.callback(
        dash_app,
        output=[output for grid_id, note_id in GRIDS
                for output in (Output(grid_id, "rowData"), Output(grid_id, "style"),
                               Output(note_id, "children"))],
        inputs={"exchanges": Input(ids.OVERVIEW_EXCHANGES, "value"),
                "fiats": Input(ids.OVERVIEW_FIATS, "value"),
                "ticks": Input(ids.LIVE, "n_intervals")},
        roles=access.EVERYONE,
    )
    def update_overview(*, exchanges, fiats, ticks):
        tables = (p2p_overview.markets_rows(exchanges or [], fiats or []), tickers_rows(),
                  feeds_rows())
        return [part for rows, reason in tables
                for part in (rows, fitted_height(len(rows)), common.note(reason, "secondary"))]

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
