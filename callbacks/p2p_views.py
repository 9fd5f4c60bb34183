"""The P2P charts of the views (spread, depth, liquidity), built from db/p2p through the cache,
and why one is empty: no market configured, the feed silent, or the filters too narrow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app import state
from callbacks import common
from db import views
from db.p2p_query import NO_FILTER, OfferFilter
from ingest.p2p_normalise import MalformedAdvert, parse_decimal
from layouts.controls import BUCKETS, RANGES, market_keys, p2p_markets
from layouts.figures import (
    depth_figure,
    empty_figure,
    implied_columns,
    implied_figure,
    liquidity_figure,
    spread_figure,
)

MAX_BUCKETS = 1500
NO_MARKET = "Choose one or more P2P markets."
STALE_POLLS = 3


def offer_filter(amount: Any = None, payment: Sequence[str] | None = None,
                 merchant: bool = False, completion_pct: Any = None) -> OfferFilter:
    """The filter the controls describe (bad numbers count as not set)."""
    return OfferFilter(amount=_decimal(amount), payment=tuple(sorted(payment or ())),
                       merchant_only=bool(merchant),
                       min_completion=_fraction(completion_pct))


def _decimal(value: Any) -> Decimal | None:
    """A control's number, bounded before it is converted (ingest's parse_decimal: plain
    text, below 10^20); anything else, or a negative, is not set."""
    if value in (None, ""):
        return None
    try:
        number = parse_decimal(value, "amount")
    except MalformedAdvert:
        return None
    return number if number >= 0 else None


def _fraction(percent: Any) -> Decimal | None:
    number = _decimal(percent)
    return None if number is None or number > 100 else number / 100


def describe(filters: OfferFilter) -> str:
    """The active filters in words."""
    parts = []
    if filters.amount is not None:
        parts.append(f"amount {filters.amount:,f}")
    if filters.payment:
        parts.append("methods " + ", ".join(filters.payment))
    if filters.merchant_only:
        parts.append("merchants only")
    if filters.min_completion is not None:
        parts.append(f"completion ≥ {(filters.min_completion * 100).normalize():f} %")
    return "; ".join(parts)


def chosen(markets: Sequence[str] | None) -> list[str]:
    """The configured markets among those asked for, in order."""
    known = set(market_keys())
    return [market for market in markets or [] if market in known]


def fit_bucket(bucket: str, span_seconds: int) -> str:
    """The bucket itself, or the finest wider one that keeps a series under MAX_BUCKETS."""
    names = list(BUCKETS)
    start = names.index(bucket) if bucket in BUCKETS else 0
    for name in names[start:]:
        if span_seconds / BUCKETS[name] <= MAX_BUCKETS:
            return name
    return names[-1]


def silence_reason(market: str, span_seconds: int | None = None) -> str | None:
    """Why a market has no data in a window: never polled, or nothing since long ago."""
    latest = views.p2p_latest((market,)).get(market)
    if latest is None:
        return (f"No complete snapshot of {market} yet: the P2P feed has stored none (is "
                "ingestion running? See the Status page).")
    if span_seconds is not None and common.now_ms() - latest > span_seconds * 1000:
        return (f"The {market} feed looks down: its newest snapshot is from "
                f"{common.when(latest)} UTC, {common.age(latest)} ago, before this window.")
    return None


def stale_reason(market: str) -> str | None:
    """A warning when a market's newest snapshot is older than a few polls."""
    latest = views.p2p_latest((market,)).get(market)
    limit = STALE_POLLS * state.current().settings.p2p_poll_seconds * 1000
    if latest is None or common.now_ms() - latest <= limit:
        return None
    return f"{market}: the newest snapshot is {common.age(latest)} old; the feed may be down."


def narrow_reason(market: str, filters: OfferFilter) -> str:
    """What to say when the filters leave a market without adverts."""
    return f"No adverts of {market} match the filters ({describe(filters)}): widen them."


def _has_values(cols: dict[str, list[Any]]) -> bool:
    return any(value is not None for value in cols["best_ask"] + cols["best_bid"])


def spread_series(markets: list[str], bucket: str, span: int,
                  filters: OfferFilter) -> tuple[dict[str, Any], list[str]]:
    """Each market's history columns that have values, and notes for those that have none."""
    series, notes = {}, []
    for market in markets:
        cols = views.p2p_history(market, BUCKETS[bucket], span, filters)
        if _has_values(cols):
            series[market] = cols
            notes += filter(None, [stale_reason(market)])
            continue
        reason = silence_reason(market, span)
        notes.append(reason or (narrow_reason(market, filters) if filters.active
                                else f"No {market} snapshots in this window yet."))
    return series, notes


