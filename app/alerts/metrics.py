"""The metric registry: what a rule can watch. Adding a metric is one @metric function pair.

Each metric reads its current value for many subjects at once (`current`: one query per
metric and batch, never one per rule) and its past values for the preview (`series`). P2P
values follow DESIGN.md section 4 through db.p2p_query.metrics, the definition the views
use, so an alert's value is the number the Spread page shows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from app.config import P2PMarket
from db import alert_metrics as reads
from db.alert_model import Sample, Subject
from db.p2p_history import history
from db.p2p_query import PCT_PLACES, SideStats, metrics
from db.spot import book_series

SPOT_REFERENCE = "BTCUSDT"

Current = Callable[[Connection, Sequence[Subject], datetime], dict[Subject, Sample]]
Series = Callable[[Engine, Subject, datetime, datetime, timedelta], list[Sample]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its kind ("p2p", "spot", "feed"), the subject fields it needs,
    whether it takes offer filters or a window, and how to read it now and in the past."""

    name: str
    label: str
    unit: str
    kind: str
    needs: tuple[str, ...]
    current: Current
    series: Series
    filters: bool = False
    window: bool = False

    def markets(self, subject: Subject) -> set[str]:
        """The P2P markets whose new snapshots change this metric's value."""
        found = {subject.market, subject.other} - {None}
        if self.name == "p2p.premium_pct" and subject.market:
            found.add(btc_market(subject.market))
        return {str(market) for market in found}


METRICS: dict[str, Metric] = {}


def metric(name: str, label: str, unit: str, kind: str, needs: tuple[str, ...], *,
           series: Series, filters: bool = False,
           window: bool = False) -> Callable[[Current], Current]:
    """Register the decorated `current` function as metric `name`."""

    def register(current: Current) -> Current:
        METRICS[name] = Metric(name, label, unit, kind, needs, current, series, filters, window)
        return current

    return register


def market_of(key: str) -> P2PMarket:
    """'binance:USDT/ARS' as a market."""
    exchange, _, pair = key.partition(":")
    asset, _, fiat = pair.partition("/")
    return P2PMarket(exchange, asset, fiat)


def btc_market(key: str) -> str:
    """The BTC market of a USDT market's exchange and fiat (for the premium)."""
    market = market_of(key)
    return str(P2PMarket(market.exchange, "BTC", market.fiat))


def offers_of(key: str, subject: Subject) -> reads.OfferSubject:
    """The offers of market `key` that pass the subject's filters."""
    return reads.OfferSubject(market_of(key), subject.offer_filter)


def _book(sides: dict[str, reads.SideNow]) -> dict[str, Any]:
    """The view metrics (best_ask, spread_pct, ...) of both sides of a snapshot."""
    def stats(side: str) -> SideStats:
        found = sides.get(side)
        return SideStats() if found is None else SideStats(found.best, found.offers,
                                                           found.liquidity)
    return metrics(stats("ask"), stats("bid"))


def _newest(*sides: dict[str, reads.SideNow]) -> reads.SideNow:
    return max((side for found in sides for side in found.values()),
               key=lambda side: side.captured_at)


def _book_metric(key: str) -> tuple[Current, Series]:
    """current and series of one of the views' metrics of a market's book."""

    def current(connection: Connection, subjects: Sequence[Subject],
                now: datetime) -> dict[Subject, Sample]:
        wanted = {subject: offers_of(subject.market, subject) for subject in subjects}
        books = reads.p2p_sides(connection, list(wanted.values()))
        out = {}
        for subject, offers in wanted.items():
            sides = books.get(offers, {})
            value = _book(sides)[key] if sides else None
            if value is not None:
                newest = _newest(sides)
                out[subject] = Sample(value, newest.captured_at, newest.run_id)
        return out

    def series(engine: Engine, subject: Subject, start: datetime, end: datetime,
               width: timedelta) -> list[Sample]:
        market = market_of(subject.market)
        rows = history(engine, market.exchange, market.asset, market.fiat, start=start,
                       end=end, width=width, filters=subject.offer_filter)
        return [Sample(row[key], row["captured_at"]) for row in rows if row[key] is not None]

    return current, series


for _name, _key, _label, _unit in (
        ("p2p.best_ask", "best_ask", "best ask (lowest price you can buy at)", "fiat"),
        ("p2p.best_bid", "best_bid", "best bid (highest price you can sell at)", "fiat"),
        ("p2p.spread_pct", "spread_pct", "spread % of the mid", "%"),
        ("p2p.liquidity_ask", "ask_liquidity", "ask liquidity (asset units offered)", "asset"),
        ("p2p.liquidity_bid", "bid_liquidity", "bid liquidity (asset units wanted)", "asset")):
    _current, _series = _book_metric(_key)
    metric(_name, _label, _unit, "p2p", ("market",), series=_series, filters=True)(_current)


def _mid(book: dict[str, Any]) -> Decimal | None:
    if book["best_ask"] is None or book["best_bid"] is None:
        return None
    return (book["best_ask"] + book["best_bid"]) / 2


