"""What the pages read: the query functions of db/, memoized per arguments and time bucket.

Windows are given relative to now ("the last 86,400 seconds"), and `now` is the end of the
current cache bucket, so every screen asking within one bucket gets the same rows from one
query. Rows come back as columns of plain floats and epoch milliseconds, ready for the
figure builders and cheap to pickle into Redis.

A chart's history (candles, bid/ask, a P2P market's metrics and advertisers) is read in two
parts: the buckets that had settled (ended SETTLING ago) once a minute, and the recent ones
since then on every live bucket (`_settled_and_recent`). Two hundred screens of forty
symbols and markets asked for a day or a month of buckets again every five seconds, and
saturated the server with the same answers (bench/views_load.py); a settled bucket that
changes later (a gap repaired, a late snapshot) shows within a minute.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine

from db import p2p, p2p_adverts, spot
from db.cache import memoized
from db.candles import get_candles
from db.intervals import INTERVALS, from_ms, origin, to_ms
from db.markets import P2PMarket
from db.p2p_query import NO_FILTER, OfferFilter, latest_snapshots, reading

LIVE_SECONDS = 5
# The settled part of a chart is read once this often (each chart at its own second of the
# minute); a bucket is settled once it ended SETTLING ago (a candle's closing frame, a P2P
# snapshot pushed a little late, are in by then).
SETTLED_SECONDS = 60
SETTLING = timedelta(seconds=30)
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades")
TICKER_FIELDS = ("last", "open", "high", "low", "change_pct", "volume", "quote_volume",
                 "trades")


def number(value: Decimal | int | float | None) -> float | int | None:
    """A stored number as a float for charts (whole counts stay int, None stays None)."""
    if value is None or isinstance(value, int):
        return value
    return float(value)


def epoch_ms(moment: datetime | None) -> int | None:
    """An aware datetime as epoch milliseconds (None stays None)."""
    return None if moment is None else to_ms(moment)


def columns(rows: Iterable[Mapping[str, Any]], time_key: str,
            fields: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as columns: "t" (epoch ms of `time_key`) and one float list per field."""
    rows = list(rows)
    out: dict[str, list[Any]] = {"t": [epoch_ms(row[time_key]) for row in rows]}
    for name in fields:
        out[name] = [number(row[name]) for row in rows]
    return out


def break_gaps(cols: dict[str, list[Any]], width_ms: int) -> dict[str, list[Any]]:
    """The columns with a blank point after every gap wider than a bucket, so that a line
    chart breaks there instead of drawing across the time without data."""
    times = cols["t"]
    if all(later - earlier <= width_ms for earlier, later in pairwise(times)):
        return cols
    out: dict[str, list[Any]] = {name: [] for name in cols}
    for index, moment in enumerate(times):
        if index and moment - times[index - 1] > width_ms:
            for name in cols:
                out[name].append(times[index - 1] + width_ms if name == "t" else None)
        for name in cols:
            out[name].append(cols[name][index])
    return out


Columns = dict[str, list[Any]]
Settled = tuple[Columns, int]  # the settled buckets, and where the first unsettled starts (ms)
# P2P history buckets start from time_bucket's origin, Monday 2000-01-03 (db/p2p_history.py);
# spot book buckets from the epoch; candles from their interval's (db/intervals.py).
P2P_ORIGIN_MS = 946_857_600_000


def settled(cols: Columns, width_ms: int, wall: datetime, origin_ms: int = 0) -> Settled:
    """Of columns (by "t", epoch ms of each bucket, ascending), the buckets that had ended
    SETTLING before `wall`, and where the first bucket not settled starts (buckets of
    `width_ms` from `origin_ms`): the recent part starts there, however long ago the last
    row came. Columns, not rows: a day of 1m unpickles ten times faster."""
    cut = to_ms(wall - SETTLING)
    until = origin_ms + (cut - origin_ms) // width_ms * width_ms
    count = bisect_left(cols["t"], until)
    return {name: values[:count] for name, values in cols.items()}, until


# A reader of a chart's columns over [start, end), its series already chosen (a partial of
# one of the _*_columns below): both parts of a chart read through the same one.
Reader = Callable[..., Columns]


def _settled_and_recent(history: Settled, read: Reader, width_ms: int, span_seconds: int,
                        now: datetime) -> Columns:
    """The buckets over the last `span_seconds` before `now`: the settled ones from the
    bucket holding the start on, then `read` from the first unsettled bucket (all of the
    range, when that is later than its start)."""
    cols, until = history
    start = now - timedelta(seconds=span_seconds)
    if until <= to_ms(start):
        return read(start=start, end=now)
    first = bisect_right(cols["t"], to_ms(start) - width_ms)
    fresh = read(start=from_ms(until), end=now)
    return {name: values[first:] + fresh[name] for name, values in cols.items()}


