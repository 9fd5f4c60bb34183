"""Overview, the landing page: every P2P market's best prices, spread and liquidity, the spot
tickers, and how fresh each feed's data is, at a glance and live.

The three tables are DataTables fed with plain rows: a screen refreshing every few seconds
gets a few kilobytes of numbers, not a tree of HTML components (building and serialising
600 components took most of a cached refresh).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dash_table, dcc, html
from dash.dash_table.Format import Format, Group, Scheme, Sign, Trim

from app import access
from layouts import ids
from layouts.controls import LOADING_DELAY_MS, field, note_area, p2p_markets
from layouts.figures import ASK, BID, DOWN, UP
from layouts.urlstate import location, pick_many

PATH = "/"
NAME = "Overview"
TITLE = "p2pdash"
ORDER = 0
ROLES = access.EVERYONE

PRICE = Format(precision=6, scheme=Scheme.fixed, group=Group.yes, trim=Trim.yes)
AMOUNT = Format(precision=2, scheme=Scheme.fixed, group=Group.yes)
WHOLE = Format(precision=0, scheme=Scheme.fixed, group=Group.yes)
PERCENT = Format(precision=3, scheme=Scheme.fixed)
CHANGE = Format(precision=3, scheme=Scheme.fixed, sign=Sign.positive)
TEXT = None

MARKET_COLUMNS = [("market", "Market", TEXT), ("best_ask", "Best ask", PRICE),
                  ("best_bid", "Best bid", PRICE), ("spread_pct", "Spread %", PERCENT),
                  ("change", "24h change (pt)", CHANGE), ("ask_liquidity", "Ask liquidity", AMOUNT),
                  ("bid_liquidity", "Bid liquidity", AMOUNT), ("adverts", "Adverts ask/bid", TEXT),
                  ("trend", "Spread 24h", TEXT), ("updated", "Updated", TEXT)]
TICKER_COLUMNS = [("symbol", "Symbol", TEXT), ("last", "Last", PRICE),
                  ("change_pct", "24h %", CHANGE), ("high", "High", PRICE), ("low", "Low", PRICE),
                  ("volume", "Volume", AMOUNT), ("quote_volume", "Quote vol.", WHOLE),
                  ("trades", "Trades", WHOLE), ("trend", "24h trend", TEXT),
                  ("updated", "Updated", TEXT)]
FEED_COLUMNS = [("feed", "Feed", TEXT), ("newest", "Newest (UTC)", TEXT), ("age", "Age", TEXT),
                ("state", "State", TEXT)]


def _coloured(column: str, colour: str) -> dict:
    return {"if": {"column_id": column}, "color": colour}


def _when(query: str, column: str, **style: str) -> dict:
    return {"if": {"filter_query": query, "column_id": column}, **style}


STYLES = {
    ids.OVERVIEW_MARKETS_TABLE: [_coloured("best_ask", ASK), _coloured("best_bid", BID),
                                 _when("{change} > 0", "change", color=DOWN),
                                 _when("{change} < 0", "change", color=UP)],
    ids.OVERVIEW_TICKERS_TABLE: [_when("{change_pct} >= 0", "change_pct", color=UP),
                                 _when("{change_pct} < 0", "change_pct", color=DOWN)],
    ids.OVERVIEW_FEEDS_TABLE: [
        _when('{state} = "stale"', "state", backgroundColor="#dc3545", color="white"),
        _when('{state} = "fresh"', "state", backgroundColor="#198754", color="white")],
}


def data_table(table_id: str, columns: list) -> dash_table.DataTable:
    """A compact sortable table of plain rows, coloured by STYLES."""
    return dash_table.DataTable(
        id=table_id, data=[], sort_action="native", style_as_list_view=True,
        columns=[{"id": key, "name": name, "type": "numeric" if fmt else "text",
                  **({"format": fmt} if fmt else {})} for key, name, fmt in columns],
        style_cell={"fontSize": "0.8rem", "padding": "3px 8px", "backgroundColor": "inherit",
                    "color": "inherit", "textAlign": "right", "whiteSpace": "nowrap"},
        style_cell_conditional=[{"if": {"column_id": key}, "textAlign": "left"}
                                for key, _, fmt in columns if fmt is None],
        style_header={"fontWeight": "600", "backgroundColor": "inherit"},
        style_data_conditional=STYLES.get(table_id, []), style_table={"overflowX": "auto"})


def _card(title: str, note_id: str, table_id: str, columns: list) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(html.H3(title, className="h6 mb-0")),
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
        _card("P2P markets", ids.OVERVIEW_MARKETS, ids.OVERVIEW_MARKETS_TABLE, MARKET_COLUMNS),
        dbc.Row([
            dbc.Col(_card("Spot", ids.OVERVIEW_TICKERS, ids.OVERVIEW_TICKERS_TABLE,
                          TICKER_COLUMNS), xl=7),
            dbc.Col(_card("Feed health", ids.OVERVIEW_FEEDS, ids.OVERVIEW_FEEDS_TABLE,
                          FEED_COLUMNS), xl=5),
        ]),
    ])