def premium(usdt: dict[str, Any], btc: dict[str, Any], btcusdt: Decimal | None) -> Decimal | None:
    """P2P USDT/fiat mid over the implied USDT/fiat (P2P BTC/fiat mid over spot BTCUSDT),
    minus 1, in % (the Candles page's premium)."""
    usdt_mid, btc_mid = _mid(usdt), _mid(btc)
    if usdt_mid is None or not btc_mid or not btcusdt:
        return None
    return ((usdt_mid * btcusdt / btc_mid - 1) * 100).quantize(PCT_PLACES)


def _premium_series(engine: Engine, subject: Subject, start: datetime, end: datetime,
                    width: timedelta) -> list[Sample]:
    usdt_market, btc = market_of(subject.market), market_of(btc_market(subject.market))
    rows = {market: {row["bucket"]: row for row in history(
        engine, market.exchange, market.asset, market.fiat, start=start, end=end, width=width,
        filters=subject.offer_filter)} for market in (usdt_market, btc)}
    closes = {bucket: close for bucket, _at, close in
              reads.close_series(engine, SPOT_REFERENCE, start, end, width)}
    out = []
    for bucket, usdt_row in sorted(rows[usdt_market].items()):
        btc_row = rows[btc].get(bucket)
        value = premium(usdt_row, btc_row, closes.get(bucket)) if btc_row else None
        if value is not None:
            out.append(Sample(value, max(usdt_row["captured_at"], btc_row["captured_at"])))
    return out


@metric("p2p.premium_pct", "P2P USDT premium over the implied rate (BTC P2P / BTCUSDT)",
        "%", "p2p", ("market",), series=_premium_series, filters=True)
def _premium_current(connection: Connection, subjects: Sequence[Subject],
                     now: datetime) -> dict[Subject, Sample]:
    pairs = {s: (offers_of(s.market, s), offers_of(btc_market(s.market), s)) for s in subjects}
    books = reads.p2p_sides(connection, [offers for pair in pairs.values() for offers in pair])
    spot = reads.spot_last(connection, [SPOT_REFERENCE]).get(SPOT_REFERENCE)
    out = {}
    for subject, (usdt, btc) in pairs.items():
        usdt_sides, btc_sides = books.get(usdt, {}), books.get(btc, {})
        if not usdt_sides or not btc_sides or spot is None:
            continue
        value = premium(_book(usdt_sides), _book(btc_sides), spot[1])
        if value is not None:
            newest = _newest(usdt_sides, btc_sides)
            out[subject] = Sample(value, newest.captured_at, newest.run_id)
    return out


def cross_spread(buy: dict[str, Any], sell: dict[str, Any]) -> Decimal | None:
    """Best bid of the sell market minus best ask of the buy market, in % of their mid:
    above 0, buying on one exchange and selling on the other pays (before fees)."""
    ask, bid = buy["best_ask"], sell["best_bid"]
    if ask is None or bid is None:
        return None
    return ((bid - ask) / ((ask + bid) / 2) * 100).quantize(PCT_PLACES)


def _cross_series(engine: Engine, subject: Subject, start: datetime, end: datetime,
                  width: timedelta) -> list[Sample]:
    rows = {}
    for key in (subject.market, subject.other):
        market = market_of(key)
        rows[key] = {row["bucket"]: row for row in history(
            engine, market.exchange, market.asset, market.fiat, start=start, end=end,
            width=width, filters=subject.offer_filter)}
    out = []
    for bucket, buy in sorted(rows[subject.market].items()):
        sell = rows[subject.other].get(bucket)
        value = cross_spread(buy, sell) if sell else None
        if value is not None:
            out.append(Sample(value, max(buy["captured_at"], sell["captured_at"])))
    return out


@metric("p2p.cross_spread_pct", "cross-exchange spread % (bid on other minus ask on market)",
        "%", "p2p", ("market", "other"), series=_cross_series, filters=True)
def _cross_current(connection: Connection, subjects: Sequence[Subject],
                   now: datetime) -> dict[Subject, Sample]:
    pairs = {s: (offers_of(s.market, s), offers_of(s.other, s)) for s in subjects}
    books = reads.p2p_sides(connection, [offers for pair in pairs.values() for offers in pair])
    out = {}
    for subject, (buy, sell) in pairs.items():
        buy_sides, sell_sides = books.get(buy, {}), books.get(sell, {})
        if not buy_sides or not sell_sides:
            continue
        value = cross_spread(_book(buy_sides), _book(sell_sides))
        if value is not None:
            newest = _newest(buy_sides, sell_sides)
            out[subject] = Sample(value, newest.captured_at, newest.run_id)
    return out


def _close_samples(engine: Engine, subject: Subject, start: datetime, end: datetime,
                   width: timedelta) -> list[Sample]:
    return [Sample(close, at) for _bucket, at, close in
            reads.close_series(engine, subject.symbol, start, end, width)]


