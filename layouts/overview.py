"""Overview, the landing page: every P2P market's best prices, spread and liquidity, the spot
tickers, and how fresh each feed's data is, at a glance and live.

The three tables are AG Grids fed with plain rows: a screen refreshing every few seconds
gets a few kilobytes of numbers, not a tree of HTML components (building and serialising
600 components took most of a cached refresh), and draws only the rows in view.
"""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from app.auth.users import current_role
from layouts import ids
from layouts.controls import LOADING_DELAY_MS, field, note_area, p2p_markets
from layouts.download import chart_header
from layouts.grids import AMOUNT, CHANGE, PERCENT, PRICE, WHOLE, grid, number_column, text_column
from layouts.urlstate import location, pick_many

PATH = "/"
NAME = "Overview"
TITLE = "p2pdash"
ORDER = 0
ROLES = access.EVERYONE

# Colour rules: CSS classes of assets/grid.css, by a JavaScript condition on the cell.
ASK_CELL = {"grid-ask": "params.value != null"}
BID_CELL = {"grid-bid": "params.value != null"}
# A spread widening is bad news, so it reads in the falling colour.
SPREAD_CHANGE = {"grid-down": "params.value > 0", "grid-up": "params.value < 0"}
PRICE_CHANGE = {"grid-up": "params.value != null && params.value >= 0",
                "grid-down": "params.value < 0"}
FEED_STATE = {"grid-stale": "params.value === 'stale'", "grid-fresh": "params.value === 'fresh'"}

MARKET_COLUMNS = [
    text_column("market", "Market", minWidth=150),
    number_column("best_ask", "Best ask", PRICE, cellClassRules=ASK_CELL),
    number_column("best_bid", "Best bid", PRICE, cellClassRules=BID_CELL),
    number_column("spread_pct", "Spread %", PERCENT),
    number_column("change", "24h change (pt)", CHANGE, cellClassRules=SPREAD_CHANGE),
    number_column("ask_liquidity", "Ask liquidity", AMOUNT),
    number_column("bid_liquidity", "Bid liquidity", AMOUNT),
    text_column("adverts", "Adverts ask/bid"),
    text_column("trend", "Spread 24h"),
    text_column("updated", "Updated"),
]
TICKER_COLUMNS = [
    text_column("symbol", "Symbol"),
    number_column("last", "Last", PRICE),
    number_column("change_pct", "24h %", CHANGE, cellClassRules=PRICE_CHANGE),
    number_column("high", "High", PRICE),
    number_column("low", "Low", PRICE),
    number_column("volume", "Volume", AMOUNT),
    number_column("quote_volume", "Quote vol.", WHOLE),
    number_column("trades", "Trades", WHOLE),
    text_column("trend", "24h trend"),
    text_column("updated", "Updated"),
]
FEED_COLUMNS = [
    text_column("feed", "Feed", minWidth=220),
    text_column("newest", "Newest (UTC)"),
    text_column("age", "Age"),
    text_column("state", "State", cellClassRules=FEED_STATE),
]
# The field that names a row, so a refresh updates the rows in place.
ROW_IDS = {ids.OVERVIEW_MARKETS_TABLE: "market", ids.OVERVIEW_TICKERS_TABLE: "symbol",
           ids.OVERVIEW_FEEDS_TABLE: "feed"}


def data_table(table_id: str, columns: list) -> dag.AgGrid:
    """A compact grid of plain rows: sortable, filterable, coloured by its columns' rules."""
    return grid(table_id, columns, row_id=ROW_IDS[table_id])


def _card(title: str, note_id: str, table_id: str, columns: list,
          menu_id: str | None = None) -> dbc.Card:
    header = chart_header(title, menu_id) if menu_id else html.H3(title, className="h6 mb-0")
    return dbc.Card([dbc.CardHeader(header, className="pb-1" if menu_id else None),
                     dbc.CardBody([note_area(note_id),
                                   dcc.Loading(data_table(table_id, columns), type="dot",
                                               delay_show=LOADING_DELAY_MS)], className="p-2")],
                    className="mb-3")


def filters(params: dict[str, str]) -> dbc.Row:
    """Which P2P markets to list: by exchange and by fiat (all when none is chosen)."""
    markets = p2p_markets()
    exchanges = list(dict.fromkeys(market.exchange for market in markets))
    fiats = list(dict.fromkeys(market.fiat for market in markets))
    return dbc.Row([
        field("Exchanges", dcc.Dropdown(id=ids.OVERVIEW_EXCHANGES, options=exchanges, multi=True,
                                        value=pick_many(params, "exchange", exchanges),
                                        placeholder="all"), 4),
        field("Fiats", dcc.Dropdown(id=ids.OVERVIEW_FIATS, options=fiats, multi=True,
                                    value=pick_many(params, "fiat", fiats),
                                    placeholder="all"), 4),
    ])


def layout(**params: str) -> html.Div:
    """Filters, then the P2P markets, the spot tickers and the feeds, refreshed live."""
    return html.Div([
        location(ids.OVERVIEW_URL),
        html.H2("Overview", className="h4 mb-3"),
        filters(params),
        _card("P2P markets", ids.OVERVIEW_MARKETS, ids.OVERVIEW_MARKETS_TABLE, MARKET_COLUMNS,
              ids.DOWNLOAD_OVERVIEW_MARKETS),
        dbc.Row([
            dbc.Col(_card("Spot", ids.OVERVIEW_TICKERS, ids.OVERVIEW_TICKERS_TABLE,
                          TICKER_COLUMNS, ids.DOWNLOAD_OVERVIEW_TICKERS), xl=7),
            dbc.Col(_card("Feed health", ids.OVERVIEW_FEEDS, ids.OVERVIEW_FEEDS_TABLE,
                          FEED_COLUMNS, ids.DOWNLOAD_OVERVIEW_FEEDS
                          if current_role() == "admin" else None), xl=5),
        ]),
    ])
