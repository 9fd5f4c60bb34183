"""The charts' Download menus: export links (app/exports.py) that follow each page's controls.

A link carries the page's market or symbol, its filters (the completion control is a
percent, the export takes a fraction) and a range covering the whole chosen window, widened
to whole buckets at both ends: the file holds every bucket the range spans, not only the
points drawn. The live tick moves the window on. Only analysts and admins have the menus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dash import Dash, Input, Output, State

from app import access
from app.exports import EXPORTERS
from callbacks import common
from callbacks.p2p_views import chosen, offer_filter, parse_at
from callbacks.spread import FILTERS
from db.intervals import EPOCH, INTERVALS, bucket_start_ms, from_ms, to_ms
from layouts import ids
from layouts.controls import BUCKETS, RANGES, market_keys, p2p_markets, spot_symbols
from layouts.download import Group, Link, menu_items
from layouts.urlstate import search

FORMATS = {"csv": "CSV", "excel": "Excel", "parquet": "Parquet"}
CANDLE_FORMATS = {**FORMATS, "binance": "Binance archive CSV"}
MINUTE_MS = 60_000
FRACTION = Decimal("1e-18")  # the export reads at most 18 decimals


DAY_SECONDS = 86_400


def iso(moment: datetime) -> str:
    """A UTC time as the export reads it: 2026-02-01T04:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def covering(span_seconds: int, now: datetime, width_ms: int = MINUTE_MS,
             interval: str | None = None) -> dict[str, str]:
    """start and end of the last `span_seconds`, widened to whole buckets at both ends."""
    def floor(epoch_ms: int) -> int:
        return (bucket_start_ms(epoch_ms, interval) if interval
                else epoch_ms // width_ms * width_ms)

    end_ms = to_ms(now)
    last = floor(end_ms)
    end = last if last == end_ms else last + (INTERVALS[interval] if interval else width_ms)
    return {"start": iso(from_ms(floor(end_ms - span_seconds * 1000))),
            "end": iso(from_ms(end))}


def number(value: Decimal | None) -> str | None:
    """A decimal as the export reads it: plain digits, at most 18 decimals."""
    if value is None:
        return None
    return format(value.quantize(FRACTION).normalize(), "f")


def filter_params(amount: Any = None, payment: Sequence[str] | None = None,
                  merchant: bool = False, completion_pct: Any = None) -> dict[str, Any]:
    """The views' offer filters as export parameters (completion % as a fraction)."""
    filters = offer_filter(amount, payment, merchant, completion_pct)
    return {"amount": number(filters.amount), "payment": list(filters.payment),
            "merchant_only": "true" if filters.merchant_only else None,
            "min_completion": number(filters.min_completion)}


def export_href(dataset: str, params: Mapping[str, Any], fmt: str) -> str:
    """The signed-in download of `dataset` with `params` in format `fmt`."""
    return f"/export/{dataset}" + search({**params, "format": fmt})


def links(dataset: str, params: Mapping[str, Any],
          formats: Mapping[str, str] = FORMATS) -> list[Link]:
    """One link per format."""
    return [(fmt, label, export_href(dataset, params, fmt)) for fmt, label in formats.items()]


def grouped(dataset: str, per_item: Mapping[str, Mapping[str, Any]],
            formats: Mapping[str, str] = FORMATS) -> list[Group]:
    """Links per market or symbol; headings only when there are several."""
    headed = len(per_item) > 1
    return [(name if headed else None, links(dataset, params, formats))
            for name, params in per_item.items()]


def spread_links(markets: Sequence[str], range_key: str, bucket: str,
                 filters: Mapping[str, Any], now: datetime) -> list[Group]:
    """The spread chart's P2P history: each chosen market, its bucket and filters."""
    window = covering(RANGES[range_key], now, BUCKETS[bucket] * 1000)
    return grouped("p2p_history", {market: {"market": market, "bucket": bucket, **window,
                                            **filters} for market in markets})


def advert_links(market: str | None, range_key: str, filters: Mapping[str, Any],
                 now: datetime) -> list[Group]:
    """Every advert of the table's market over the page's range, with its filters."""
    if not market:
        return []
    return grouped("p2p_offers", {market: {"market": market,
                                           **covering(RANGES[range_key], now), **filters}})


def candle_links(symbol: str | None, interval: str, range_key: str,
                 now: datetime) -> list[Group]:
    """The candle chart's symbol, interval and range (and Binance's archive layout)."""
    if not symbol:
        return []
    window = covering(RANGES[range_key], now, interval=interval)
    return grouped("candles", {symbol: {"symbol": symbol, "interval": interval, **window}},
                   CANDLE_FORMATS)


def volume_links(symbols: Sequence[str], bucket: str, range_key: str,
                 now: datetime) -> list[Group]:
    """The volume chart's candles: each symbol in the chart's bucket over the range."""
    window = covering(RANGES[range_key], now, interval=bucket)
    return grouped("candles", {symbol: {"symbol": symbol, "interval": bucket, **window}
                               for symbol in symbols})


def depth_links(market: str | None, at_ms: int | None,
                filters: Mapping[str, Any]) -> list[Group]:
    """The depth chart's snapshot (at or before `at_ms`; None: the latest) and filters."""
    if not market:
        return []
    at = iso(EPOCH + timedelta(milliseconds=at_ms)) if at_ms is not None else None
    return grouped("p2p_depth", {market: {"market": market, "at": at, **filters}})


def depth_time(text: str | None, tz: str) -> int | None:
    """The depth page's time as epoch ms (None: empty or not a time, i.e. the latest)."""
    try:
        return parse_at(text, tz)
    except ValueError:
        return None


def _now() -> datetime:
    return from_ms(common.now_ms())


def _pick(value: str | None, choices: Mapping[str, Any], default: str) -> str:
    return value if value in choices else default


def overview_links(markets: Sequence[str], symbols: Sequence[str], now: datetime
                   ) -> tuple[list[Group], list[Group], list[Group]]:
    """The Overview's tables are the last 24 h: each shown market's best prices, spread and
    liquidity per 5 minutes, each symbol's 24 h ticker samples, and (admins) the runs."""
    day = covering(DAY_SECONDS, now)
    return (grouped("p2p_history", {market: {"market": market, "bucket": "5m", **day}
                                    for market in markets}),
            grouped("tickers_24h", {symbol: {"symbol": symbol, **day} for symbol in symbols}),
            grouped("runs", {"runs": day}))


def register(dash_app: Dash) -> None:
    """The Download menus of the overview, spread, depth, volume and candles pages."""
    _register_overview(dash_app)
    _register_spread(dash_app)
    _register_spot(dash_app)

    @access.callback(
        dash_app,
        Output(ids.DOWNLOAD_DEPTH, "children"),
        inputs={"market": Input(ids.DEPTH_MARKET, "value"), "at": Input(ids.DEPTH_AT, "value"),
                "payment": Input(ids.DEPTH_PAYMENT, "value"),
                "merchant": Input(ids.DEPTH_MERCHANT, "value")},
        state={"tz": State(ids.TZ_STORE, "data")},
        roles=EXPORTERS,
    )
    def update_depth_downloads(*, market, at, payment, merchant, tz):
        market = market if market in market_keys() else None
        at_ms = depth_time(at, common.tz_name(tz))
        filters = filter_params(payment=payment, merchant=bool(merchant))
        return menu_items(ids.DOWNLOAD_DEPTH, depth_links(market, at_ms, filters))


def _register_overview(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        output=[Output(ids.DOWNLOAD_OVERVIEW_MARKETS, "children"),
                Output(ids.DOWNLOAD_OVERVIEW_TICKERS, "children")],
        inputs={"exchanges": Input(ids.OVERVIEW_EXCHANGES, "value"),
                "fiats": Input(ids.OVERVIEW_FIATS, "value"),
                "ticks": Input(ids.LIVE, "n_intervals")},
        roles=EXPORTERS,
    )
    def update_overview_downloads(*, exchanges, fiats, ticks):
        shown = [str(market) for market in p2p_markets()
                 if (not exchanges or market.exchange in exchanges)
                 and (not fiats or market.fiat in fiats)]
        markets, tickers, _runs = overview_links(shown, spot_symbols(), _now())
        return (menu_items(ids.DOWNLOAD_OVERVIEW_MARKETS, markets),
                menu_items(ids.DOWNLOAD_OVERVIEW_TICKERS, tickers))

    @access.callback(
        dash_app,
        output=Output(ids.DOWNLOAD_OVERVIEW_FEEDS, "children"),
        inputs={"ticks": Input(ids.LIVE, "n_intervals")},
        roles=("admin",),
    )
    def update_feed_downloads(*, ticks):
        return menu_items(ids.DOWNLOAD_OVERVIEW_FEEDS, overview_links([], [], _now())[2])


def _register_spread(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        output=[Output(ids.DOWNLOAD_SPREAD, "children"),
                Output(ids.DOWNLOAD_ADVERTS, "children")],
        inputs={"markets": Input(ids.SPREAD_MARKETS, "value"),
                "range_key": Input(ids.SPREAD_RANGE, "value"),
                "bucket": Input(ids.SPREAD_BUCKET, "value"), **FILTERS,
                "ticks": Input(ids.LIVE, "n_intervals")},
        roles=EXPORTERS,
    )
    def update_spread_downloads(*, markets, range_key, bucket, amount, payment, merchant,
                                completion, ticks):
        markets, now = chosen(markets), _now()
        range_key = _pick(range_key, RANGES, "1d")
        bucket = _pick(bucket, BUCKETS, "5m")
        filters = filter_params(amount, payment, merchant, completion)
        return (menu_items(ids.DOWNLOAD_SPREAD,
                           spread_links(markets, range_key, bucket, filters, now)),
                menu_items(ids.DOWNLOAD_ADVERTS, advert_links(
                    markets[0] if markets else None, range_key, filters, now)))


def _register_spot(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.DOWNLOAD_CANDLES, "children"),
        inputs={"symbol": Input(ids.CANDLES_SYMBOL, "value"),
                "interval": Input(ids.CANDLES_INTERVAL, "value"),
                "range_key": Input(ids.CANDLES_RANGE, "value"),
                "ticks": Input(ids.LIVE, "n_intervals")},
        roles=EXPORTERS,
    )
    def update_candle_downloads(*, symbol, interval, range_key, ticks):
        symbol = symbol if symbol in spot_symbols() else None
        return menu_items(ids.DOWNLOAD_CANDLES, candle_links(
            symbol, _pick(interval, INTERVALS, "1m"), _pick(range_key, RANGES, "1d"), _now()))

    @access.callback(
        dash_app,
        Output(ids.DOWNLOAD_VOLUME, "children"),
        inputs={"symbols": Input(ids.VOLUME_SYMBOLS, "value"),
                "bucket": Input(ids.VOLUME_INTERVAL, "value"),
                "range_key": Input(ids.VOLUME_RANGE, "value"),
                "ticks": Input(ids.LIVE, "n_intervals")},
        roles=EXPORTERS,
    )
    def update_volume_downloads(*, symbols, bucket, range_key, ticks):
        symbols = [symbol for symbol in symbols or [] if symbol in spot_symbols()]
        return menu_items(ids.DOWNLOAD_VOLUME, volume_links(
            symbols, _pick(bucket, BUCKETS, "1h"), _pick(range_key, RANGES, "1d"), _now()))
