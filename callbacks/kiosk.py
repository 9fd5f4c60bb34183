"""Callbacks of the wall screen: every wall view's panels and spread chart, on each tick.

Each panel carries the epoch ms of its data (`data-ts`) and the age it turns stale at
(`data-stale`); assets/kiosk.js turns those into the age on every panel and the STALE
mark, from the wall clock, so a screen whose updates stop (database or server down) shows
its numbers ageing. The spread chart is sent whole once, then as Patches of its tail
(callbacks/live.py), so weeks of refreshes hold a window of constant size.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import MATCH, Dash, Input, Output, State, html

from app import access, state
from callbacks import common, live, overview
from callbacks.alerts import kiosk_rows
from callbacks.p2p_views import STALE_POLLS
from db import views
from layouts import figures, ids

KIOSK = ("kiosk", "admin")
SPREAD_SPAN = 3600
SPREAD_BUCKET = 60
DAY = 86400
SPOT_STALE_SECONDS = 60


def stale_after(kind: str) -> int:
    """Seconds after which a panel's data is stale: the setting, else per kind of data."""
    settings = state.current().settings
    if settings.kiosk.stale_seconds:
        return settings.kiosk.stale_seconds
    if kind == "p2p":
        return STALE_POLLS * settings.p2p_poll_seconds
    return SPOT_STALE_SECONDS


def price_text(value: float | None) -> str:
    """A price as the wall shows it: separators, and decimals that matter for its size."""
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.6f}"


def change_text(now: float | None, before: float | None, span: str = "24h") -> tuple[str, str]:
    """A change in % with an arrow, and its class (up, down or flat)."""
    if now is None or not before:
        return "", "flat"
    pct = (now - before) / before * 100
    kind = "up" if pct > 0 else "down" if pct < 0 else "flat"
    arrow = {"up": "\u25b2", "down": "\u25bc", "flat": "\u25c6"}[kind]
    return f"{arrow} {pct:+.2f}% {span}", kind


def _first(day: Mapping[str, list[Any]], column: str) -> tuple[float | None, int | None]:
    """The oldest value of `column` in the day's history, and its time (epoch ms)."""
    pairs = zip(day.get(column, []), day.get("captured_at", []), strict=False)
    return next(((value, at) for value, at in pairs if value is not None), (None, None))


def since_text(at_ms: int | None, now_ms: int) -> str:
    """What a change is measured over: "24h", or "since 14:05" when the history is younger
    (a new market, or the database's first day), so a flat +0.00% is not passed off as a day."""
    if at_ms is None or now_ms - at_ms >= (DAY - 3600) * 1000:
        return "24h"
    zone = ZoneInfo(state.current().settings.kiosk.timezone)
    return "since " + datetime.fromtimestamp(at_ms / 1000, zone).strftime("%H:%M")


def panel(title: str, body: list[Any], ts: int | None, stale: int, kind: str = "") -> html.Div:
    """A panel with the time of its data, for kiosk.js's age and STALE mark."""
    return html.Div([html.Div(title, className="kiosk-card-title"), *body],
                    className=f"kiosk-panel kiosk-card {kind}".strip(),
                    **{"data-ts": str(ts or 0), "data-stale": str(stale)})


def side(label: str, value: float | None, before: tuple[float | None, int | None],
         kind: str) -> html.Div:
    """One side of a market: its label, the price in large type and its 24h change."""
    change, direction = change_text(value, before[0], since_text(before[1], common.now_ms()))
    return html.Div([html.Span(label, className="kiosk-side-label"),
                     html.Span(price_text(value), className=f"kiosk-price {kind}"),
                     html.Span(change, className=f"kiosk-change {direction}")],
                    className="kiosk-side")


def market_card(key: str, now: Mapping[str, Any], day: Mapping[str, list[Any]]) -> html.Div:
    """Best ask and bid of a market in large numbers with their change, and the spread."""
    spread = now.get("spread_pct")
    return panel(key, [
        side("ASK", now.get("best_ask"), _first(day, "best_ask"), "ask"),
        side("BID", now.get("best_bid"), _first(day, "best_bid"), "bid"),
        html.Div(f"spread {spread:.2f}%" if spread is not None else "no complete snapshot",
                 className="kiosk-spread-now"),
    ], now.get("captured_at"), stale_after("p2p"))


def ticker_card(ticker: Mapping[str, Any]) -> html.Div:
    """A spot symbol's last price and 24h change."""
    pct = ticker.get("change_pct")
    direction = "flat" if not pct else "up" if pct > 0 else "down"
    return panel(ticker["symbol"], [
        html.Span(price_text(ticker.get("last")), className="kiosk-price"),
        html.Span(f"{pct:+.2f}% 24h" if pct is not None else "",
                  className=f"kiosk-change {direction}"),
    ], ticker.get("ts"), stale_after("spot"), "kiosk-ticker")


def feeds_panel(now_ms: int) -> html.Div:
    """Every feed with the age of its newest data, stale ones marked."""
    rows, reason = overview.feeds_rows()
    items = [html.Li([html.Span(row["feed"]), html.Span(row["age"], className="kiosk-feed-age")],
                     className=f"kiosk-feed {row['state']}") for row in rows[:12]]
    return panel("Feeds", [html.Ul(items, className="kiosk-list") if items else
                           html.P(reason, className="kiosk-muted")],
                 now_ms, stale_after("spot"), "kiosk-feeds")


