"""Set-based reads behind the alert metrics: one query per metric and batch of subjects.

- p2p_sides: best price, liquidity and offer count of both sides of the latest complete
  snapshots of many (market, filters) subjects, with the run that stored each snapshot.
  Unfiltered subjects read the aggregates stored with the snapshot; filtered ones count the
  snapshot's offers with the same conditions as the views (db.p2p_query.offer_conditions).
- spot_last, spot_books, spot_closes_at: the newest 24h ticker, book ticker, and the close
  of the 1m candle current at a moment, for many symbols.
- feed_times: the newest data time of P2P markets and spot symbols.
- close_series: a symbol's last 1m close per bucket (the preview of spot metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, DateTime, Engine, Integer, Numeric, Text, bindparam
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY

from db.markets import P2PMarket
from db.p2p_query import NO_FILTER, OfferFilter


@dataclass(frozen=True)
class SideNow:
    """One side of a subject's latest complete snapshot: best price, liquidity, offers."""

    best: Decimal | None
    liquidity: Decimal | None
    offers: int
    captured_at: datetime
    run_id: int


@dataclass(frozen=True)
class OfferSubject:
    """A market and the offers that count, as p2p_sides takes them."""

    market: P2PMarket
    filters: OfferFilter = NO_FILTER


P2P_SIDES = sql("""
WITH s AS (
    SELECT * FROM unnest(:ids, :exchanges, :assets, :fiats, :amounts, :payments, :merchants,
                         :completions, :filtered)
        AS s (id, exchange, asset, fiat, amount, payments, merchant_only, min_completion,
              filtered)
)
SELECT s.id, sd.side, l.captured_at, l.run_id,
       CASE WHEN s.filtered THEN f.best ELSE l.best_price END AS best,
       CASE WHEN s.filtered THEN f.liquidity ELSE l.liquidity END AS liquidity,
       CASE WHEN s.filtered THEN f.offers ELSE l.offers END AS offers
FROM s
CROSS JOIN (VALUES ('ask'), ('bid')) AS sd (side)
CROSS JOIN LATERAL (
    SELECT captured_at, run_id, best_price, liquidity, offers FROM p2p_snapshots
    WHERE exchange = s.exchange AND asset = s.asset AND fiat = s.fiat AND side = sd.side
      AND complete AND (CAST(:at AS timestamptz) IS NULL OR captured_at <= :at)
    ORDER BY captured_at DESC LIMIT 1) AS l
LEFT JOIN LATERAL (
    SELECT CASE WHEN sd.side = 'ask' THEN min(o.price) ELSE max(o.price) END AS best,
           sum(o.available) AS liquidity, count(*) AS offers
    FROM p2p_offers o
    WHERE s.filtered AND o.exchange = s.exchange AND o.asset = s.asset AND o.fiat = s.fiat
      AND o.side = sd.side AND o.captured_at = l.captured_at
      AND (s.amount IS NULL OR (coalesce(o.min_fiat, 0) <= s.amount
                                AND (o.max_fiat IS NULL OR o.max_fiat >= s.amount)))
      AND (s.payments IS NULL OR o.payment_methods && ARRAY(
            SELECT identifier FROM payment_methods pm
            WHERE pm.exchange = s.exchange
              AND pm.canonical = ANY (string_to_array(s.payments, ','))))
      AND (NOT s.merchant_only OR o.is_merchant)
      AND (s.min_completion IS NULL OR o.month_finish_rate >= s.min_completion)
) AS f ON true
""").bindparams(
    bindparam("ids", type_=ARRAY(Integer)), bindparam("exchanges", type_=ARRAY(Text)),
    bindparam("assets", type_=ARRAY(Text)), bindparam("fiats", type_=ARRAY(Text)),
    bindparam("amounts", type_=ARRAY(Numeric)), bindparam("payments", type_=ARRAY(Text)),
    bindparam("merchants", type_=ARRAY(Boolean)), bindparam("completions", type_=ARRAY(Numeric)),
    bindparam("filtered", type_=ARRAY(Boolean)), bindparam("at", type_=DateTime(timezone=True)))


def p2p_sides(connection: Connection, subjects: Sequence[OfferSubject],
              at: datetime | None = None) -> dict[OfferSubject, dict[str, SideNow]]:
    """Both sides of each subject's latest complete snapshots (at or before `at`)."""
    unique = list(dict.fromkeys(subjects))
    if not unique:
        return {}
    params: dict[str, Any] = {
        "ids": list(range(len(unique))),
        "exchanges": [s.market.exchange for s in unique],
        "assets": [s.market.asset for s in unique], "fiats": [s.market.fiat for s in unique],
        "amounts": [s.filters.amount for s in unique],
        "payments": [",".join(s.filters.payment) or None for s in unique],
        "merchants": [s.filters.merchant_only for s in unique],
        "completions": [s.filters.min_completion for s in unique],
        "filtered": [s.filters.active for s in unique], "at": at}
    out: dict[OfferSubject, dict[str, SideNow]] = {subject: {} for subject in unique}
    for row in connection.execute(P2P_SIDES, params):
        out[unique[row.id]][row.side] = SideNow(
            row.best, row.liquidity if row.offers else None, row.offers or 0,
            row.captured_at, row.run_id)
    return out


_SYMBOLS = bindparam("symbols", type_=ARRAY(Text))

SPOT_LAST = sql("""
SELECT s.symbol, t.ts, t.last FROM unnest(:symbols) AS s (symbol)
CROSS JOIN LATERAL (SELECT ts, last FROM tickers_24h
                    WHERE exchange = :exchange AND symbol = s.symbol
                    ORDER BY ts DESC LIMIT 1) AS t
""").bindparams(_SYMBOLS)

