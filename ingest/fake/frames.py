"""Binance spot payloads, in Binance's exact field order and number format, from the market.

Stream frames are rendered from per-symbol templates: a symbol's live minute (its trade
groups revealed as the minute goes on) is worked out once a minute, the strings of each of
its states once, and a frame is then one f-string with the event time and update id put in.
The 24h ticker rolls a day window forward a minute at a time (ingest/fake/rolling.py).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from db.intervals import INTERVALS, MINUTE_MS, bucket_start_ms
from ingest.fake.market import (
    Candle,
    SimulatedMarket,
    from_trades,
    instrument,
    row_candle,
    row_trades,
    rows_candle,
)
from ingest.fake.rolling import DayWindow

QUOTES = ("USDT", "BUSD", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL")
DAY_MS = 86_400_000
BULK_MINUTES = 20_000  # REST ranges up to this many minutes are worked out in one go


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


def _tail(text: str) -> str:
    """What follows the event time in a frame rendered with E=0 (E is the first number)."""
    return text[text.index(',"E":0') + len(',"E":0'):]


@dataclass
class _Minute:
    """A symbol's minute: its trade groups' offsets and the candle after each of them."""

    minute: int
    previous: Candle  # the full candle of the minute before
    offsets: list[int]
    states: list[Candle]  # states[n]: the candle after n trade groups
    klines: dict[int, str] = field(default_factory=dict)  # n -> frame after E
    tickers: dict[int, tuple[str, str, str]] = field(default_factory=dict)


@dataclass
class _Symbol:
    """One symbol's fixed strings, its live minute, and its 24 hours."""

    symbol: str
    kline_head: str
    ticker_head: str
    book_head: str
    book_symbol: str
    bid_qty: tuple[str, ...]
    ask_qty: tuple[str, ...]
    live: _Minute | None = None
    prices: tuple[int, tuple[str, ...]] = (-1, ())  # last price -> strings last-1..last+3
    window: DayWindow | None = None

    @classmethod
    def named(cls, symbol: str) -> _Symbol:
        ins, lower = instrument(symbol), symbol.lower()
        lot = 10 ** ins.qty_decimals
        return cls(symbol, f'{{"stream":"{lower}@kline_1m","data":{{"e":"kline","E":',
                   f'{{"stream":"{lower}@ticker","data":{{"e":"24hrTicker","E":',
                   f'{{"stream":"{lower}@bookTicker","data":{{"u":', f',"s":"{symbol}","b":"',
                   tuple(ins.qty(lot * (1 + n) // 3) for n in range(7)),
                   tuple(ins.qty(lot * (1 + n) // 2) for n in range(5)))


class MarketFrames:
    """Live frames and REST rows of a simulated market, with the small state they need."""

    def __init__(self, market: SimulatedMarket) -> None:
        self.market = market
        self._update_ids = itertools.count(1_000_001)
        self._symbols: dict[str, _Symbol] = {}
        self._lock = threading.Lock()
        self.render = {"bookTicker": self.book_ticker_frame, "ticker": self.ticker_frame,
                       "kline_1m": self.kline_frame}

    def frame(self, symbol: str, kind: str, now_ms: int) -> str:
        """The frame of stream `symbol@kind` at `now_ms`."""
        return self.render[kind](symbol, now_ms)

    def prepare(self, symbols: Sequence[str], now_ms: int) -> None:
        """Work out each symbol's live minute and 24 hours before its first frame."""
        for symbol in symbols:
            self.ticker_frame(symbol, now_ms)

    # -- the live minute ---------------------------------------------------------------

    def _live(self, symbol: str, now_ms: int) -> tuple[_Symbol, _Minute, int]:
        """The symbol, its live minute and how many trade groups it has shown at now_ms."""
        state = self._symbols.get(symbol) or self._symbols.setdefault(symbol,
                                                                       _Symbol.named(symbol))
        minute, offset = divmod(now_ms, MINUTE_MS)
        live = state.live
        if live is None or live.minute < minute:
            live = self._start_minute(state, minute)
        if live.minute > minute:  # another thread's clock read is a little ahead
            return state, live, 0
        return state, live, bisect.bisect_right(live.offsets, offset)

    def _start_minute(self, state: _Symbol, minute: int) -> _Minute:
        rows = self.market.rows(state.symbol, minute - 1, minute)
        previous, trades = row_candle(rows, 0), row_trades(rows, 1)
        open_ms, last = minute * MINUTE_MS, previous.close
        states = [Candle(open_ms, open_ms + MINUTE_MS - 1, last, last, last, last)]
        states += [from_trades(minute, trades[:n]) for n in range(1, len(trades) + 1)]
        live = _Minute(minute, previous, [t.offset_ms for t in trades], states)
        with self._lock:
            if state.live is None or state.live.minute < minute:
                state.live = live
            return state.live

    def minute_candle(self, symbol: str, minute: int) -> Candle:
        """The full 1m candle of a minute, from the live state when it is at hand."""
        state = self._symbols.get(symbol)
        live = state.live if state is not None else None
        if live is not None and live.minute == minute:
            return live.states[-1].copy()
        if live is not None and live.minute == minute + 1:
            return live.previous.copy()
        return self.market.candle(symbol, minute)

    def closing_kline(self, symbol: str, minute: int, now_ms: int) -> str:
        """The closing (x=true) kline frame of a minute that has ended."""
        return combined(f"{symbol.lower()}@kline_1m",
                        kline_event(symbol, self.minute_candle(symbol, minute), True, now_ms))

    # -- frames ------------------------------------------------------------------------

    def kline_frame(self, symbol: str, now_ms: int) -> str:
        """The kline_1m frame of the candle still open."""
        state, live, shown = self._live(symbol, now_ms)
        tail = live.klines.get(shown)
        if tail is None:
            event = kline_event(symbol, live.states[shown], False, 0)
            tail = live.klines[shown] = _tail(combined("s@kline_1m", event))
        return f"{state.kline_head}{now_ms}{tail}"

    def _book(self, state: _Symbol, last: int) -> tuple[int, str, str, str, str]:
        """A book around the last price: update id, bid, bid qty, ask, ask qty."""
        update_id = next(self._update_ids)
        cached, texts = state.prices
        if cached != last:
            ins = instrument(state.symbol)
            texts = tuple(ins.price(max(1, last + step)) for step in range(-1, 4))
            state.prices = (last, texts)
        bid = max(1, last - update_id % 2)
        ask = bid + 1 + update_id % 3
        return (update_id, texts[bid - last + 1], state.bid_qty[update_id % 7],
                texts[ask - last + 1], state.ask_qty[update_id % 5])

    def book_ticker_frame(self, symbol: str, now_ms: int) -> str:
        """A bookTicker frame around the last price (spot sends no event time)."""
        state, live, shown = self._live(symbol, now_ms)
        update_id, bid, bid_qty, ask, ask_qty = self._book(state, live.states[shown].close)
        return (f'{state.book_head}{update_id}{state.book_symbol}{bid}","B":"{bid_qty}",'
                f'"a":"{ask}","A":"{ask_qty}"}}}}')

    def ticker_frame(self, symbol: str, now_ms: int) -> str:
        """A 24hrTicker frame over the last 24 hours up to now."""
        state, live, shown = self._live(symbol, now_ms)
        parts = live.tickers.get(shown)
        if parts is None:
            parts = live.tickers[shown] = self._ticker_parts(state, live, shown)
        _, bid, bid_qty, ask, ask_qty = self._book(state, live.states[shown].close)
        return (f'{state.ticker_head}{now_ms}{parts[0]}{bid}","B":"{bid_qty}","a":"{ask}",'
                f'"A":"{ask_qty}{parts[1]}{now_ms - DAY_MS},"C":{now_ms}{parts[2]}')

    def _ticker_parts(self, state: _Symbol, live: _Minute, shown: int) -> tuple[str, str, str]:
        """A ticker's strings around its book and its times, for one live state."""
        with self._lock:
            if state.window is None:
                state.window = DayWindow(self.market, state.symbol, live.minute)
            state.window.advance(live.minute, live.previous)
            day = state.window.total(live.states[shown])
            before = state.window.before
        ins, change = instrument(state.symbol), day.close - day.open
        percent = (Decimal(change) * 100 / Decimal(day.open)).quantize(Decimal("0.001"))
        average = day.quote // day.volume if day.volume else day.close
        return (f',"s":"{state.symbol}","p":"{ins.price(change)}","P":"{percent}",'
                f'"w":"{ins.price(average)}","x":"{ins.price(before)}",'
                f'"c":"{ins.price(day.close)}","Q":"{ins.qty(10 ** ins.qty_decimals // 100)}",'
                f'"b":"',
                f'","o":"{ins.price(day.open)}","h":"{ins.price(day.high)}",'
                f'"l":"{ins.price(day.low)}","v":"{ins.qty(day.volume)}",'
                f'"q":"{ins.quote(day.quote)}","O":',
                f',"F":{day.first_id},"L":{day.last_id},"n":{day.trades}}}}}')

    # -- REST --------------------------------------------------------------------------

    def klines(self, symbol: str, interval: str, opens: range, now_ms: int) -> list[list[Any]]:
        """REST rows for the candles opening at `opens` (the last one may still be open)."""
        if not opens:
            return []
        length, now_minute = INTERVALS[interval] // MINUTE_MS, now_ms // MINUTE_MS
        first = opens[0] // MINUTE_MS
        last = min(opens[-1] // MINUTE_MS + length, now_minute) - 1
        if last < first or last - first > BULK_MINUTES:
            return [kline_row(symbol, self.candle(symbol, interval, open_ms, now_ms))
                    for open_ms in opens]
        rows = self.market.rows(symbol, first, last)
        result = []
        for open_ms in opens:
            start = open_ms // MINUTE_MS - first
            stop = min(start + length, now_minute - first)
            candle = rows_candle(rows.part(start, stop)) if stop > start else None
            result.append(kline_row(symbol, self._finish(symbol, interval, open_ms, now_ms,
                                                         candle)))
        return result

    def candle(self, symbol: str, interval: str, open_ms: int, now_ms: int) -> Candle:
        """One candle of any interval, as it stands at `now_ms`."""
        first = open_ms // MINUTE_MS
        last = min((open_ms + INTERVALS[interval]) // MINUTE_MS, now_ms // MINUTE_MS) - 1
        closed = self.market.window(symbol, first, last) if last >= first else None
        return self._finish(symbol, interval, open_ms, now_ms, closed)

    def _finish(self, symbol: str, interval: str, open_ms: int, now_ms: int,
                closed: Candle | None) -> Candle:
        """The closed minutes of a candle plus the live one when it is still open."""
        if closed is None:
            candle = self.market.live_candle(symbol, now_ms)
        else:
            candle = closed
            if now_ms < open_ms + INTERVALS[interval]:
                candle.add(self.market.live_candle(symbol, now_ms))
        candle.open_ms, candle.close_ms = open_ms, open_ms + INTERVALS[interval] - 1
        return candle


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
