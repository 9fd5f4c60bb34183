"""Every chart of the views, as pure functions from rows to a Plotly figure, in one theme.

Builders return the figure as a plain dict in Plotly's JSON schema (what dcc.Graph takes and
go.Figure(dict) validates): building a go.Figure validates every array and costs ~40 ms for a
day of one-minute candles, twenty times the cost of the query served from the cache.

Input rows are "columns": dicts of equal-length lists, times as epoch milliseconds (UTC) under
"t", numbers as floats (for display only: the exact Decimals stay in the database and the
API). Times are shown as wall-clock time of the chosen zone: Plotly draws date numbers as UTC,
so each time is shifted by its zone offset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import plotly.io as pio
from dash_bootstrap_templates import load_figure_template

Columns = Mapping[str, Sequence[Any]]
Figure = dict[str, Any]

ASK = "#dc3545"
BID = "#198754"
UP = "#26a69a"
DOWN = "#ef5350"
OVERLAY = "#0d6efd"
DASHES = ("solid", "dot", "dash", "dashdot", "longdash")
TEMPLATE_TRACES = ("scatter", "bar")
TEMPLATE_LAYOUT_SKIP = ("geo", "polar", "scene", "ternary", "mapbox", "coloraxis",
                        "sliderdefaults", "updatemenudefaults", "annotationdefaults",
                        "shapedefaults", "piecolorway")


@cache
def template(dark: bool) -> dict[str, Any]:
    """The bootstrap (or bootstrap_dark) template, trimmed to what these charts use."""
    name = "bootstrap_dark" if dark else "bootstrap"
    if name not in pio.templates:
        load_figure_template(["bootstrap", "bootstrap_dark"])
    full = pio.templates[name].to_plotly_json()
    layout = {k: v for k, v in full.get("layout", {}).items() if k not in TEMPLATE_LAYOUT_SKIP}
    data = {k: v for k, v in full.get("data", {}).items() if k in TEMPLATE_TRACES}
    return {"layout": layout, "data": data}


def colorway(dark: bool) -> list[str]:
    """The theme's series colours."""
    return template(dark)["layout"].get("colorway") or ["#0d6efd", "#6610f2", "#fd7e14",
                                                        "#20c997", "#d63384", "#6c757d"]