SPOT_BOOKS = sql("""
SELECT s.symbol, b.ts, b.bid, b.ask FROM unnest(:symbols) AS s (symbol)
CROSS JOIN LATERAL (SELECT ts, bid, ask FROM book_tickers
                    WHERE exchange = :exchange AND symbol = s.symbol
                    ORDER BY ts DESC LIMIT 1) AS b
""").bindparams(_SYMBOLS)

CLOSES_AT = sql("""
SELECT s.symbol, c.open_time, c.close FROM unnest(:symbols) AS s (symbol)
CROSS JOIN LATERAL (SELECT open_time, close FROM candles_all
                    WHERE exchange = :exchange AND symbol = s.symbol AND interval = '1m'
                      AND open_time <= :at
                      AND open_time > CAST(:at AS timestamptz) - interval '1 day'
                    ORDER BY open_time DESC LIMIT 1) AS c
""").bindparams(_SYMBOLS, bindparam("at", type_=DateTime(timezone=True)))


def spot_last(connection: Connection, symbols: Sequence[str],
              exchange: str = "binance") -> dict[str, tuple[datetime, Decimal]]:
    """The newest 24h ticker's time and last price of each symbol that has one."""
    rows = connection.execute(SPOT_LAST, {"symbols": list(symbols), "exchange": exchange})
    return {row.symbol: (row.ts, row.last) for row in rows}


def spot_books(connection: Connection, symbols: Sequence[str],
               exchange: str = "binance") -> dict[str, tuple[datetime, Decimal, Decimal]]:
    """The newest book ticker's time, bid and ask of each symbol that has one."""
    rows = connection.execute(SPOT_BOOKS, {"symbols": list(symbols), "exchange": exchange})
    return {row.symbol: (row.ts, row.bid, row.ask) for row in rows}


def spot_closes_at(connection: Connection, symbols: Sequence[str], at: datetime,
                   exchange: str = "binance") -> dict[str, tuple[datetime, Decimal]]:
    """The close of the 1m candle that was current at `at` (within a day before it)."""
    rows = connection.execute(CLOSES_AT, {"symbols": list(symbols), "exchange": exchange,
                                          "at": at})
    return {row.symbol: (row.open_time, row.close) for row in rows}


FEED_MARKETS = sql("""
SELECT m.exchange, m.asset, m.fiat, l.captured_at, l.run_id
FROM unnest(:exchanges, :assets, :fiats) AS m (exchange, asset, fiat)
CROSS JOIN LATERAL (SELECT captured_at, run_id FROM p2p_snapshots
                    WHERE exchange = m.exchange AND asset = m.asset AND fiat = m.fiat
                      AND complete
                    ORDER BY captured_at DESC LIMIT 1) AS l
""").bindparams(bindparam("exchanges", type_=ARRAY(Text)),
                bindparam("assets", type_=ARRAY(Text)), bindparam("fiats", type_=ARRAY(Text)))

FEED_SYMBOLS = sql("""
SELECT s.symbol, greatest(
    (SELECT max(ts) FROM (SELECT ts FROM book_tickers WHERE exchange = :exchange
                          AND symbol = s.symbol ORDER BY ts DESC LIMIT 1) b),
    (SELECT max(ts) FROM (SELECT ts FROM tickers_24h WHERE exchange = :exchange
                          AND symbol = s.symbol ORDER BY ts DESC LIMIT 1) t)) AS ts
FROM unnest(:symbols) AS s (symbol)
""").bindparams(_SYMBOLS)


def market_times(connection: Connection, markets: Sequence[P2PMarket]
                 ) -> dict[P2PMarket, tuple[datetime, int]]:
    """The newest complete snapshot's time and run of each market."""
    if not markets:
        return {}
    rows = connection.execute(FEED_MARKETS, {
        "exchanges": [m.exchange for m in markets], "assets": [m.asset for m in markets],
        "fiats": [m.fiat for m in markets]})
    return {P2PMarket(r.exchange, r.asset, r.fiat): (r.captured_at, r.run_id) for r in rows}


def symbol_times(connection: Connection, symbols: Sequence[str],
                 exchange: str = "binance") -> dict[str, datetime]:
    """The newest book ticker or 24h ticker time of each symbol."""
    if not symbols:
        return {}
    rows = connection.execute(FEED_SYMBOLS, {"symbols": list(symbols), "exchange": exchange})
    return {row.symbol: row.ts for row in rows if row.ts is not None}


CLOSE_SERIES = sql("""
SELECT DISTINCT ON (bucket) bucket, open_time, close FROM (
    SELECT date_bin(:width, open_time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
           open_time, close
    FROM candles_all
    WHERE exchange = :exchange AND symbol = :symbol AND interval = '1m'
      AND open_time >= :start AND open_time < :end) AS c
ORDER BY bucket, open_time DESC
""").bindparams(bindparam("start", type_=DateTime(timezone=True)),
                bindparam("end", type_=DateTime(timezone=True)))


def close_series(engine: Engine, symbol: str, start: datetime, end: datetime,
                 width: timedelta, *, exchange: str = "binance"
                 ) -> list[tuple[datetime, datetime, Decimal]]:
    """The last 1m close of each bucket of `width` in [start, end): (bucket, open time,
    close), buckets aligned as time_bucket aligns them."""
    with engine.connect() as connection:
        rows = connection.execute(CLOSE_SERIES, {"width": width, "exchange": exchange,
                                                 "symbol": symbol, "start": start, "end": end})
        return [(row.bucket, row.open_time, row.close) for row in rows]
