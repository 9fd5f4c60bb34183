"""The simulated market's numbers in bulk: counter-based random draws and minutes in numpy.

Every draw is splitmix64 of (symbol key, stream, counter), so any minute of any symbol can
be worked out alone or among thousands of others, in any order, with the same result: a
day of candles is a few array operations instead of 1,440 seeded generators. Prices are
integers in the symbol's decimals; a minute is up to six trade groups (`GROUPS`) whose
prices step from the minute's opening boundary price to the next one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

MINUTE_MS = 60_000
DAY_MINUTES = 1440
GROUPS = 6
EMPTY_SHARE = 0.04
TRADE_ID_STRIDE = 100  # trade ids: minute * 100 + n, unique and increasing
LOOKBACK = 16  # an empty minute is priced at the last trade of the 16 minutes before it
SLOTS = 15  # draws per minute: empty and groups, offsets (2), noise (6), qty/count/taker (6)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
STREAM_MIX = 0xD1B54A32D192ED03
MASK64 = (1 << 64) - 1


def symbol_key(symbol: str, seed: int) -> int:
    """The 64-bit key all of a symbol's draws derive from."""
    return _mix_int(zlib.crc32(symbol.encode()) | (seed & 0xFFFFFFFF) << 32)


def _mix_int(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def draws(key: int, stream: int, counters: np.ndarray) -> np.ndarray:
    """64-bit draws for these counters of one of a symbol's streams (1: days, 2: bridges,
    3: minutes)."""
    z = np.uint64((key ^ (stream * STREAM_MIX)) & MASK64) + counters.astype(np.uint64) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(bits: np.ndarray) -> np.ndarray:
    """Floats in (0, 1] from 64-bit draws."""
    return ((bits >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0 ** -53


def gauss(key: int, stream: int, counters: np.ndarray, sigma: float) -> np.ndarray:
    """Normal draws (Box-Muller) for these counters."""
    first = uniform(draws(key, stream, counters * 2))
    second = uniform(draws(key, stream, counters * 2 + 1))
    return sigma * np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * np.pi * second)


@dataclass
class MinuteRows:
    """Candles of consecutive minutes as arrays (one element per minute)."""

    minutes: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray
    groups: np.ndarray  # trade groups per minute (0 when empty)
    offsets: np.ndarray  # (minutes, GROUPS) time order; unused slots past `groups`
    prices: np.ndarray
    qty: np.ndarray
    count: np.ndarray
    taker: np.ndarray

    def __len__(self) -> int:
        return len(self.minutes)

    def part(self, first: int, stop: int | None = None) -> MinuteRows:
        """The rows first..stop - 1 (to the end when stop is None)."""
        return MinuteRows(**{name: value[first:stop] for name, value in vars(self).items()})


def minute_rows(key: int, minutes: np.ndarray, boundary: np.ndarray,
                qty_scale: int) -> MinuteRows:
    """Candles of consecutive `minutes`; `boundary[i]` and `boundary[i + 1]` are the prices
    at the start and the end of minute i. The first LOOKBACK rows only price empty minutes
    after them: callers ask for LOOKBACK more minutes than they keep."""
    bits = draws(key, 3, minutes[:, None] * SLOTS + np.arange(SLOTS))
    start, end = boundary[:-1], boundary[1:]
    empty = uniform(bits[:, 0]) <= EMPTY_SHARE
    groups = np.where(empty, 0, 1 + (bits[:, 0] % np.uint64(GROUPS)).astype(np.int64))
    slot = np.arange(GROUPS)
    used = slot < groups[:, None]
    offsets = np.where(used, _offsets(bits[:, 1:3]), MINUTE_MS)
    offsets.sort(axis=1)
    noise_width = np.maximum(1, np.abs(end - start) // 2)[:, None]
    noise = (bits[:, 3:9] % (2 * noise_width + 1).astype(np.uint64)).astype(np.int64)
    noise -= noise_width
    step = np.maximum(groups, 1)[:, None]
    prices = start[:, None] + (end - start)[:, None] * (slot + 1) // step
    prices = np.where(slot < groups[:, None] - 1, np.maximum(1, prices + noise), prices)
    trade_bits = bits[:, 9:15]
    low_qty = max(1, qty_scale // 1000)
    qty = low_qty + ((trade_bits >> np.uint64(32)) % np.uint64(qty_scale - low_qty + 1)
                     ).astype(np.int64)
    count = 1 + ((trade_bits >> np.uint64(8)) % np.uint64(256) % np.uint64(15)
                 ).astype(np.int64)
    taker = (trade_bits & np.uint64(1)) == 1
    return _candles(minutes, start, groups=groups, offsets=offsets, prices=prices,
                    qty=qty * used, count=count * used, taker=taker, used=used)


def _offsets(bits: np.ndarray) -> np.ndarray:
    """Six offsets into the minute (ms) from two draws: 16 bits each."""
    parts = [(bits[:, n // 4] >> np.uint64(16 * (n % 4))) & np.uint64(0xFFFF)
             for n in range(GROUPS)]
    return (np.stack(parts, axis=1) % np.uint64(MINUTE_MS)).astype(np.int64)


def _candles(minutes, start, *, groups, offsets, prices, qty, count, taker,
             used) -> MinuteRows:
    rows = np.arange(len(minutes))
    last_group = np.maximum(groups - 1, 0)
    traded = groups > 0
    close = _carry_last_price(minutes, traded, prices[rows, last_group], start)
    quote = qty * prices
    return MinuteRows(
        minutes=minutes,
        open=np.where(traded, prices[:, 0], close),
        high=np.where(traded, np.where(used, prices, 0).max(axis=1), close),
        low=np.where(traded, np.where(used, prices, np.iinfo(np.int64).max).min(axis=1),
                     close),
        close=close, volume=qty.sum(axis=1), quote=quote.sum(axis=1),
        trades=count.sum(axis=1), taker_base=(qty * taker).sum(axis=1),
        taker_quote=(quote * taker).sum(axis=1), groups=groups, offsets=offsets,
        prices=prices, qty=qty, count=count, taker=taker)


def _carry_last_price(minutes: np.ndarray, traded: np.ndarray, last_trade: np.ndarray,
                      start: np.ndarray) -> np.ndarray:
    """Each minute's closing price: its last trade, or for an empty minute the last trade of
    the LOOKBACK minutes before (the minute's opening boundary price when there is none)."""
    index = np.where(traded, np.arange(len(minutes)), -1)
    np.maximum.accumulate(index, out=index)
    found = (index >= 0) & (minutes - minutes[np.maximum(index, 0)] <= LOOKBACK)
    return np.where(found, last_trade[np.maximum(index, 0)], start)


def day_anchors(key: int, base_log_price: float, origin: int, days: np.ndarray
                ) -> np.ndarray:
    """Log prices at the start of `days`: a daily walk out from `origin`, both ways."""
    first, last = min(int(days.min()), origin), max(int(days.max()), origin)
    steps = gauss(key, 1, np.arange(first, last, dtype=np.int64), 0.015)  # day d -> d + 1
    forward = np.cumsum(steps[origin - first:])
    backward = np.cumsum(steps[:origin - first][::-1])[::-1]
    walk = np.concatenate([base_log_price - backward, [base_log_price],
                           base_log_price + forward])
    return walk[days - first]


def bridge(key: int, day: int) -> np.ndarray:
    """A day's Brownian bridge in log price: DAY_MINUTES + 1 points from 0 back to 0."""
    steps = gauss(key, 2, day * DAY_MINUTES + np.arange(DAY_MINUTES, dtype=np.int64),
                  0.0007)
    path = np.concatenate([[0.0], np.cumsum(steps)])
    return path - path[-1] * np.arange(DAY_MINUTES + 1) / DAY_MINUTES