def _settled_part(read: Reader, width_ms: int, span_seconds: int, now: datetime,
                  origin_ms: int = 0) -> Settled:
    """The settled part of `read` for the live ranges whose `now` falls in this bucket of
    SETTLED_SECONDS (so it starts that much earlier than the range)."""
    wall = datetime.now(UTC)
    start = now - timedelta(seconds=span_seconds + SETTLED_SECONDS)
    return settled(read(start=start, end=wall), width_ms, wall, origin_ms)


def _candle_columns(engine: Engine, symbol: str, interval: str, *, start: datetime,
                    end: datetime) -> Columns:
    rows = get_candles(engine, symbol, interval, start, end)
    out = columns((vars(candle) for candle in rows), "open_time", CANDLE_FIELDS)
    out["closed"] = [candle.is_closed for candle in rows]
    return out


@memoized(SETTLED_SECONDS, staggered=True, in_process=True)
def settled_candles(engine: Engine, symbol: str, interval: str, span_seconds: int, *,
                    now: datetime) -> Settled:
    """The settled candles of a chart over the last `span_seconds` (see the module)."""
    return _settled_part(partial(_candle_columns, engine, symbol, interval),
                         INTERVALS[interval], span_seconds, now, to_ms(origin(interval)))


@memoized(LIVE_SECONDS)
def candles(engine: Engine, symbol: str, interval: str, span_seconds: int, *,
            now: datetime) -> Columns:
    """Candles of `interval` over the last `span_seconds`, as columns."""
    return _settled_and_recent(settled_candles(symbol, interval, span_seconds),
                               partial(_candle_columns, engine, symbol, interval),
                               INTERVALS[interval], span_seconds, now)


BOOK_FIELDS = ("bid", "ask", "bid_qty", "ask_qty")


def _book_columns(engine: Engine, symbol: str, width_seconds: int, *, start: datetime,
                  end: datetime) -> Columns:
    rows = spot.book_series(engine, symbol, start, end, timedelta(seconds=width_seconds))
    return columns(rows, "bucket", BOOK_FIELDS)


@memoized(SETTLED_SECONDS, staggered=True, in_process=True)
def settled_book(engine: Engine, symbol: str, width_seconds: int, span_seconds: int, *,
                 now: datetime) -> Settled:
    """The settled buckets of a bid/ask series over the last `span_seconds`."""
    return _settled_part(partial(_book_columns, engine, symbol, width_seconds),
                         width_seconds * 1000, span_seconds, now)


@memoized(LIVE_SECONDS)
def book(engine: Engine, symbol: str, width_seconds: int, span_seconds: int, *,
         now: datetime) -> Columns:
    """The last best bid and ask of each bucket over the last `span_seconds`, as columns."""
    cols = _settled_and_recent(settled_book(symbol, width_seconds, span_seconds),
                               partial(_book_columns, engine, symbol, width_seconds),
                               width_seconds * 1000, span_seconds, now)
    return break_gaps(cols, width_seconds * 1000)


