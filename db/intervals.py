"""Candle intervals as Binance names them, their lengths, and where their buckets start.

Binance's candles start at whole multiples of their length counted from the Unix epoch
(so 3d candles align on 1970-01-01), except weekly ones, which start on Monday 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

INTERVALS: dict[str, int] = {
    "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS, "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS, "12h": 12 * HOUR_MS, "1d": DAY_MS,
    "3d": 3 * DAY_MS, "1w": 7 * DAY_MS,
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-05 was the first Monday after the epoch (a Thursday).
WEEK_ORIGIN = EPOCH + timedelta(days=4)


class IntervalError(ValueError):
    """An interval p2pdash does not know; the message lists the ones it does."""


def parse_interval(text: str) -> str:
    """Return `text` if it is a known interval, else raise IntervalError."""
    if text not in INTERVALS:
        raise IntervalError(f"unknown interval {text!r}; use one of {', '.join(INTERVALS)}")
    return text


def origin(interval: str) -> datetime:
    """The instant from which the buckets of `interval` are counted."""
    return WEEK_ORIGIN if interval == "1w" else EPOCH


def bucket_start_ms(epoch_ms: int, interval: str) -> int:
    """The open time (epoch ms) of the `interval` candle that contains `epoch_ms`."""
    length = INTERVALS[interval]
    offset = int((origin(interval) - EPOCH).total_seconds() * 1000)
    return (epoch_ms - offset) // length * length + offset


def from_ms(epoch_ms: int) -> datetime:
    """An exact UTC datetime for epoch milliseconds (no float rounding)."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def divides(coarse: str, fine: str) -> bool:
    """Whether every `coarse` bucket is a whole number of aligned `fine` buckets."""
    if INTERVALS[coarse] % INTERVALS[fine]:
        return False
    offset = int((origin(coarse) - origin(fine)).total_seconds() * 1000)
    return offset % INTERVALS[fine] == 0
