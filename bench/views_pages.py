"""The main callbacks of each page, as the benchmark calls them: which output, which filters.

`n` varies the filters from call to call (another symbol or market), as many screens do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.views_data import Dataset
from layouts import ids

SYMBOLS = Dataset().symbol_names()
MARKETS = [str(market) for market in Dataset().p2p_markets()]
VIEWER = {f"{ids.TZ_STORE}.data": "UTC", f"{ids.THEME_STORE}.data": "light",
          f"{ids.LIVE}.n_intervals": 0}
TICK = f"{ids.LIVE}.n_intervals"


def use(dataset: Dataset) -> None:
    """Call the pages with the symbols and markets of this dataset."""
    SYMBOLS[:] = dataset.symbol_names()
    MARKETS[:] = [str(market) for market in dataset.p2p_markets()]


@dataclass(frozen=True)
class Call:
    """One callback of a page: its first output's component, its filters, its marks store."""

    label: str
    output: str
    filters: Callable[[int], dict[str, Any]]
    marks: str | None = None
    changed: str | None = None

    def values(self, n: int, tick: int | None = None,
               marks: Any = None) -> dict[str, Any]:
        """Input and state values of call `n` (a live tick when `tick` is given)."""
        values = {**VIEWER, **self.filters(n)}
        if tick is not None:
            values[TICK] = tick
        if self.marks and marks is not None:
            values[f"{self.marks}.data"] = marks
        return values


def callback_key(callback_map: Mapping[str, Any], output: str) -> str:
    """The key of the callback whose outputs include component `output`."""
    for key in callback_map:
        if output in {part.rsplit(".", 1)[0] for part in key.strip(".").split("...")}:
            return key
    raise KeyError(f"no callback writes {output}")


def _v(component: str, value: Any) -> dict[str, Any]:
    return {f"{component}.value": value}


def symbol(n: int) -> str:
    return SYMBOLS[n % len(SYMBOLS)]


def market(n: int) -> str:
    return MARKETS[n % len(MARKETS)]


def fiat(n: int) -> str:
    """A fiat with both a BTC and a USDT market on one exchange."""
    fiats = [key.split("/")[1] for key in MARKETS if ":BTC/" in key
             and key.replace(":BTC/", ":USDT/") in MARKETS]
    return fiats[n % len(fiats)] if fiats else "ARS"


def spread_filters(n: int) -> dict[str, Any]:
    return {**_v(ids.SPREAD_MARKETS, [market(n)]), **_v(ids.SPREAD_RANGE, "1d"),
            **_v(ids.SPREAD_BUCKET, "5m"), **_v(ids.SPREAD_AMOUNT, None),
            **_v(ids.SPREAD_PAYMENT, []), **_v(ids.SPREAD_MERCHANT, False),
            **_v(ids.SPREAD_COMPLETION, None)}


PAGES: dict[str, list[Call]] = {
    "overview": [Call("P2P markets, spot tickers, feeds", ids.OVERVIEW_MARKETS,
                      lambda n: {**_v(ids.OVERVIEW_EXCHANGES, None),
                                 **_v(ids.OVERVIEW_FIATS, None)})],
    "spread": [
        Call("1 market, 1d of 5m", ids.SPREAD_GRAPH, spread_filters, marks=ids.SPREAD_MARKS),
        Call("now, by method, adverts", ids.SPREAD_NOW, spread_filters),
    ],
    "depth": [
        Call("P2P depth, latest", ids.DEPTH_GRAPH,
             lambda n: {**_v(ids.DEPTH_MARKET, market(n)), **_v(ids.DEPTH_AT, None),
                        **_v(ids.DEPTH_UNIT, "asset"), **_v(ids.DEPTH_PAYMENT, []),
                        **_v(ids.DEPTH_MERCHANT, False)}),
        Call("spot book 1h", ids.DEPTH_BOOK_GRAPH,
             lambda n: {**_v(ids.DEPTH_SYMBOL, symbol(n)), **_v(ids.DEPTH_RANGE, "1h")},
             marks=ids.DEPTH_BOOK_MARKS),
    ],
    "volume": [
        Call("3 symbols, 1d of 1h", ids.VOLUME_GRAPH,
             lambda n: {**_v(ids.VOLUME_SYMBOLS, [symbol(n), symbol(n + 1), symbol(n + 2)]),
                        **_v(ids.VOLUME_INTERVAL, "1h"), **_v(ids.VOLUME_RANGE, "1d")},
             marks=ids.VOLUME_MARKS),
        Call("P2P liquidity, 1d of 1h", ids.VOLUME_P2P_GRAPH,
             lambda n: {**_v(ids.VOLUME_MARKETS, [market(n)]),
                        **_v(ids.VOLUME_INTERVAL, "1h"), **_v(ids.VOLUME_RANGE, "1d")},
             marks=ids.VOLUME_P2P_MARKS),
    ],
    "candles": [
        Call("1d of 1m", ids.CANDLES_GRAPH,
             lambda n: {**_v(ids.CANDLES_SYMBOL, symbol(n)), **_v(ids.CANDLES_INTERVAL, "1m"),
                        **_v(ids.CANDLES_RANGE, "1d"), **_v(ids.CANDLES_OVERLAY, False)},
             marks=ids.CANDLES_MARKS),
        Call("1M of 30m with bid/ask", ids.CANDLES_GRAPH,
             lambda n: {**_v(ids.CANDLES_SYMBOL, symbol(n)), **_v(ids.CANDLES_INTERVAL, "30m"),
                        **_v(ids.CANDLES_RANGE, "1M"), **_v(ids.CANDLES_OVERLAY, True)},
             marks=ids.CANDLES_MARKS),
        Call("implied rate, 1d of 1m", ids.CANDLES_IMPLIED_GRAPH,
             lambda n: {**_v(ids.CANDLES_FIAT, fiat(n)), **_v(ids.CANDLES_INTERVAL, "1m"),
                        **_v(ids.CANDLES_RANGE, "1d")}),
    ],
}