@cache
def zone(name: str | None) -> ZoneInfo | None:
    """The time zone called `name`; None for UTC or an unknown name."""
    if not name or name == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_ms(epoch_ms: int, tz: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(tz).utcoffset()
    return int(offset.total_seconds() * 1000) if offset else 0


def wall_times(epoch_ms: Sequence[int], tz_name: str | None) -> list[int]:
    """Epoch milliseconds shifted to the wall-clock time of a zone (UTC: unchanged)."""
    tz = zone(tz_name)
    if tz is None or not epoch_ms:
        return list(epoch_ms)
    first, last = _offset_ms(epoch_ms[0], tz), _offset_ms(epoch_ms[-1], tz)
    if first == last:  # no daylight-saving change inside the range: one shift for all
        return [moment + first for moment in epoch_ms]
    return [moment + _offset_ms(moment, tz) for moment in epoch_ms]


def base_layout(dark: bool, revision: str, **extra: Any) -> dict[str, Any]:
    """Layout shared by every chart: theme, margins, legend, and a zoom kept across updates."""
    layout = {"template": template(dark), "uirevision": revision,
              "margin": {"l": 55, "r": 20, "t": 30, "b": 40},
              "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
              "hovermode": "x unified"}
    layout.update(extra)
    return layout


def time_axis(tz_name: str | None, anchor: str = "y", **extra: Any) -> dict[str, Any]:
    """A date x-axis titled with the zone the times are shown in, under the pane `anchor`."""
    return {"type": "date", "title": {"text": f"time ({tz_name or 'UTC'})"}, "anchor": anchor,
            **extra}


def empty_figure(message: str, dark: bool) -> Figure:
    """A blank chart that says why there is nothing to draw."""
    return {"data": [], "layout": base_layout(dark, "empty", xaxis={"visible": False},
                                              yaxis={"visible": False}, annotations=[
        {"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5,
         "y": 0.5, "font": {"size": 14}}])}


def _two_panes(split: float = 0.3) -> dict[str, Any]:
    return {"yaxis": {"domain": [split + 0.05, 1]},
            "yaxis2": {"domain": [0, split], "anchor": "x"}}


def candles_figure(candles: Columns, *, symbol: str, tz: str | None, dark: bool,
                   book: Columns | None = None, revision: str = "") -> Figure:
    """Candlesticks with volume in its own pane, and the book's bid and ask if given."""
    x = wall_times(candles["t"], tz)
    colours = [UP if close >= open_ else DOWN
               for open_, close in zip(candles["open"], candles["close"], strict=True)]
    data = [
        {"type": "candlestick", "name": symbol, "x": x, "open": list(candles["open"]),
         "high": list(candles["high"]), "low": list(candles["low"]),
         "close": list(candles["close"]), "increasing": {"line": {"color": UP}},
         "decreasing": {"line": {"color": DOWN}}},
        {"type": "bar", "name": "volume", "x": x, "y": list(candles["volume"]),
         "yaxis": "y2", "marker": {"color": colours}, "showlegend": False},
    ]
    if book is not None and book["t"]:
        book_x = wall_times(book["t"], tz)
        data += [_line("bid", book_x, book["bid"], BID, dash="dot"),
                 _line("ask", book_x, book["ask"], ASK, dash="dot")]
    layout = base_layout(dark, revision or symbol, xaxis=time_axis(
        tz, "y2", rangeslider={"visible": False}), **_two_panes(0.22))
    layout["yaxis"]["title"] = {"text": symbol}
    layout["yaxis2"]["title"] = {"text": "volume"}
    return {"data": data, "layout": layout}


def _line(name: str, x: Sequence[Any], y: Sequence[Any], colour: str | None = None, *,
          dash: str = "solid", axis: str = "y", group: str | None = None,
          shape: str = "linear", **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"dash": dash, "shape": shape, "width": 1.5}
    if colour:
        line["color"] = colour
    trace = {"type": "scatter", "mode": "lines", "name": name, "x": list(x), "y": list(y),
             "line": line, "yaxis": axis, "connectgaps": False}
    if group:
        trace["legendgroup"] = group
    trace.update(extra)
    return trace


def spread_figure(markets: Mapping[str, Columns], *, tz: str | None, dark: bool,
                  revision: str = "") -> Figure:
    """Best ask and best bid (top) and spread % (bottom) over time, one colour per market.

    Each market's columns: t, best_ask, best_bid, spread_pct, captured_at (epoch ms of the
    snapshot each point comes from, carried in customdata so a click can find its run).
    """
    palette = colorway(dark)
    data = []
    for n, (label, cols) in enumerate(markets.items()):
        colour = palette[n % len(palette)]
        x = wall_times(cols["t"], tz)
        custom = [[label, at] for at in cols["captured_at"]]
        data += [
            _line(f"{label} ask", x, cols["best_ask"], colour, group=label, customdata=custom),
            _line(f"{label} bid", x, cols["best_bid"], colour, dash="dot", group=label,
                  customdata=custom),
            _line(f"{label} spread %", x, cols["spread_pct"], colour, axis="y2", group=label,
                  customdata=custom, showlegend=False),
        ]
    layout = base_layout(dark, revision or "spread", xaxis=time_axis(tz, "y2"), **_two_panes())
    layout["yaxis"]["title"] = {"text": "price"}
    layout["yaxis2"]["title"] = {"text": "spread %"}
    return {"data": data, "layout": layout}


def depth_figure(depth: Mapping[str, Any], *, unit: str, dark: bool,
                 revision: str = "") -> Figure:
    """Cumulative depth per price level: asks ascending, bids descending, as steps.

    `depth` has "asks" and "bids", lists of levels with price, cum_available, cum_fiat;
    `unit` is "asset" (cumulative available) or "fiat" (cumulative price x available).
    """
    key = "cum_fiat" if unit == "fiat" else "cum_available"
    data = []
    for side, colour in (("bids", BID), ("asks", ASK)):
        levels = depth.get(side) or []
        data.append({"type": "scatter", "mode": "lines", "name": side,
                     "x": [level["price"] for level in levels],
                     "y": [level[key] for level in levels],
                     "line": {"shape": "hv", "color": colour, "width": 1.5},
                     "fill": "tozeroy", "hovertemplate": "%{x}: %{y}<extra>" + side + "</extra>"})
    title = f"cumulative {depth.get('fiat', '') if unit == 'fiat' else depth.get('asset', '')}"
    layout = base_layout(dark, revision or "depth", hovermode="closest",
                         xaxis={"title": {"text": "price"}},
                         yaxis={"title": {"text": title.strip()}})
    return {"data": data, "layout": layout}


def book_figure(book: Columns, *, symbol: str, tz: str | None, dark: bool,
                revision: str = "") -> Figure:
    """A spot symbol's best bid and ask over time (top) and the spread in % (bottom)."""
    x = wall_times(book["t"], tz)
    # A blank point (None) marks a gap (db.views.break_gaps): the spread breaks there too.
    spread = [(ask - bid) / ((ask + bid) / 2) * 100
              if bid is not None and ask is not None and ask + bid else None
              for bid, ask in zip(book["bid"], book["ask"], strict=True)]
    data = [_line("bid", x, book["bid"], BID, shape="hv"),
            _line("ask", x, book["ask"], ASK, shape="hv"),
            _line("spread %", x, spread, OVERLAY, axis="y2", shape="hv")]
    layout = base_layout(dark, revision or symbol, xaxis=time_axis(tz, "y2"), **_two_panes(0.25))
    layout["yaxis"]["title"] = {"text": symbol}
    layout["yaxis2"]["title"] = {"text": "spread %"}
    return {"data": data, "layout": layout}


def _three_panes() -> dict[str, Any]:
    return {"yaxis": {"domain": [0.7, 1]}, "yaxis2": {"domain": [0.36, 0.64], "anchor": "x"},
            "yaxis3": {"domain": [0, 0.3], "anchor": "x"}}


def volume_figure(symbols: Mapping[str, Columns], *, tz: str | None, dark: bool,
                  revision: str = "") -> Figure:
    """Volume, quote volume and number of trades per symbol over time, in three panes."""
    palette = colorway(dark)
    data = []
    for n, (symbol, cols) in enumerate(symbols.items()):
        colour = palette[n % len(palette)]
        x = wall_times(cols["t"], tz)
        data += [_line(symbol, x, cols["volume"], colour, group=symbol, shape="hv"),
                 _line(f"{symbol} quote", x, cols["quote_volume"], colour, axis="y2",
                       group=symbol, shape="hv", showlegend=False),
                 _line(f"{symbol} trades", x, cols["trades"], colour, axis="y3",
                       group=symbol, shape="hv", showlegend=False)]
    layout = base_layout(dark, revision or "volume", xaxis=time_axis(tz, "y3"), **_three_panes())
    for axis, title in (("yaxis", "volume"), ("yaxis2", "quote volume"), ("yaxis3", "trades")):
        layout[axis]["title"] = {"text": title}
    return {"data": data, "layout": layout}


def liquidity_figure(markets: Mapping[str, Columns], *, tz: str | None, dark: bool,
                     revision: str = "") -> Figure:
    """P2P liquidity per side (top) and advert and advertiser counts (bottom) over time."""
    palette = colorway(dark)
    data = []
    for n, (label, cols) in enumerate(markets.items()):
        colour = palette[n % len(palette)]
        x = wall_times(cols["t"], tz)
        data += [
            _line(f"{label} ask liquidity", x, cols["ask_liquidity"], colour, group=label),
            _line(f"{label} bid liquidity", x, cols["bid_liquidity"], colour, dash="dot",
                  group=label),
            _line(f"{label} ask adverts", x, cols["ask_offers"], colour, axis="y2",
                  group=label, shape="hv", showlegend=False),
            _line(f"{label} bid adverts", x, cols["bid_offers"], colour, axis="y2",
                  dash="dot", group=label, shape="hv", showlegend=False),
            _line(f"{label} advertisers", x, cols["advertisers"], colour, axis="y2",
                  dash="dash", group=label, shape="hv", showlegend=False),
        ]
    layout = base_layout(dark, revision or "liquidity", xaxis=time_axis(tz, "y2"),
                         **_two_panes(0.4))
    layout["yaxis"]["title"] = {"text": "available (asset)"}
    layout["yaxis2"]["title"] = {"text": "adverts, advertisers"}
    return {"data": data, "layout": layout}


def _mid(ask: float | None, bid: float | None) -> float | None:
    return None if ask is None or bid is None else (ask + bid) / 2


def implied_columns(btc_fiat: Columns, usdt_fiat: Columns, btcusdt: Columns) -> dict[str, list]:
    """Per bucket: implied USDT/fiat (P2P BTC/fiat mid over spot BTCUSDT close), the P2P
    USDT/fiat mid, and the premium of P2P USDT over the implied rate in %. Buckets present
    in all three sources only (the P2P columns carry best_ask and best_bid, spot close)."""
    spot = dict(zip(btcusdt["t"], btcusdt["close"], strict=True))
    usdt = {t: _mid(ask, bid) for t, ask, bid in
            zip(usdt_fiat["t"], usdt_fiat["best_ask"], usdt_fiat["best_bid"], strict=True)}
    out: dict[str, list] = {"t": [], "implied": [], "p2p_usdt": [], "premium_pct": []}
    for t, ask, bid in zip(btc_fiat["t"], btc_fiat["best_ask"], btc_fiat["best_bid"],
                           strict=True):
        btc, close, p2p_usdt = _mid(ask, bid), spot.get(t), usdt.get(t)
        if btc is None or not close or p2p_usdt is None:
            continue
        implied = btc / close
        out["t"].append(t)
        out["implied"].append(implied)
        out["p2p_usdt"].append(p2p_usdt)
        out["premium_pct"].append((p2p_usdt / implied - 1) * 100)
    return out


def implied_figure(rows: Columns, *, fiat: str, tz: str | None, dark: bool,
                   revision: str = "") -> Figure:
    """Implied USDT/fiat (P2P BTC/fiat over spot BTCUSDT) against P2P USDT/fiat, and the premium.

    Columns: t, implied, p2p_usdt, premium_pct (P2P USDT over implied, minus 1, in %).
    """
    x = wall_times(rows["t"], tz)
    data = [_line(f"implied USDT/{fiat}", x, rows["implied"], OVERLAY),
            _line(f"P2P USDT/{fiat}", x, rows["p2p_usdt"], ASK),
            _line("premium %", x, rows["premium_pct"], BID, axis="y2")]
    layout = base_layout(dark, revision or fiat, xaxis=time_axis(tz, "y2"), **_two_panes(0.3))
    layout["yaxis"]["title"] = {"text": f"{fiat} per USDT"}
    layout["yaxis2"]["title"] = {"text": "premium %"}
    return {"data": data, "layout": layout}


def methods_figure(rows: Sequence[Mapping[str, Any]], *, dark: bool,
                   revision: str = "") -> Figure:
    """Spread % per payment method now, with its best ask and bid on hover."""
    names = [row["method"] for row in rows]
    data = [{"type": "bar", "name": "spread %", "x": names,
             "y": [row["spread_pct"] for row in rows], "marker": {"color": OVERLAY},
             "customdata": [[row["best_ask"], row["best_bid"]] for row in rows],
             "hovertemplate": "%{x}<br>spread %{y:.3f} %<br>best ask %{customdata[0]}"
                              "<br>best bid %{customdata[1]}<extra></extra>"}]
    layout = base_layout(dark, revision or "methods", hovermode="closest",
                         yaxis={"title": {"text": "spread %"}})
    return {"data": data, "layout": layout}


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def spark_text(values: Sequence[float | None]) -> str:
    """A sparkline in text, one block character a value (a gap for a missing one)."""
    known = [value for value in values if value is not None]
    if len(known) < 2:
        return ""
    low, span = min(known), (max(known) - min(known)) or 1.0
    top = len(SPARK_BLOCKS) - 1
    return "".join(" " if value is None else SPARK_BLOCKS[round((value - low) / span * top)]
                   for value in values)


# Alert rules on the charts: thresholds as lines, alerting periods shaded.
ALERT_LINE = "#fd7e14"
ALERT_FILL = "rgba(220, 53, 69, 0.14)"
FIRED = "#dc3545"


def threshold_line(value: float, label: str = "", axis: str = "y") -> dict[str, Any]:
    """A rule's threshold: a dashed horizontal line across the pane of `axis`."""
    line = {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": axis, "y0": value,
            "y1": value, "line": {"color": ALERT_LINE, "width": 1.2, "dash": "dash"},
            "layer": "above", "name": label}
    if label:
        line["label"] = {"text": label, "textposition": "end", "yanchor": "bottom",
                         "font": {"size": 10, "color": ALERT_LINE}}
    return line


def price_line(value: float, label: str = "") -> dict[str, Any]:
    """A rule's threshold on a price x-axis (the depth chart): a dashed vertical line."""
    line = {"type": "line", "xref": "x", "x0": value, "x1": value, "yref": "y domain",
            "y0": 0, "y1": 1, "line": {"color": ALERT_LINE, "width": 1.2, "dash": "dash"},
            "layer": "above", "name": label}
    if label:
        line["label"] = {"text": label, "textposition": "end", "textangle": 0,
                         "font": {"size": 10, "color": ALERT_LINE}}
    return line


def period_rect(start: int, end: int, label: str = "") -> dict[str, Any]:
    """An alerting period, shaded over every pane (times already as wall-clock ms)."""
    return {"type": "rect", "xref": "x", "x0": start, "x1": end, "yref": "paper", "y0": 0,
            "y1": 1, "fillcolor": ALERT_FILL, "line": {"width": 0}, "layer": "below",
            "name": label or "alerting"}


def alert_periods(periods: Sequence[Mapping[str, Any]], tz: str | None, now_ms: int,
                  bucket_ms: int = 0) -> list[dict[str, Any]]:
    """Shapes of alerting periods {start, end (None: still alerting), label} in epoch ms.
    With `bucket_ms`, each covers the chart's buckets it touches (a bucket is drawn at its
    start), so a period that just began shades its bucket."""
    shapes = []
    for period in periods:
        start, end = period["start"], now_ms if period.get("end") is None else period["end"]
        if bucket_ms:
            start = start // bucket_ms * bucket_ms
            end = max(-(-end // bucket_ms) * bucket_ms, start + bucket_ms)
        x0, x1 = wall_times([start, end], tz)
        shapes.append(period_rect(x0, x1, period.get("label", "")))
    return shapes


def with_alerts(figure: Figure, *, lines: Sequence[Mapping[str, Any]] = (),
                periods: Sequence[Mapping[str, Any]] = (), tz: str | None = None,
                now_ms: int = 0, bucket_ms: int = 0) -> Figure:
    """The figure with rules' thresholds {value, axis, label} as horizontal lines on their
    pane, and alerting periods {start, end, label} (epoch ms) shaded; a new figure."""
    shapes = [threshold_line(line["value"], line.get("label", ""), line.get("axis", "y"))
              for line in lines]
    shapes += alert_periods(periods, tz, now_ms, bucket_ms)
    if not shapes:
        return figure
    layout = dict(figure.get("layout", {}))
    layout["shapes"] = [*layout.get("shapes", []), *shapes]
    return {**figure, "layout": layout}


def with_price_lines(figure: Figure, lines: Sequence[Mapping[str, Any]]) -> Figure:
    """The depth figure with rules' price thresholds {value, label} as vertical lines."""
    if not lines:
        return figure
    layout = dict(figure.get("layout", {}))
    layout["shapes"] = [*layout.get("shapes", []),
                        *(price_line(line["value"], line.get("label", "")) for line in lines)]
    return {**figure, "layout": layout}


def preview_figure(samples: Columns, *, name: str, unit: str, tz: str | None, dark: bool,
                   lines: Sequence[Mapping[str, Any]] = (), firings: Sequence[int] = (),
                   periods: Sequence[Mapping[str, Any]] = (), now_ms: int = 0,
                   bucket_ms: int = 0, revision: str = "") -> Figure:
    """A rule replayed: its metric over time (columns t, value; one sample per bucket of
    `bucket_ms`), the threshold lines, the moments it would have fired marked and its
    alerting periods shaded."""
    x = wall_times(samples["t"], tz)
    value_at = dict(zip(samples["t"], samples["value"], strict=True))
    fired = [moment for moment in firings if moment in value_at]
    data = [_line(name, x, samples["value"], OVERLAY, shape="hv"),
            {"type": "scatter", "mode": "markers", "name": "would have fired",
             "x": wall_times(fired, tz), "y": [value_at[moment] for moment in fired],
             "marker": {"color": FIRED, "size": 9, "symbol": "triangle-up",
                        "line": {"width": 1, "color": "#ffffff"}}}]
    layout = base_layout(dark, revision or "preview", xaxis=time_axis(tz),
                         yaxis={"title": {"text": unit}},
                         margin={"l": 55, "r": 20, "t": 30, "b": 40})
    return with_alerts({"data": data, "layout": layout}, lines=lines, periods=periods, tz=tz,
                       now_ms=now_ms, bucket_ms=bucket_ms)
