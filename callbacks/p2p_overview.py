"""The overview's P2P part: one row per configured market, and each market's feed age."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from callbacks import common
from layouts.controls import p2p_markets


def markets_block(exchanges: Sequence[str], fiats: Sequence[str]) -> Any:
    """The P2P markets table, or why there is none."""
    if not p2p_markets():
        return html.P(common.NO_P2P, className="text-body-secondary mb-0")
    return html.P("P2P metrics arrive with the P2P feed.", className="text-body-secondary mb-0")


def feed_rows() -> list[list[Any]]:
    """One row per configured P2P market: the age of its newest complete snapshot."""
    return []
