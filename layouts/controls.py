"""Filter controls and blocks the views share: labelled fields, ranges, charts with loading."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import state
from app.config import P2PMarket

# Windows a view can show, ending now (seconds).
RANGES: dict[str, int] = {"1h": 3600, "1d": 86400, "1w": 7 * 86400, "1M": 30 * 86400}
# P2P history buckets (seconds).
BUCKETS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 4 * 3600,
                           "1d": 86400}
# Show a spinner only when an update takes longer than this, so live refreshes never flash.
LOADING_DELAY_MS = 400
GRAPH_CONFIG = {"displaylogo": False, "scrollZoom": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def field(label: str, control: Any, width: int | None = None, **col: Any) -> dbc.Col:
    """A labelled control in a grid column."""
    return dbc.Col([dbc.Label(label, html_for=getattr(control, "id", None),
                              className="small text-body-secondary mb-1"), control],
                   md=width, className="mb-2", **col)


def options(values: Iterable[str], labels: Mapping[str, str] | None = None) -> list[dict]:
    """Select options for values (labelled by `labels` where given)."""
    return [{"label": (labels or {}).get(value, value), "value": value} for value in values]


def select(component_id: str, values: Iterable[str], value: str | None,
           labels: Mapping[str, str] | None = None) -> dbc.Select:
    """A plain select of values."""
    return dbc.Select(id=component_id, options=options(values, labels), value=value, size="sm")


def buttons(component_id: str, values: Iterable[str], value: str | None) -> html.Div:
    """A group of toggle buttons, one value at a time (ranges, units)."""
    return html.Div(dbc.RadioItems(id=component_id, options=options(values), value=value,
                                   className="btn-group btn-group-sm",
                                   inputClassName="btn-check",
                                   labelClassName="btn btn-sm btn-outline-secondary",
                                   labelCheckedClassName="active"), className="radio-group")


def payment_dropdown(component_id: str, selected: list[str]) -> dcc.Dropdown:
    """Payment methods to filter by. The selected codes are options from the first render:
    a Dropdown drops values missing from its options, and the full list only arrives with
    a callback, so a page restored from its URL would otherwise lose its filter."""
    return dcc.Dropdown(id=component_id, multi=True, placeholder="any", options=selected,
                        value=selected)


def chart(graph_id: str, height: str = "60vh", marks_id: str | None = None) -> html.Div:
    """A graph (with its loading state) and, for live charts, the store of its marks."""
    graph = dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": height},
                      figure={"data": [], "layout": {"xaxis": {"visible": False},
                                                     "yaxis": {"visible": False}}})
    parts: list[Any] = [dcc.Loading(graph, delay_show=LOADING_DELAY_MS, type="dot")]
    if marks_id:
        parts.append(dcc.Store(id=marks_id))
    return html.Div(parts)


def note_area(component_id: str) -> html.Div:
    """Where a view says why a chart is empty or what it changed."""
    return html.Div(id=component_id, role="status")


def spot_symbols() -> tuple[str, ...]:
    """The configured spot symbols."""
    return state.current().settings.spot_symbols


def p2p_markets() -> tuple[P2PMarket, ...]:
    """The configured P2P markets."""
    return state.current().settings.p2p_markets


def market_key(market: P2PMarket) -> str:
    """A market as the URL and the controls name it: exchange:ASSET/FIAT."""
    return str(market)


def market_keys() -> list[str]:
    """The configured P2P markets as keys."""
    return [market_key(market) for market in p2p_markets()]


def parse_market(key: str | None) -> P2PMarket | None:
    """The configured market called `key`, or None."""
    return next((market for market in p2p_markets() if market_key(market) == key), None)


def fiats(markets: Sequence[P2PMarket]) -> list[str]:
    """The fiat currencies of some markets, in order, once each."""
    return list(dict.fromkeys(market.fiat for market in markets))
