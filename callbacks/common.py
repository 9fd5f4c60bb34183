"""Helpers the view callbacks share: viewer choices, notes, and why a chart is empty."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc

from db import views
from layouts.figures import zone

NO_SPOT = ("No spot symbols are configured: set SPOT_SYMBOLS (with INGEST_ENABLED=true) to "
           "stream Binance spot data.")
NO_P2P = ("No P2P market is configured: set P2P_MARKETS (e.g. binance:USDT/ARS) with "
          "INGEST_ENABLED=true to poll the P2P books.")
# Data older than this is called stale (seconds), per source.
STALE_SECONDS = {"book_ticker": 60, "ticker_24h": 120, "candle_1m": 180}


def is_dark(theme: str | None) -> bool:
    """Whether the viewer chose the dark theme."""
    return theme == "dark"


def tz_name(chosen: str | None) -> str:
    """The viewer's time zone if it is a real one, else UTC."""
    return chosen if chosen and zone(chosen) is not None else "UTC"


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


def when(epoch_ms: int | None, tz: str | None = None) -> str:
    """An epoch-ms time as 'YYYY-MM-DD HH:MM:SS' in the zone (UTC by default)."""
    if epoch_ms is None:
        return "-"
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    local = zone(tz)
    return (moment.astimezone(local) if local else moment).strftime("%Y-%m-%d %H:%M:%S")


def age(epoch_ms: int | None, now: int | None = None) -> str:
    """How long ago an epoch-ms time was, shortly ('12 s', '3 min', '5 h', '2 d')."""
    if epoch_ms is None:
        return "never"
    seconds = max(((now or now_ms()) - epoch_ms) / 1000, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def note(text: str | None, color: str = "warning") -> dict[str, Any] | None:
    """A short note above a chart, or nothing: an Alert in its JSON form. A component
    object in a callback's answer makes Plotly's serializer walk every number of the
    figures beside it in Python (~10 ms for a few thousand points); plain JSON goes
    straight to orjson."""
    if not text:
        return None
    return dbc.Alert(text, color=color, className="py-2 mb-2 small").to_plotly_json()


def feed_row(feed: str, latest: int | None, stale_seconds: int) -> dict:
    """A feed with its newest data, how old that is, and whether it is stale."""
    stale = latest is None or now_ms() - latest > stale_seconds * 1000
    return {"feed": feed, "newest": when(latest)[5:] if latest else "-", "age": age(latest),
            "state": "stale" if stale else "fresh"}


def newest(symbol: str, source: str) -> int | None:
    """Epoch ms of the newest stored row of a spot source for `symbol` (cached)."""
    fresh = next(iter(views.spot_freshness((symbol,))), {})
    return fresh.get(source)


def spot_gap_reason(symbol: str, span_seconds: int, source: str = "candle_1m") -> str:
    """Why a spot chart of `symbol` over the last `span_seconds` has no rows."""
    latest = newest(symbol, source)
    if latest is None:
        return (f"No data for {symbol} yet: the spot feed has stored none (is ingestion "
                "running? See the Status page).")
    if now_ms() - latest > span_seconds * 1000:
        return (f"The {symbol} feed looks down: its newest data is from {when(latest)} UTC, "
                f"{age(latest)} ago, before this window. Choose a longer range or check Status.")
    return f"No {symbol} rows in this window yet."


def stale_note(symbol: str, source: str = "candle_1m") -> str | None:
    """A warning when the newest data of a source is older than it should be."""
    latest = newest(symbol, source)
    if latest is None or now_ms() - latest <= STALE_SECONDS[source] * 1000:
        return None
    return (f"{symbol}: the newest data is {age(latest)} old ({when(latest)} UTC); the feed "
            "may be down, the chart ends there.")
