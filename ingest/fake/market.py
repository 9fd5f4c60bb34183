"""A simulated spot market: deterministic random-walk candles, live klines, tickers, books.

Every minute of every symbol is a pure function of (seed, symbol, minute), so the REST
history, the live kline stream and its closing frames always agree, for any past range and
in any process. Prices follow a day-to-day log random walk joined by a Brownian bridge
inside each day; a minute is a handful of trade groups revealed as the minute goes on, and
now and then a minute has no trades (an empty candle, as Binance sends them). All amounts
are integers in fixed decimals, so they print exactly as Binance's 8-decimal strings. The
draws are counter-based (ingest/fake/minutes.py): a day of minutes is worked out in one
go with numpy, and a single minute costs the same wherever it is.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ingest.fake.minutes import (
    DAY_MINUTES,
    EMPTY_SHARE,
    LOOKBACK,
    MINUTE_MS,
    TRADE_ID_STRIDE,
    MinuteRows,
    bridge,
    day_anchors,
    minute_rows,
    symbol_key,
)

__all__ = ["DAY_MINUTES", "EMPTY_SHARE", "MINUTE_MS", "TRADE_ID_STRIDE", "Candle",
           "Instrument", "SimClock", "SimulatedMarket", "Trade", "instrument"]

BASE_PRICES = {"BTCUSDT": 65000, "ETHUSDT": 3500, "BNBUSDT": 600, "SOLUSDT": 150,
               "XRPUSDT": 0.6, "ADAUSDT": 0.45, "DOGEUSDT": 0.15, "ETHBTC": 0.054}
ORIGIN_DAY = 20089  # 2025-01-01: the day-level walk starts here, in both directions


class SimClock:
    """Epoch seconds that run `speed` times faster than the wall clock from `start`."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        self.speed = speed
        self._wall0 = time.time()
        self._sim0 = self._wall0 if start is None else start

    def __call__(self) -> float:
        return self._sim0 + (time.time() - self._wall0) * self.speed

    def ms(self) -> int:
        """Now in epoch milliseconds."""
        return int(self() * 1000)


@dataclass(frozen=True)
class Trade:
    """A group of trades at one price within a minute."""

    offset_ms: int
    price: int
    qty: int
    count: int
    taker_buy: bool


@dataclass
class Candle:
    """A 1m (or aggregated) candle in integer units of its symbol's decimals."""

    open_ms: int
    close_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote: int = 0
    trades: int = 0
    taker_base: int = 0
    taker_quote: int = 0
    first_id: int = -1
    last_id: int = -1

    def add(self, other: Candle) -> None:
        """Extend this candle with a later one (used to build coarser intervals)."""
        if self.trades == 0 and other.trades:
            self.first_id = other.first_id
        self.high, self.low = max(self.high, other.high), min(self.low, other.low)
        self.close, self.close_ms = other.close, other.close_ms
        self.volume += other.volume
        self.quote += other.quote
        self.trades += other.trades
        self.taker_base += other.taker_base
        self.taker_quote += other.taker_quote
        self.last_id = other.last_id if other.trades else self.last_id

    def copy(self) -> Candle:
        return Candle(**vars(self))


@dataclass(frozen=True)
class Instrument:
    """How a symbol's prices and quantities are written."""

    symbol: str
    base_price: float
    price_decimals: int
    qty_decimals: int

    def price(self, units: int) -> str:
        return _fixed(units, self.price_decimals)

    def qty(self, units: int) -> str:
        return _fixed(units, self.qty_decimals)

    def quote(self, units: int) -> str:
        return _fixed(units, self.price_decimals + self.qty_decimals)


def _fixed(units: int, decimals: int) -> str:
    """Integer units with `decimals` decimals as Binance writes them: 8 decimals."""
    sign, digits = ("-", str(-units)) if units < 0 else ("", str(units))
    digits = digits.rjust(decimals + 1, "0")
    whole, fraction = digits[:len(digits) - decimals], digits[len(digits) - decimals:]
    return f"{sign}{whole}.{fraction.ljust(8, '0')}"


@functools.lru_cache(maxsize=65_536)
def instrument(symbol: str) -> Instrument:
    """The instrument for any symbol: known prices for common ones, a stable guess otherwise."""
    base = BASE_PRICES.get(symbol) or 1 + zlib.crc32(symbol.encode()) % 500
    if base >= 100:
        return Instrument(symbol, base, 2, 5)
    if base >= 1:
        return Instrument(symbol, base, 4, 4)
    return Instrument(symbol, base, 6, 2)