@memoized(LIVE_SECONDS)
def tickers(engine: Engine, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """The newest 24h ticker of each symbol, numbers as floats, time as epoch ms."""
    return [{"symbol": row["symbol"], "ts": epoch_ms(row["ts"]),
             **{name: number(row[name]) for name in TICKER_FIELDS}}
            for row in spot.latest_tickers(engine, symbols)]


@memoized(LIVE_SECONDS)
def spot_freshness(engine: Engine, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per symbol, epoch ms of its newest book ticker, 24h ticker and 1m candle."""
    return [{key: epoch_ms(value) if key != "symbol" else value for key, value in row.items()}
            for row in spot.latest_times(engine, symbols)]


def interval_seconds(interval: str) -> int:
    """The length of a candle interval in seconds."""
    return INTERVALS[interval] // 1000


# P2P: markets are named "exchange:ASSET/FIAT" (the P2P_MARKETS syntax); filters are
# db.p2p.OfferFilter values, so each filter combination is its own cache entry.
P2P_FIELDS = ("best_ask", "best_bid", "spread", "spread_pct", "ask_offers", "bid_offers",
              "ask_liquidity", "bid_liquidity")
LEVEL_FIELDS = ("price", "available", "offers", "cum_available", "cum_fiat")
ADVERT_NUMBERS = ("price", "available", "min_fiat", "max_fiat", "month_finish_rate")


def market_of(key: str) -> P2PMarket:
    """The market a key names ("binance:USDT/ARS")."""
    exchange, pair = key.split(":", 1)
    asset, fiat = pair.split("/", 1)
    return P2PMarket(exchange, asset, fiat)


@memoized(LIVE_SECONDS)
def p2p_summary(engine: Engine, market_key: str,
                filters: OfferFilter = NO_FILTER) -> dict[str, Any]:
    """A market's best prices, spread, counts and liquidity now (floats; time as epoch ms)."""
    market = market_of(market_key)
    row = p2p.summary(engine, market.exchange, market.asset, market.fiat, filters)
    return {"captured_at": epoch_ms(row["captured_at"]),
            **{name: number(row[name]) for name in P2P_FIELDS}}


def _p2p_columns(engine: Engine, market_key: str, width_seconds: int, filters: OfferFilter,
                 *, start: datetime, end: datetime) -> Columns:
    market = market_of(market_key)
    return _history_columns(p2p.history(
        engine, market.exchange, market.asset, market.fiat, start=start, end=end,
        width=timedelta(seconds=width_seconds), filters=filters))


@memoized(SETTLED_SECONDS, staggered=True, in_process=True)
def settled_p2p_history(engine: Engine, market_key: str, width_seconds: int,
                        span_seconds: int, filters: OfferFilter = NO_FILTER, *,
                        now: datetime) -> Settled:
    """The settled buckets of a market's history over the last `span_seconds`."""
    return _settled_part(partial(_p2p_columns, engine, market_key, width_seconds, filters),
                         width_seconds * 1000, span_seconds, now, P2P_ORIGIN_MS)


@memoized(LIVE_SECONDS)
def p2p_history(engine: Engine, market_key: str, width_seconds: int, span_seconds: int,
                filters: OfferFilter = NO_FILTER, *, now: datetime) -> Columns:
    """A market's metrics per bucket over the last `span_seconds`, as columns."""
    cols = _settled_and_recent(
        settled_p2p_history(market_key, width_seconds, span_seconds, filters),
        partial(_p2p_columns, engine, market_key, width_seconds, filters),
        width_seconds * 1000, span_seconds, now)
    return break_gaps(cols, width_seconds * 1000)


def _history_columns(rows: Sequence[Mapping[str, Any]]) -> Columns:
    out = columns(rows, "bucket", P2P_FIELDS)
    out["captured_at"] = [epoch_ms(row["captured_at"]) for row in rows]
    return out


def history_columns(rows: Sequence[Mapping[str, Any]], width_seconds: int) -> Columns:
    """History rows (db.p2p.history) as columns, broken over buckets without a snapshot."""
    return break_gaps(_history_columns(rows), width_seconds * 1000)


def _advertiser_columns(engine: Engine, market_key: str, width_seconds: int, *,
                        start: datetime, end: datetime) -> Columns:
    counts = p2p_adverts.advertiser_counts(engine, market_of(market_key), start=start,
                                           end=end, width=timedelta(seconds=width_seconds))
    ordered = sorted(counts.items())
    return {"t": [to_ms(bucket) for bucket, _ in ordered],
            "advertisers": [count for _, count in ordered]}


@memoized(SETTLED_SECONDS, staggered=True, in_process=True)
def settled_p2p_advertisers(engine: Engine, market_key: str, width_seconds: int,
                            span_seconds: int, *, now: datetime) -> Settled:
    """The settled buckets of a market's advertiser counts over the last `span_seconds`."""
    return _settled_part(partial(_advertiser_columns, engine, market_key, width_seconds),
                         width_seconds * 1000, span_seconds, now, P2P_ORIGIN_MS)


@memoized(LIVE_SECONDS)
def p2p_advertisers(engine: Engine, market_key: str, width_seconds: int, span_seconds: int, *,
                    now: datetime) -> dict[int, int]:
    """Distinct advertisers per bucket (epoch ms) over the last `span_seconds`."""
    cols = _settled_and_recent(settled_p2p_advertisers(market_key, width_seconds, span_seconds),
                               partial(_advertiser_columns, engine, market_key, width_seconds),
                               width_seconds * 1000, span_seconds, now)
    return dict(zip(cols["t"], cols["advertisers"], strict=True))


@memoized(LIVE_SECONDS)
def p2p_depth(engine: Engine, market_key: str, filters: OfferFilter = NO_FILTER,
              at_ms: int | None = None) -> dict[str, Any]:
    """Cumulative depth of the latest snapshot (at or before `at_ms`), levels as floats."""
    market = market_of(market_key)
    at = from_ms(at_ms) if at_ms is not None else None
    book = p2p.depth(engine, market.exchange, market.asset, market.fiat, filters, at=at)
    return {"asset": market.asset, "fiat": market.fiat,
            "captured_at": epoch_ms(book["captured_at"]),
            **{side: [{name: number(level[name]) for name in LEVEL_FIELDS}
                      for level in book[side]] for side in ("asks", "bids")}}


@memoized(LIVE_SECONDS)
def p2p_top_adverts(engine: Engine, market_key: str,
                    filters: OfferFilter = NO_FILTER) -> list[dict[str, Any]]:
    """The latest snapshot's adverts, numbers as floats, payment methods by name."""
    market = market_of(market_key)
    names = p2p_adverts.method_names(engine, market.exchange)
    return [{**row, **{name: number(row[name]) for name in ADVERT_NUMBERS},
             "payment_methods": [names.get(code, code) for code in row["payment_methods"]],
             "captured_at": epoch_ms(row["captured_at"])}
            for row in p2p_adverts.top_adverts(engine, market, filters)]


@memoized(LIVE_SECONDS)
def p2p_methods(engine: Engine, market_key: str,
                filters: OfferFilter = NO_FILTER) -> list[dict[str, Any]]:
    """Best prices and spread per payment method offered now (the other filters applied)."""
    market = market_of(market_key)
    rows = []
    for method in p2p_adverts.methods_present(engine, market):
        chosen = replace(filters, payment=(method,))
        row = p2p.summary(engine, market.exchange, market.asset, market.fiat, chosen)
        rows.append({"method": method, **{name: number(row[name]) for name in P2P_FIELDS}})
    return rows


@memoized(60)
def p2p_method_codes(engine: Engine, exchanges: tuple[str, ...]) -> list[str]:
    """Canonical payment method codes known for some exchanges (for filter choices)."""
    return p2p_adverts.canonical_methods(engine, exchanges)


@memoized(LIVE_SECONDS)
def p2p_latest(engine: Engine, market_keys: tuple[str, ...]) -> dict[str, int | None]:
    """Epoch ms of each market's newest complete snapshot (either side), or None."""
    out: dict[str, int | None] = {}
    with reading(engine) as connection:
        for key in market_keys:
            snapshots = latest_snapshots(connection, market_of(key))
            out[key] = epoch_ms(max(snapshots.values())) if snapshots else None
    return out


@memoized(LIVE_SECONDS)
def p2p_snapshot_run(engine: Engine, market_key: str, captured_at_ms: int) -> int | None:
    """The run that stored a market's snapshot taken at `captured_at_ms`."""
    return p2p_adverts.snapshot_run(engine, market_of(market_key), from_ms(captured_at_ms))


# The overview asks for every market and symbol at once: one cache entry each answer.
SLOW_SECONDS = 30
SPARK_SECONDS = 3600
DAY_SECONDS = 86400


@memoized(LIVE_SECONDS)
def p2p_summaries(engine: Engine, market_keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every market's summary now (unfiltered), by market, in one query."""
    markets = {key: market_of(key) for key in market_keys}
    found = p2p.summaries(engine, list(markets.values()))
    return {key: {"captured_at": epoch_ms(found[market]["captured_at"]),
                  **{name: number(found[market][name]) for name in P2P_FIELDS}}
            for key, market in markets.items()}


@memoized(SLOW_SECONDS)
def p2p_day_spreads(engine: Engine, market_keys: tuple[str, ...], *,
                    now: datetime) -> dict[str, dict[str, list[Any]]]:
    """Every market's spread % per hour over the last day: columns t and spread_pct (hours
    without a snapshot are left out)."""
    markets = {key: market_of(key) for key in market_keys}
    found = p2p.histories(engine, list(markets.values()),
                          start=now - timedelta(seconds=DAY_SECONDS), end=now,
                          width=timedelta(seconds=SPARK_SECONDS))
    out = {}
    for key, market in markets.items():
        cols = history_columns(found[market], SPARK_SECONDS)
        out[key] = {"t": cols["t"], "spread_pct": cols["spread_pct"]}
    return out


@memoized(SLOW_SECONDS)
def spot_day_closes(engine: Engine, symbols: tuple[str, ...], *,
                    now: datetime) -> dict[str, list[float | None]]:
    """Every symbol's hourly closes over the last day, from its 1m candles in one query (a
    symbol with none, say only 1h backfilled, through the candle aggregation)."""
    found = spot.last_closes(engine, symbols, now - timedelta(seconds=DAY_SECONDS), now,
                             timedelta(seconds=SPARK_SECONDS))
    return {symbol: [number(close) for close in found[symbol]]
            or candles.uncached(engine, symbol, "1h", DAY_SECONDS, now=now)["close"]
            for symbol in symbols}
