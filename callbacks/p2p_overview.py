"""The overview's P2P part: one row per configured market, and each market's feed age."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from app import state
from callbacks import common
from callbacks.p2p_views import STALE_POLLS
from db import views
from layouts import ids
from layouts.controls import market_key, p2p_markets
from layouts.figures import ASK, BID, OVERLAY, sparkline


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def selected(exchanges: Sequence[str], fiats: Sequence[str]) -> list[str]:
    """The configured markets that pass the exchange and fiat filters (none set: all)."""
    return [market_key(market) for market in p2p_markets()
            if (not exchanges or market.exchange in exchanges)
            and (not fiats or market.fiat in fiats)]


def spread_change(day: list[float | None], now_pct: float | None) -> Any:
    """Spread % now against a day ago (the last snapshot of that hour), in points."""
    if now_pct is None or not day or day[0] is None:
        return "-"
    change = now_pct - day[0]
    return html.Span(f"{change:+.3f} pt", title=f"24 h ago: {day[0]:.3f} %",
                     className="text-danger" if change > 0 else "text-success")


def market_row(market: str, now: dict[str, Any], day: list[float | None]) -> list[Any]:
    """Best ask and bid, spread %, its 24h change, liquidity per side, 24h sparkline, age."""
    spark = sparkline(day, OVERLAY)
    return [html.B(market), html.Span(_fmt(now["best_ask"]), style={"color": ASK}),
            html.Span(_fmt(now["best_bid"]), style={"color": BID}),
            _fmt(now["spread_pct"], 3), spread_change(day, now["spread_pct"]),
            _fmt(now["ask_liquidity"]), _fmt(now["bid_liquidity"]),
            f"{now['ask_offers'] or 0} / {now['bid_offers'] or 0}",
            html.Img(src=spark, height=28, alt="24h spread") if spark else "",
            common.age(now["captured_at"])]


def markets_block(exchanges: Sequence[str], fiats: Sequence[str]) -> Any:
    """The P2P markets table, or why there is none."""
    if not p2p_markets():
        return html.P(common.NO_P2P, className="text-body-secondary mb-0")
    markets = selected(exchanges, fiats)
    if not markets:
        return html.P("No configured market matches the exchange and fiat filters.",
                      className="text-body-secondary mb-0")
    headers = ["Market", "Best ask", "Best bid", "Spread %", "24h change", "Ask liquidity",
               "Bid liquidity", "Adverts ask/bid", "Spread 24h", "Updated"]
    keys = tuple(market_key(market) for market in p2p_markets())
    summaries, days = views.p2p_summaries(keys), views.p2p_day_spreads(keys)
    head = html.Thead(html.Tr([html.Th(header) for header in headers]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in
                                market_row(market, summaries[market], days[market])])
                       for market in markets])
    return dbc.Table([head, body], size="sm", hover=True, responsive=True,
                     id=ids.OVERVIEW_MARKETS + "-table", className="mb-0 align-middle small")


def feed_rows() -> list[list[Any]]:
    """One row per configured P2P market: the age of its newest complete snapshot."""
    keys = tuple(market_key(market) for market in p2p_markets())
    if not keys:
        return []
    stale_seconds = STALE_POLLS * state.current().settings.p2p_poll_seconds
    return [[key, common.freshness_badge(summary["captured_at"], stale_seconds)]
            for key, summary in views.p2p_summaries(keys).items()]
