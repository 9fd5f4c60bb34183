"""The last 24 hours of one symbol's 1m candles, kept with running sums.

A window is built once from a day of minutes in bulk (numpy), then rolled forward one
minute at a time: the sums take one candle in and one out, and the highs and lows are kept
in monotonic queues, so a 24h ticker costs the same whatever the length of the day.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ingest.fake.market import DAY_MINUTES, TRADE_ID_STRIDE, Candle, SimulatedMarket
from ingest.fake.minutes import MinuteRows

SUMMED = ("volume", "quote", "trades", "taker_base", "taker_quote")
REBUILD_AFTER = 30  # minutes behind: building anew is cheaper than rolling that far


class DayWindow:
    """The closed minutes [end - DAY_MINUTES, end) of a symbol."""

    def __init__(self, market: SimulatedMarket, symbol: str, end: int) -> None:
        self.market, self.symbol = market, symbol
        self._build(end)

    def _build(self, end: int) -> None:
        rows = self.market.rows(self.symbol, end - DAY_MINUTES - 1, end - 1)
        self.end = end
        self.before = int(rows.close[0])  # the close of the minute before the window
        day = rows.part(1)
        self.sums = [int(getattr(day, name).sum()) for name in SUMMED]
        self.highs = _extremes(day.minutes, day.high, np.greater)
        self.lows = _extremes(day.minutes, day.low, np.less)
        self._set_head(day)
        traded = np.flatnonzero(day.trades)
        self.last_id = (int(day.minutes[traded[-1]]) * TRADE_ID_STRIDE
                        + int(day.trades[traded[-1]]) - 1) if len(traded) else -1

    def _set_head(self, rows: MinuteRows) -> None:
        """The open and first trade id of the window, whose first minute is rows[0]."""
        self.open = int(rows.open[0])
        traded = np.flatnonzero(rows.trades)
        self.first_id = int(rows.minutes[traded[0]]) * TRADE_ID_STRIDE if len(traded) else -1

    def advance(self, end: int, arriving: Candle | None = None) -> None:
        """Roll forward until the window ends at `end`; `arriving` is minute end - 1 when the
        caller has it already."""
        if not 0 <= end - self.end <= REBUILD_AFTER:
            self._build(end)
            return
        while self.end < end:
            minute = self.end
            candle = arriving if arriving is not None and end == minute + 1 else \
                self.market.candle(self.symbol, minute)
            self._step(candle)

    def _step(self, arriving: Candle) -> None:
        minute, start = self.end, self.end - DAY_MINUTES
        # The leaving minute, the new first one, and enough after it to find a first trade.
        rows = self.market.rows(self.symbol, start, start + 17)
        leaving = rows.part(0)
        self.before = int(leaving.close[0])
        self.sums = [total - int(getattr(leaving, name)[0]) + getattr(arriving, name)
                     for total, name in zip(self.sums, SUMMED, strict=True)]
        _push(self.highs, minute, arriving.high, lambda kept, new: kept <= new)
        _push(self.lows, minute, arriving.low, lambda kept, new: kept >= new)
        for queue in (self.highs, self.lows):
            while queue and queue[0][0] <= start:
                queue.popleft()
        self._set_head(rows.part(1))
        if arriving.trades:
            self.last_id = arriving.last_id
        self.end += 1

    def total(self, live: Candle) -> Candle:
        """The window plus the live minute, as one candle."""
        candle = Candle((self.end - DAY_MINUTES) * 60_000, live.close_ms, self.open,
                        max(self.highs[0][1], live.high), min(self.lows[0][1], live.low),
                        live.close, *(total + getattr(live, name)
                                      for total, name in zip(self.sums, SUMMED, strict=True)))
        candle.first_id = self.first_id if self.first_id >= 0 else live.first_id
        candle.last_id = live.last_id if live.trades else self.last_id
        return candle


def _extremes(minutes: np.ndarray, values: np.ndarray, better) -> deque:
    """The monotonic queue of a window: each value better than every later one (or equal
    to none later), oldest first."""
    later = np.concatenate([values[1:], values[-1:]])
    best_after = (np.maximum if better is np.greater else np.minimum).accumulate(
        later[::-1])[::-1]
    keep = better(values, best_after)
    keep[-1] = True
    return deque(zip(minutes[keep].tolist(), values[keep].tolist(), strict=True))


def _push(queue: deque, minute: int, value: int, dominated) -> None:
    while queue and dominated(queue[-1][1], value):
        queue.pop()
    queue.append((minute, value))
