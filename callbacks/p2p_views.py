"""The P2P charts of the views (spread, depth, liquidity, implied rate), built from db/p2p."""

from __future__ import annotations

from typing import Any

from callbacks import common
from layouts.controls import p2p_markets
from layouts.figures import empty_figure

PENDING = "P2P metrics arrive with the P2P feed."


def liquidity_view(markets: list[str], bucket: str, range_key: str, *, tz: str,
                   dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The liquidity and counts figure of some P2P markets, and the notes above it."""
    if not p2p_markets():
        return empty_figure(common.NO_P2P, dark), [common.NO_P2P]
    return empty_figure(PENDING, dark), [PENDING]


def depth_view(market: str | None, at: str | None, unit: str | None, payment: list[str],
               merchant: bool, *, tz: str, dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The cumulative depth figure of a P2P market, and the notes above it."""
    if not p2p_markets():
        return empty_figure(common.NO_P2P, dark), [common.NO_P2P]
    return empty_figure(PENDING, dark), [PENDING]