def alerts_panel(now_ms: int) -> html.Div:
    """The alert rules firing now (everyone's), or that none is."""
    rows = kiosk_rows()
    items = [html.Li([html.Span(row["name"], className="kiosk-alert-name"),
                      html.Span(f"{row['subject']}: {row['value']}", className="kiosk-muted")],
                     className="kiosk-alert") for row in rows[:8]]
    body = html.Ul(items, className="kiosk-list") if items else \
        html.P("Nothing is alerting.", className="kiosk-muted")
    title = f"Alerting ({len(rows)})" if rows else "Alerts"
    return panel(title, [body], now_ms, stale_after("spot"), "kiosk-alerts" +
                 (" firing" if rows else ""))


def wall_panels(config: Mapping[str, Any], now_ms: int) -> list[Any]:
    """Every panel of a wall but the chart: markets, tickers, feeds and alerts, and notes."""
    markets, symbols = tuple(config.get("markets") or ()), tuple(config.get("symbols") or ())
    summaries = views.p2p_summaries(markets) if markets else {}
    cards = [market_card(key, summaries[key], views.p2p_history(key, 3600, DAY))
             for key in markets]
    tickers = [ticker_card(ticker) for ticker in views.tickers(symbols)] if symbols else []
    notes = [html.Div(f"{', '.join(config['missing'])}: not configured (left out)",
                      className="kiosk-note")] if config.get("missing") else []
    if not markets and not symbols:
        notes.append(html.Div(common.NO_P2P, className="kiosk-note"))
    if not markets:
        notes.append(html.Div("No P2P market on this wall.", className="kiosk-note"))
    return [html.Div([*notes, *cards], className="kiosk-markets"),
            html.Div([html.Div(tickers, className="kiosk-tickers"),
                      html.Div([feeds_panel(now_ms), alerts_panel(now_ms)],
                               className="kiosk-health")], className="kiosk-aside")]


def spread_figure(markets: Mapping[str, Mapping[str, list[Any]]], tz: str,
                  now_ms: int | None = None) -> dict[str, Any]:
    """Spread % over the last hour, one line per market, in the dark theme. The time axis
    always spans the hour (a fresh market's single point does not zoom it to milliseconds);
    markers show points a line alone would hide."""
    data = [{"type": "scatter", "mode": "lines+markers", "name": key, "connectgaps": False,
             "x": figures.wall_times(cols["t"], tz), "y": cols["spread_pct"],
             "line": {"width": 3, "shape": "hv"}, "marker": {"size": 5}}
            for key, cols in markets.items()]
    now_ms = common.now_ms() if now_ms is None else now_ms
    span = figures.wall_times([now_ms - SPREAD_SPAN * 1000, now_ms], tz)
    layout = figures.base_layout(True, "kiosk-spread", xaxis={
        "type": "date", "autorangeoptions": {"include": span}},
                                 yaxis={"ticksuffix": "%"}, hovermode=False,
                                 margin={"l": 60, "r": 20, "t": 10, "b": 30},
                                 paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return {"data": data, "layout": layout}


def spread_update(config: Mapping[str, Any], old: Mapping[str, Any] | None,
                  ticks: int | None) -> tuple[Any, dict[str, Any], html.H3]:
    """The spread chart (whole, or a Patch of its tail), its marks, and its heading."""
    markets = list(config.get("markets") or ())
    history = {key: views.p2p_history(key, SPREAD_BUCKET, SPREAD_SPAN) for key in markets}
    figure = spread_figure(history, state.current().settings.kiosk.timezone)
    if not any(value is not None for cols in history.values() for value in cols["spread_pct"]):
        figure = figures.empty_figure("No P2P spread in the last hour", dark=True)
        figure["layout"].update(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    newest = max((max(filter(None, cols.get("captured_at", [])), default=0)
                  for cols in history.values()), default=0)
    heading = html.H3("Spread %, last hour", className="kiosk-panel-title",
                      **{"data-ts": str(newest), "data-stale": str(stale_after("p2p"))})
    key = "|".join(markets)
    new_marks = live.marks(figure, key)
    if ticks and ticks % live.FULL_EVERY:
        patch = live.tail_patch(figure, old, key)
        if patch is not None:
            return patch, new_marks, heading
    return figure, new_marks, heading


def register(dash_app: Dash) -> None:
    """Fill every wall view on each tick of the screen's refresh."""

    @access.callback(
        dash_app,
        Output({"type": ids.KIOSK_WALL_PANELS, "index": MATCH}, "children"),
        Output({"type": ids.KIOSK_SPREAD, "index": MATCH}, "figure"),
        Output({"type": ids.KIOSK_SPREAD_MARKS, "index": MATCH}, "data"),
        Output({"type": ids.KIOSK_SPREAD_HEAD, "index": MATCH}, "children"),
        Input(ids.KIOSK_TICK, "n_intervals"),
        State({"type": ids.KIOSK_WALL_CONFIG, "index": MATCH}, "data"),
        State({"type": ids.KIOSK_SPREAD_MARKS, "index": MATCH}, "data"),
        roles=KIOSK,
    )
    def update_wall(ticks, config, marks):
        config = config if isinstance(config, dict) else {}
        figure, new_marks, heading = spread_update(config, marks, ticks)
        return wall_panels(config, common.now_ms()), figure, new_marks, heading