@metric("spot.last", "last price", "quote", "spot", ("symbol",), series=_close_samples)
def _spot_last(connection: Connection, subjects: Sequence[Subject],
               now: datetime) -> dict[Subject, Sample]:
    last = reads.spot_last(connection, sorted({s.symbol for s in subjects}))
    return {s: Sample(last[s.symbol][1], last[s.symbol][0]) for s in subjects
            if s.symbol in last}


def change(value: Decimal, reference: Decimal | None) -> Decimal | None:
    """The change from `reference` to `value` in %."""
    if not reference:
        return None
    return ((value - reference) / reference * 100).quantize(PCT_PLACES)


def _change_series(engine: Engine, subject: Subject, start: datetime, end: datetime,
                   width: timedelta) -> list[Sample]:
    window = timedelta(seconds=subject.window_seconds or 86400)
    closes = reads.close_series(engine, subject.symbol, start - window, end, width)
    times = [at for _bucket, at, _close in closes]
    out = []
    for _bucket, at, close in closes:
        if at < start:
            continue
        index = bisect.bisect_right(times, at - window) - 1
        value = change(close, closes[index][2]) if index >= 0 else None
        if value is not None:
            out.append(Sample(value, at))
    return out


@metric("spot.change_pct", "change % over a window", "%", "spot", ("symbol", "window_seconds"),
        series=_change_series, window=True)
def _spot_change(connection: Connection, subjects: Sequence[Subject],
                 now: datetime) -> dict[Subject, Sample]:
    symbols = sorted({s.symbol for s in subjects})
    last = reads.spot_last(connection, symbols)
    out = {}
    for window in {s.window_seconds for s in subjects}:
        then = reads.spot_closes_at(connection, symbols, now - timedelta(seconds=window))
        for subject in subjects:
            if subject.window_seconds != window or subject.symbol not in last:
                continue
            at, value = last[subject.symbol]
            reference = then.get(subject.symbol)
            moved = change(value, reference[1]) if reference else None
            if moved is not None:
                out[subject] = Sample(moved, at)
    return out


def book_spread_bps(bid: Decimal, ask: Decimal) -> Decimal | None:
    """The book's spread in basis points of its mid."""
    mid = (bid + ask) / 2
    return ((ask - bid) / mid * 10000).quantize(Decimal("0.0001")) if mid else None


def _book_spread_series(engine: Engine, subject: Subject, start: datetime, end: datetime,
                        width: timedelta) -> list[Sample]:
    rows = book_series(engine, subject.symbol, start, end, width)
    return [Sample(value, row["ts"]) for row in rows
            if (value := book_spread_bps(row["bid"], row["ask"])) is not None]


@metric("spot.book_spread_bps", "book spread in basis points", "bps", "spot", ("symbol",),
        series=_book_spread_series)
def _spot_book_spread(connection: Connection, subjects: Sequence[Subject],
                      now: datetime) -> dict[Subject, Sample]:
    books = reads.spot_books(connection, sorted({s.symbol for s in subjects}))
    out = {}
    for subject in subjects:
        if subject.symbol in books:
            at, bid, ask = books[subject.symbol]
            value = book_spread_bps(bid, ask)
            if value is not None:
                out[subject] = Sample(value, at)
    return out


def age(now: datetime, at: datetime) -> Decimal:
    """Seconds from `at` to `now`, to a tenth."""
    return Decimal(str(round(max(0.0, (now - at).total_seconds()), 1)))


def _feed_series(engine: Engine, subject: Subject, start: datetime, end: datetime,
                 width: timedelta) -> list[Sample]:
    """The feed's age at the end of every bucket: the time since the newest data then."""
    if subject.market:
        market = market_of(subject.market)
        times = [row["captured_at"] for row in history(
            engine, market.exchange, market.asset, market.fiat, start=start, end=end,
            width=width)]
    else:
        times = [row["ts"] for row in book_series(engine, subject.symbol, start, end, width)]
    out, newest, index = [], None, 0
    moment = start + width
    while moment <= end:
        while index < len(times) and times[index] <= moment:
            newest, index = times[index], index + 1
        if newest is not None:
            out.append(Sample(age(moment, newest), moment))
        moment += width
    return out


@metric("feed.age_seconds", "age of the newest data (a feed gone silent)", "s", "feed",
        ("market|symbol",), series=_feed_series)
def _feed_age(connection: Connection, subjects: Sequence[Subject],
              now: datetime) -> dict[Subject, Sample]:
    markets = reads.market_times(connection, sorted({market_of(s.market) for s in subjects
                                                     if s.market}, key=str))
    symbols = reads.symbol_times(connection, sorted({s.symbol for s in subjects if s.symbol}))
    out = {}
    for subject in subjects:
        if subject.market and market_of(subject.market) in markets:
            at, run_id = markets[market_of(subject.market)]
            out[subject] = Sample(age(now, at), now, run_id)
        elif subject.symbol in symbols:
            out[subject] = Sample(age(now, symbols[subject.symbol]), now)
    return out
