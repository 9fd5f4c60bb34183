"""A simulated spot market: deterministic random-walk candles, live klines, tickers, books.

Every minute of every symbol is a pure function of (seed, symbol, minute), so the REST
history, the live kline stream and its closing frames always agree, for any past range and
in any process. Prices follow a day-to-day log random walk joined by a Brownian bridge
inside each day; a minute is a handful of trade groups revealed as the minute goes on, and
now and then a minute has no trades (an empty candle, as Binance sends them). All amounts
are integers in fixed decimals, so they print exactly as Binance's 8-decimal strings.
"""

from __future__ import annotations

import math
import random
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

MINUTE_MS = 60_000
DAY_MINUTES = 1440
BASE_PRICES = {"BTCUSDT": 65000, "ETHUSDT": 3500, "BNBUSDT": 600, "SOLUSDT": 150,
               "XRPUSDT": 0.6, "ADAUSDT": 0.45, "DOGEUSDT": 0.15, "ETHBTC": 0.054}
ORIGIN_DAY = 20089  # 2025-01-01: the day-level walk starts here, in both directions
EMPTY_SHARE = 0.04
TRADE_ID_STRIDE = 100  # trade ids: minute * 100 + n, unique and increasing


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
    """Cached day anchors (log prices) and intraday bridges of one symbol."""

    anchors: dict[int, float] = field(default_factory=dict)
    bridges: OrderedDict = field(default_factory=OrderedDict)
    minutes: OrderedDict = field(default_factory=OrderedDict)


class SimulatedMarket:
    """Deterministic candles and live events for any symbol; thread-safe."""

    def __init__(self, seed: int = 1, cache_minutes: int = 50_000) -> None:
        self.seed = seed
        self.cache_minutes = cache_minutes
        self._walks: dict[str, _Walk] = {}
        self._lock = threading.RLock()

    # -- prices ------------------------------------------------------------------------

    def _rng(self, symbol: str, kind: int, number: int) -> random.Random:
        return random.Random((zlib.crc32(symbol.encode()) << 40) ^ (kind << 36) ^ number
                             ^ (self.seed << 48))

    def _anchor(self, walk: _Walk, symbol: str, day: int) -> float:
        """Log price at the start of `day`: daily steps walked out from ORIGIN_DAY."""
        if day in walk.anchors:
            return walk.anchors[day]
        toward = -1 if day > ORIGIN_DAY else 1
        known = day
        while known not in walk.anchors and known != ORIGIN_DAY:
            known += toward
        value = walk.anchors.setdefault(known, math.log(instrument(symbol).base_price))
        while known != day:
            if toward == -1:
                value += self._rng(symbol, 1, known).gauss(0, 0.015)
                known += 1
            else:
                known -= 1
                value -= self._rng(symbol, 1, known).gauss(0, 0.015)
            walk.anchors[known] = value
        return value

    def _bridge(self, walk: _Walk, symbol: str, day: int) -> list[float]:
        if day not in walk.bridges:
            rng = self._rng(symbol, 2, day)
            path = [0.0]
            for _ in range(DAY_MINUTES):
                path.append(path[-1] + rng.gauss(0, 0.0007))
            drift = path[-1]
            walk.bridges[day] = [p - drift * k / DAY_MINUTES for k, p in enumerate(path)]
            if len(walk.bridges) > 64:
                walk.bridges.popitem(last=False)
        return walk.bridges[day]

    def boundary_price(self, symbol: str, minute: int) -> int:
        """The price (in units) at the start of `minute`."""
        with self._lock:
            walk = self._walks.setdefault(symbol, _Walk())
            day, k = divmod(minute, DAY_MINUTES)
            start, end = self._anchor(walk, symbol, day), self._anchor(walk, symbol, day + 1)
            log_price = start + (end - start) * k / DAY_MINUTES + self._bridge(walk, symbol,
                                                                               day)[k]
        units = math.exp(log_price) * 10 ** instrument(symbol).price_decimals
        return max(1, round(units))

    # -- minutes -----------------------------------------------------------------------

    def trades(self, symbol: str, minute: int) -> list[Trade]:
        """The trade groups of a minute, in time order; empty for an empty minute."""
        rng = self._rng(symbol, 3, minute)
        if rng.random() < EMPTY_SHARE:
            return []
        start, end = self.boundary_price(symbol, minute), self.boundary_price(symbol,
                                                                                minute + 1)
        groups = rng.randint(1, 6)
        offsets = sorted(rng.randrange(MINUTE_MS) for _ in range(groups))
        noise = max(1, abs(end - start) // 2)
        qty_scale = 10 ** instrument(symbol).qty_decimals
        result = []
        for i, offset in enumerate(offsets):
            price = start + (end - start) * (i + 1) // groups
            if i < groups - 1:
                price = max(1, price + rng.randint(-noise, noise))
            result.append(Trade(offset, price, rng.randint(qty_scale // 1000 or 1, qty_scale),
                                rng.randint(1, 15), rng.random() < 0.5))
        return result

    def candle(self, symbol: str, minute: int, until_offset_ms: int = MINUTE_MS) -> Candle:
        """The 1m candle of `minute` with the trades up to `until_offset_ms` into it."""
        if until_offset_ms >= MINUTE_MS:
            with self._lock:
                cached = self._walks.setdefault(symbol, _Walk()).minutes.get(minute)
            if cached is not None:
                return Candle(**vars(cached))
        trades = [t for t in self.trades(symbol, minute) if t.offset_ms < until_offset_ms]
        open_ms = minute * MINUTE_MS
        if not trades:
            last = self.last_price(symbol, minute)
            result = Candle(open_ms, open_ms + MINUTE_MS - 1, last, last, last, last)
        else:
            result = _from_trades(open_ms, trades, minute * TRADE_ID_STRIDE)
        if until_offset_ms >= MINUTE_MS:
            self._remember(symbol, minute, result)
        return result

    def _remember(self, symbol: str, minute: int, candle: Candle) -> None:
        with self._lock:
            cache = self._walks.setdefault(symbol, _Walk()).minutes
            cache[minute] = Candle(**vars(candle))
            if len(cache) > self.cache_minutes:
                cache.popitem(last=False)

    def last_price(self, symbol: str, minute: int) -> int:
        """The last traded price before `minute` (looking back over empty minutes)."""
        for earlier in range(minute - 1, minute - DAY_MINUTES, -1):
            trades = self.trades(symbol, earlier)
            if trades:
                return trades[-1].price
        return self.boundary_price(symbol, minute)

    def live_candle(self, symbol: str, now_ms: int) -> Candle:
        """The candle of the current minute as it stands at `now_ms`."""
        minute, offset = divmod(now_ms, MINUTE_MS)
        return self.candle(symbol, minute, offset + 1)

    def price_at(self, symbol: str, now_ms: int) -> int:
        """The last traded price at `now_ms`."""
        return self.live_candle(symbol, now_ms).close

    def window(self, symbol: str, first_minute: int, last_minute: int) -> Candle:
        """One candle aggregating the 1m candles first_minute..last_minute (inclusive)."""
        total = self.candle(symbol, first_minute)
        for minute in range(first_minute + 1, last_minute + 1):
            total.add(self.candle(symbol, minute))
        return total


def _from_trades(open_ms: int, trades: list[Trade], first_id: int) -> Candle:
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
