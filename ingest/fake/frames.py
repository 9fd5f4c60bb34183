"""Binance spot payloads, in Binance's exact field order and number format, from the market."""

from __future__ import annotations

import threading
from collections import deque
from decimal import Decimal
from typing import Any

import orjson

from db.intervals import INTERVALS, MINUTE_MS, bucket_start_ms
from ingest.fake.market import DAY_MINUTES, Candle, SimulatedMarket, instrument

QUOTES = ("USDT", "BUSD", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL")


def combined(stream: str, data: dict[str, Any]) -> str:
    """Wrap an event the way /stream?streams=... delivers it."""
    return orjson.dumps({"stream": stream, "data": data}).decode()


def kline_event(symbol: str, candle: Candle, closed: bool, event_ms: int) -> dict[str, Any]:
    """A kline_1m event for a candle as it stands."""
    ins = instrument(symbol)
    return {"e": "kline", "E": event_ms, "s": symbol, "k": {
        "t": candle.open_ms, "T": candle.close_ms, "s": symbol, "i": "1m",
        "f": candle.first_id, "L": candle.last_id, "o": ins.price(candle.open),
        "c": ins.price(candle.close), "h": ins.price(candle.high), "l": ins.price(candle.low),
        "v": ins.qty(candle.volume), "n": candle.trades, "x": closed,
        "q": ins.quote(candle.quote), "V": ins.qty(candle.taker_base),
        "Q": ins.quote(candle.taker_quote), "B": "0"}}


def kline_row(symbol: str, candle: Candle) -> list[Any]:
    """A GET /api/v3/klines row."""
    ins = instrument(symbol)
    return [candle.open_ms, ins.price(candle.open), ins.price(candle.high),
            ins.price(candle.low), ins.price(candle.close), ins.qty(candle.volume),
            candle.close_ms, ins.quote(candle.quote), candle.trades, ins.qty(candle.taker_base),
            ins.quote(candle.taker_quote), "0"]


class MarketFrames:
    """Live events and REST rows of a simulated market, with the small state they need."""

    def __init__(self, market: SimulatedMarket) -> None:
        self.market = market
        self._update_id = 1_000_000
        self._windows: dict[str, _Rolling] = {}
        self._prices: dict[str, tuple[int, int]] = {}  # symbol -> (tenth of a second, price)
        self._lock = threading.Lock()

    def _next_update_id(self) -> int:
        with self._lock:
            self._update_id += 1
            return self._update_id

    def book_ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """A bookTicker event around the last price (spot sends no event time)."""
        ins = instrument(symbol)
        update_id = self._next_update_id()
        last = self._last_price(symbol, now_ms)
        bid = max(1, last - update_id % 2)
        ask = bid + 1 + update_id % 3
        qty = 10 ** ins.qty_decimals
        return {"u": update_id, "s": symbol, "b": ins.price(bid),
                "B": ins.qty(qty * (1 + update_id % 7) // 3),
                "a": ins.price(ask), "A": ins.qty(qty * (1 + update_id % 5) // 2)}

    def _last_price(self, symbol: str, now_ms: int) -> int:
        """The last price, worked out at most ten times a second (book tickers are many)."""
        tenth = now_ms // 100
        cached = self._prices.get(symbol)
        if cached is None or cached[0] != tenth:
            cached = (tenth, self.market.price_at(symbol, now_ms))
            self._prices[symbol] = cached
        return cached[1]

    def ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """A 24hrTicker event over the last 24 hours up to now."""
        ins = instrument(symbol)
        day = self._last_day(symbol, now_ms // MINUTE_MS)
        day.add(self.market.live_candle(symbol, now_ms))
        before = self.market.candle(symbol, now_ms // MINUTE_MS - DAY_MINUTES - 1).close
        book = self.book_ticker(symbol, now_ms)
        change = day.close - day.open
        percent = (Decimal(change) * 100 / Decimal(day.open)).quantize(Decimal("0.001"))
        average = day.quote // day.volume if day.volume else day.close
        return {"e": "24hrTicker", "E": now_ms, "s": symbol, "p": ins.price(change),
                "P": str(percent), "w": ins.price(average), "x": ins.price(before),
                "c": ins.price(day.close), "Q": ins.qty(10 ** ins.qty_decimals // 100),
                "b": book["b"], "B": book["B"], "a": book["a"], "A": book["A"],
                "o": ins.price(day.open), "h": ins.price(day.high), "l": ins.price(day.low),
                "v": ins.qty(day.volume), "q": ins.quote(day.quote),
                "O": now_ms - 86_400_000, "C": now_ms, "F": day.first_id, "L": day.last_id,
                "n": day.trades}

    def _last_day(self, symbol: str, minute: int) -> Candle:
        """The 24 hours of closed minutes before `minute`, rolled forward minute by minute."""
        with self._lock:
            rolling = self._windows.get(symbol)
            if rolling is None or not 0 <= minute - rolling.end <= 5:
                rolling = _Rolling(self.market, symbol, minute)
                self._windows[symbol] = rolling
            rolling.advance(minute)
            return rolling.total()

    def klines(self, symbol: str, interval: str, opens: range, now_ms: int) -> list[list[Any]]:
        """REST rows for the candles opening at `opens` (the last one may still be open)."""
        return [kline_row(symbol, self.candle(symbol, interval, open_ms, now_ms))
                for open_ms in opens]

    def candle(self, symbol: str, interval: str, open_ms: int, now_ms: int) -> Candle:
        """One candle of any interval, as it stands at `now_ms`."""
        first = open_ms // MINUTE_MS
        last = min((open_ms + INTERVALS[interval]) // MINUTE_MS, now_ms // MINUTE_MS) - 1
        if last < first:
            candle = self.market.live_candle(symbol, now_ms)
        else:
            candle = self.market.window(symbol, first, last)
            if now_ms < open_ms + INTERVALS[interval]:
                candle.add(self.market.live_candle(symbol, now_ms))
        candle.open_ms, candle.close_ms = open_ms, open_ms + INTERVALS[interval] - 1
        return candle


class _Rolling:
    """A day of 1m candles with running sums: one candle in and one out per minute."""

    def __init__(self, market: SimulatedMarket, symbol: str, end: int) -> None:
        self.market, self.symbol, self.end = market, symbol, end
        self.candles = deque(market.candle(symbol, m) for m in range(end - DAY_MINUTES, end))
        self.sums = [sum(getattr(c, name) for c in self.candles) for name in _SUMMED]

    def advance(self, end: int) -> None:
        while self.end < end:
            leaving, arriving = self.candles.popleft(), self.market.candle(self.symbol, self.end)
            self.candles.append(arriving)
            self.sums = [total - getattr(leaving, name) + getattr(arriving, name)
                         for total, name in zip(self.sums, _SUMMED, strict=True)]
            self.end += 1

    def total(self) -> Candle:
        first, last = self.candles[0], self.candles[-1]
        with_trades = [c for c in (first, last) if c.trades]
        candle = Candle(first.open_ms, last.close_ms, first.open,
                        max(c.high for c in self.candles), min(c.low for c in self.candles),
                        last.close, *self.sums)
        candle.first_id = with_trades[0].first_id if with_trades else -1
        candle.last_id = last.last_id
        return candle


_SUMMED = ("volume", "quote", "trades", "taker_base", "taker_quote")


def select_opens(interval: str, start: int | None, end: int | None, limit: int,
                 now_ms: int) -> range:
    """Open times GET /api/v3/klines answers for these parameters (never past now)."""
    length = INTERVALS[interval]
    current = bucket_start_ms(now_ms, interval)
    last = current if end is None else min(current, bucket_start_ms(end, interval))
    if start is None:
        return range(max(0, last - (limit - 1) * length), last + 1, length)
    first = bucket_start_ms(start, interval)
    first += length if first < start else 0
    return range(first, min(last, first + (limit - 1) * length) + 1, length)


def exchange_info(symbols: list[str], now_ms: int, weight_limit: int) -> dict[str, Any]:
    """An exchangeInfo document for simulated symbols, shaped like Binance's."""
    return {"timezone": "UTC", "serverTime": now_ms, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": weight_limit},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
         "limit": 61000}], "exchangeFilters": [], "symbols": [_symbol_info(s) for s in symbols]}


def _symbol_info(symbol: str) -> dict[str, Any]:
    ins = instrument(symbol)
    quote = next((q for q in QUOTES if symbol.endswith(q) and symbol != q), symbol[-4:])
    tick = ins.price(1)
    step = ins.qty(1)
    return {"symbol": symbol, "status": "TRADING", "baseAsset": symbol[:-len(quote)],
            "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000",
                 "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000",
                 "stepSize": step}],
            "permissions": ["SPOT"]}
