"""The overview's P2P part: one row per configured market, and each market's feed age."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app import state
from callbacks import common
from callbacks.p2p_views import STALE_POLLS
from db import views
from layouts.controls import market_key, p2p_markets
from layouts.figures import spark_text

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
NUMBERS = ("best_ask", "best_bid", "spread_pct", "ask_liquidity", "bid_liquidity")


def selected(exchanges: Sequence[str], fiats: Sequence[str]) -> list[str]:
    """The configured markets that pass the exchange and fiat filters (none set: all)."""
    return [market_key(market) for market in p2p_markets()
            if (not exchanges or market.exchange in exchanges)
            and (not fiats or market.fiat in fiats)]


def hourly(day: dict[str, list[Any]], now_ms: int) -> list[float | None]:
    """A day's spread % in hourly slots, from the hour of a day ago to this hour (None
    where no snapshot was)."""
    first = (now_ms - DAY_MS) // HOUR_MS * HOUR_MS
    slots: list[float | None] = [None] * 25
    for t, value in zip(day["t"], day["spread_pct"], strict=True):
        if 0 <= (t - first) // HOUR_MS < len(slots):
            slots[(t - first) // HOUR_MS] = value
    return slots


def spread_change(slots: list[float | None], now_pct: float | None) -> float | None:
    """Spread % now against a day ago (the last snapshot of that hour), in points."""
    if now_pct is None or slots[0] is None:
        return None
    return now_pct - slots[0]


def market_row(market: str, now: dict[str, Any], day: dict[str, list[Any]]) -> dict[str, Any]:
    """Best ask and bid, spread %, its 24h change, liquidity per side, 24h trend, age."""
    slots = hourly(day, common.now_ms())
    return {"market": market, **{name: now[name] for name in NUMBERS},
            "change": spread_change(slots, now["spread_pct"]),
            "adverts": f"{now['ask_offers'] or 0} / {now['bid_offers'] or 0}",
            "trend": spark_text(slots), "updated": common.age(now["captured_at"])}


def markets_rows(exchanges: Sequence[str],
                 fiats: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    """The P2P markets table's rows, or why there are none."""
    if not p2p_markets():
        return [], common.NO_P2P
    markets = selected(exchanges, fiats)
    if not markets:
        return [], "No configured market matches the exchange and fiat filters."
    keys = tuple(market_key(market) for market in p2p_markets())
    summaries, days = views.p2p_summaries(keys), views.p2p_day_spreads(keys)
    return [market_row(market, summaries[market], days[market]) for market in markets], None


def feed_rows() -> list[dict[str, Any]]:
    """One row per configured P2P market: the age of its newest complete snapshot."""
    keys = tuple(market_key(market) for market in p2p_markets())
    if not keys:
        return []
    stale_seconds = STALE_POLLS * state.current().settings.p2p_poll_seconds
    return [common.feed_row(f"{key} snapshot", summary["captured_at"], stale_seconds)
            for key, summary in views.p2p_summaries(keys).items()]