def spread_view(markets: list[str], bucket: str, range_key: str, filters: OfferFilter, *,
                tz: str, dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The spread figure and the notes above it."""
    if not p2p_markets():
        return empty_figure(common.NO_P2P, dark), [common.NO_P2P]
    if not markets:
        return empty_figure(NO_MARKET, dark), [NO_MARKET]
    span = RANGES[range_key]
    shown = fit_bucket(bucket, span)
    notes = [f"{bucket} buckets over {range_key} would be too many: showing {shown}."
             ] if shown != bucket else []
    series, reasons = spread_series(markets, shown, span, filters)
    notes += reasons
    if not series:
        return empty_figure(reasons[0], dark), notes
    revision = f"{','.join(markets)}|{shown}|{range_key}|{tz}"
    return spread_figure(series, tz=tz, dark=dark, revision=revision), notes


def parse_at(text: str | None, tz: str) -> int | None:
    """'YYYY-MM-DD HH:MM' in the viewer's zone as epoch ms; None when empty."""
    if not text or not text.strip():
        return None
    moment = datetime.fromisoformat(text.strip().replace("T", " "))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return int(moment.timestamp() * 1000)


def at_param(text: str | None, tz: str) -> str:
    """A depth time for the URL: in UTC with a Z, so a shared link means the same moment."""
    try:
        at_ms = parse_at(text, tz)
    except ValueError:
        return (text or "").strip()
    if at_ms is None:
        return ""
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def depth_view(market: str | None, at: str | None, unit: str | None, payment: list[str],
               merchant: bool, *, tz: str, dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The cumulative depth figure of a P2P market, and the notes above it."""
    if not p2p_markets():
        return empty_figure(common.NO_P2P, dark), [common.NO_P2P]
    if market not in market_keys():
        return empty_figure(NO_MARKET, dark), [NO_MARKET]
    try:
        at_ms = parse_at(at, tz)
    except ValueError:
        message = f"{at!r} is not a time like 2024-05-01 12:30 (empty: the latest)."
        return empty_figure(message, dark), [message]
    filters = offer_filter(payment=payment, merchant=merchant)
    book = views.p2p_depth(market, filters, at_ms)
    if not book["asks"] and not book["bids"]:
        reason = _empty_depth_reason(market, filters, at_ms)
        return empty_figure(reason, dark), [reason]
    notes = [f"Snapshot of {common.when(book['captured_at'], tz)} ({tz})."]
    notes += filter(None, [stale_reason(market) if at_ms is None else None])
    figure = depth_figure(book, unit=unit or "asset", dark=dark, revision=f"{market}|{unit}")
    return figure, notes


def _empty_depth_reason(market: str, filters: OfferFilter, at_ms: int | None) -> str:
    if filters.active and (views.p2p_depth(market, NO_FILTER, at_ms)["asks"]
                           or views.p2p_depth(market, NO_FILTER, at_ms)["bids"]):
        return narrow_reason(market, filters)
    if at_ms is not None and views.p2p_latest((market,)).get(market) is not None:
        return f"No complete snapshot of {market} at or before {common.when(at_ms)} UTC."
    return silence_reason(market) or f"No adverts of {market} in its newest snapshot."


def liquidity_series(market: str, bucket: str, span: int) -> dict[str, list[Any]]:
    """A market's history columns with its advertiser count per bucket."""
    cols = dict(views.p2p_history(market, BUCKETS[bucket], span))
    advertisers = views.p2p_advertisers(market, BUCKETS[bucket], span)
    cols["advertisers"] = [advertisers.get(t) for t in cols["t"]]
    return cols


def liquidity_view(markets: list[str], bucket: str, range_key: str, *, tz: str,
                   dark: bool) -> tuple[dict[str, Any], list[str]]:
    """The liquidity and counts figure of some P2P markets, and the notes above it."""
    if not p2p_markets():
        return empty_figure(common.NO_P2P, dark), [common.NO_P2P]
    markets = chosen(markets)
    if not markets:
        return empty_figure(NO_MARKET, dark), [NO_MARKET]
    span = RANGES[range_key]
    shown = fit_bucket(bucket, span)
    series, notes = {}, []
    for market in markets:
        cols = liquidity_series(market, shown, span)
        if _has_values(cols):
            series[market] = cols
        else:
            notes.append(silence_reason(market, span) or f"No {market} snapshots yet.")
    if not series:
        return empty_figure(notes[0], dark), notes
    revision = f"{','.join(markets)}|{shown}|{range_key}|{tz}"
    return liquidity_figure(series, tz=tz, dark=dark, revision=revision), notes


def implied_markets(fiat: str) -> tuple[str, str] | None:
    """P2P BTC/fiat and USDT/fiat markets of one exchange (the first that has both)."""
    keys = set(market_keys())
    for market in p2p_markets():
        btc, usdt = f"{market.exchange}:BTC/{fiat}", f"{market.exchange}:USDT/{fiat}"
        if btc in keys and usdt in keys:
            return btc, usdt
    return None


def implied_view(fiat: str | None, interval: str, range_key: str, *, tz: str,
                 dark: bool) -> tuple[dict[str, Any], list[str]]:
    """Implied USDT/fiat against P2P USDT/fiat with the premium, and the notes above it."""
    pair = implied_markets(fiat) if fiat else None
    if pair is None:
        message = (common.NO_P2P if not p2p_markets() else
                   "The implied rate needs P2P BTC and USDT markets of one fiat on one exchange "
                   "(e.g. binance:BTC/ARS and binance:USDT/ARS in P2P_MARKETS).")
        return empty_figure(message, dark), [message]
    if "BTCUSDT" not in state.current().settings.spot_symbols:
        message = "The implied rate needs spot BTCUSDT: add it to SPOT_SYMBOLS."
        return empty_figure(message, dark), [message]
    span, width = RANGES[range_key], views.interval_seconds(interval)
    btc, usdt = (views.p2p_history(key, width, span) for key in pair)
    rows = implied_columns(btc, usdt, views.candles("BTCUSDT", interval, span))
    if not rows["t"]:
        reasons = [reason for key in pair if (reason := silence_reason(key, span))]
        message = (reasons or [f"No {interval} bucket has P2P BTC/{fiat}, P2P USDT/{fiat} and "
                               "spot BTCUSDT together yet."])[0]
        return empty_figure(message, dark), [message]
    notes = [f"From {pair[0]}, {pair[1]} and spot BTCUSDT, {interval} buckets, mid prices."]
    figure = implied_figure(rows, fiat=fiat, tz=tz, dark=dark,
                            revision=f"{fiat}|{interval}|{range_key}|{tz}")
    return figure, notes