@dataclass
class _Walk:
    """One symbol's key and small caches: day anchors, days of boundary prices, minutes."""

    key: int
    anchors: dict[int, float] = field(default_factory=dict)
    days: OrderedDict = field(default_factory=OrderedDict)
    minutes: OrderedDict = field(default_factory=OrderedDict)


class SimulatedMarket:
    """Deterministic candles and live events for any symbol; thread-safe."""

    def __init__(self, seed: int = 1, cache_minutes: int = 8, cache_days: int = 3) -> None:
        self.seed = seed
        self.cache_minutes = cache_minutes
        self.cache_days = cache_days
        self._walks: dict[str, _Walk] = {}
        self._lock = threading.RLock()

    def _walk(self, symbol: str) -> _Walk:
        walk = self._walks.get(symbol)
        if walk is None:
            with self._lock:
                walk = self._walks.setdefault(symbol, _Walk(symbol_key(symbol, self.seed)))
        return walk

    # -- prices ------------------------------------------------------------------------

    def _anchor(self, walk: _Walk, symbol: str, day: int) -> float:
        """Log price at the start of `day`: daily steps walked out from ORIGIN_DAY."""
        value = walk.anchors.get(day)
        if value is None:
            base = math.log(instrument(symbol).base_price)
            days = np.arange(day - 1, day + 2)  # a day's neighbours are wanted next
            values = day_anchors(walk.key, base, ORIGIN_DAY, days).tolist()
            with self._lock:
                if len(walk.anchors) > 64:
                    walk.anchors.clear()
                walk.anchors.update(zip(days.tolist(), values, strict=True))
            value = values[1]
        return value

    def day_prices(self, symbol: str, day: int) -> np.ndarray:
        """The boundary prices (units) at the start of each minute of `day`."""
        walk = self._walk(symbol)
        with self._lock:
            cached = walk.days.get(day)
        if cached is not None:
            return cached
        start, end = self._anchor(walk, symbol, day), self._anchor(walk, symbol, day + 1)
        steps = np.arange(DAY_MINUTES) / DAY_MINUTES
        log_prices = start + (end - start) * steps + bridge(walk.key, day)[:-1]
        scale = 10 ** instrument(symbol).price_decimals
        prices = np.maximum(1, np.rint(np.exp(log_prices) * scale)).astype(np.int64)
        with self._lock:
            walk.days[day] = prices
            while len(walk.days) > self.cache_days:
                walk.days.popitem(last=False)
        return prices

    def boundary_prices(self, symbol: str, first: int, last: int) -> np.ndarray:
        """The prices at the start of minutes first..last (inclusive)."""
        parts = [self.day_prices(symbol, day)[max(first, day * DAY_MINUTES) - day * DAY_MINUTES:
                                              min(last, day * DAY_MINUTES + DAY_MINUTES - 1)
                                              - day * DAY_MINUTES + 1]
                 for day in range(first // DAY_MINUTES, last // DAY_MINUTES + 1)]
        return np.concatenate(parts)

    def boundary_price(self, symbol: str, minute: int) -> int:
        """The price (in units) at the start of `minute`."""
        day, k = divmod(minute, DAY_MINUTES)
        return int(self.day_prices(symbol, day)[k])

    # -- minutes -----------------------------------------------------------------------

    def rows(self, symbol: str, first: int, last: int) -> MinuteRows:
        """The 1m candles of minutes first..last (inclusive) as arrays."""
        minutes = np.arange(first - LOOKBACK, last + 1, dtype=np.int64)
        boundary = self.boundary_prices(symbol, first - LOOKBACK, last + 1)
        qty_scale = 10 ** instrument(symbol).qty_decimals
        return minute_rows(self._walk(symbol).key, minutes, boundary, qty_scale).part(LOOKBACK)

    def trades(self, symbol: str, minute: int) -> list[Trade]:
        """The trade groups of a minute, in time order; empty for an empty minute."""
        return row_trades(self.rows(symbol, minute, minute), 0)

    def candle(self, symbol: str, minute: int, until_offset_ms: int = MINUTE_MS) -> Candle:
        """The 1m candle of `minute` with the trades up to `until_offset_ms` into it."""
        if until_offset_ms < MINUTE_MS:
            trades = [t for t in self.trades(symbol, minute) if t.offset_ms < until_offset_ms]
            if trades:
                return from_trades(minute, trades)
            last = self.candle(symbol, minute - 1).close
            return Candle(minute * MINUTE_MS, minute * MINUTE_MS + MINUTE_MS - 1, last, last,
                          last, last)
        walk = self._walk(symbol)
        with self._lock:
            cached = walk.minutes.get(minute)
        if cached is None:
            cached = row_candle(self.rows(symbol, minute, minute), 0)
            with self._lock:
                walk.minutes[minute] = cached
                while len(walk.minutes) > self.cache_minutes:
                    walk.minutes.popitem(last=False)
        return cached.copy()

    def last_price(self, symbol: str, minute: int) -> int:
        """The last traded price before `minute` (looking back over empty minutes)."""
        return self.candle(symbol, minute - 1).close

    def live_candle(self, symbol: str, now_ms: int) -> Candle:
        """The candle of the current minute as it stands at `now_ms`."""
        minute, offset = divmod(now_ms, MINUTE_MS)
        return self.candle(symbol, minute, offset + 1)

    def price_at(self, symbol: str, now_ms: int) -> int:
        """The last traded price at `now_ms`."""
        return self.live_candle(symbol, now_ms).close

    def window(self, symbol: str, first_minute: int, last_minute: int) -> Candle:
        """One candle aggregating the 1m candles first_minute..last_minute (inclusive)."""
        total = None
        for start in range(first_minute, last_minute + 1, 10 * DAY_MINUTES):
            rows = self.rows(symbol, start, min(last_minute, start + 10 * DAY_MINUTES - 1))
            part = rows_candle(rows)
            total = part if total is None else (total.add(part) or total)
        return total


def row_candle(rows: MinuteRows, i: int) -> Candle:
    """Row i as a Candle."""
    minute, trades = int(rows.minutes[i]), int(rows.trades[i])
    first_id = minute * TRADE_ID_STRIDE if trades else -1
    return Candle(minute * MINUTE_MS, minute * MINUTE_MS + MINUTE_MS - 1, int(rows.open[i]),
                  int(rows.high[i]), int(rows.low[i]), int(rows.close[i]),
                  int(rows.volume[i]), int(rows.quote[i]), trades, int(rows.taker_base[i]),
                  int(rows.taker_quote[i]), first_id, first_id + trades - 1 if trades else -1)


def rows_candle(rows: MinuteRows) -> Candle:
    """All the rows as one candle."""
    traded = np.flatnonzero(rows.trades)
    candle = Candle(int(rows.minutes[0]) * MINUTE_MS, int(rows.minutes[-1]) * MINUTE_MS
                    + MINUTE_MS - 1, int(rows.open[0]), int(rows.high.max()),
                    int(rows.low.min()), int(rows.close[-1]), int(rows.volume.sum()),
                    int(rows.quote.sum()), int(rows.trades.sum()), int(rows.taker_base.sum()),
                    int(rows.taker_quote.sum()))
    if len(traded):
        candle.first_id = int(rows.minutes[traded[0]]) * TRADE_ID_STRIDE
        last = traded[-1]
        candle.last_id = (int(rows.minutes[last]) * TRADE_ID_STRIDE + int(rows.trades[last])
                          - 1)
    return candle


def row_trades(rows: MinuteRows, i: int) -> list[Trade]:
    """The trade groups of row i, in time order."""
    return [Trade(int(rows.offsets[i, g]), int(rows.prices[i, g]), int(rows.qty[i, g]),
                  int(rows.count[i, g]), bool(rows.taker[i, g]))
            for g in range(int(rows.groups[i]))]


def from_trades(minute: int, trades: list[Trade]) -> Candle:
    """The candle of these trade groups of `minute` (at least one)."""
    open_ms, first_id = minute * MINUTE_MS, minute * TRADE_ID_STRIDE
    prices = [t.price for t in trades]
    candle = Candle(open_ms, open_ms + MINUTE_MS - 1, prices[0], max(prices), min(prices),
                    prices[-1], first_id=first_id)
    for trade in trades:
        candle.volume += trade.qty
        candle.quote += trade.qty * trade.price
        candle.trades += trade.count
        if trade.taker_buy:
            candle.taker_base += trade.qty
            candle.taker_quote += trade.qty * trade.price
    candle.last_id = first_id + candle.trades - 1
    return candle
