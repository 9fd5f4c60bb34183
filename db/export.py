"""The export layer: every dataset's SQL and columns in one registry, streamed in any format.

A dataset is one @dataset function that turns checked parameters into a SELECT whose
columns are the file's columns (times as ISO 8601 UTC text, decimals as stored: never
through float). Formats (FORMATS) stream what PostgreSQL sends:
- csv: COPY (SELECT ...) TO STDOUT, UTF-8 with a header row, passed on block by block;
- excel: the same as UTF-16LE with a BOM, tab-separated, CRLF line ends: what Excel opens
  in any locale without an import dialog (decimal points and ISO times stay text-safe);
- parquet: the same COPY read by Arrow's CSV reader into row groups, decimals as
  decimal128, times as UTC timestamps;
- binance (candles only): Binance's public kline archive layout, 12 columns, no header.
Nothing builds a whole file in memory; the API (app/api/export.py) and the CLI
(`p2pdash export`) both call `stream`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from db.intervals import INTERVALS, bucket_start_ms, from_ms, to_ms

SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
MARKET = re.compile(r"^(binance|okx|bybit):([A-Z0-9]{2,10})/([A-Z0-9]{2,10})$")
PAYMENT = re.compile(r"^[a-z0-9_]{1,40}$")
ROW_GROUP = 20_000
# ISO 8601 UTC from PostgreSQL's own timestamp output ("2026-02-01 04:00:00.25+00" under
# db.engine's TimeZone=UTC and DateStyle=ISO): two replaces cost a fraction of to_char.
ISO = "replace(replace(CAST({col} AS text), ' ', 'T'), '+00', 'Z')"


class ExportInvalid(ValueError):
    """A request that cannot be exported; `field` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Column:
    """A file column: its name, kind (text, int, decimal, time, bool) and SQL expression."""

    name: str
    kind: str
    raw: str

    @property
    def text(self) -> str:
        """The expression as text files hold it: ISO 8601 UTC times, true/false."""
        if self.kind == "time":
            return ISO.format(col=self.raw)
        if self.kind == "bool":
            return f"CAST({self.raw} AS text)"  # 'true' / 'false'; COPY alone writes t / f
        return self.raw


@dataclass(frozen=True)
class Query:
    """A dataset's SELECT for one request ("{select}" stands for its columns, empty for
    aggregated candles), its columns and the file's name."""

    template: str
    params: dict[str, Any]
    columns: tuple[Column, ...]
    filename: str
    # Datasets computed in Python (aggregated candles, P2P history, depth): batches of rows
    # in the columns' order, each batch bounded.
    rows: Callable[[Any], Iterator[list[tuple]]] | None = None
    # Joins only the columns need ("{joins}" in the template): a row count leaves them out.
    joins: str = ""
    # At most this many rows (Python datasets: the buckets in the range), for estimates.
    most: int | None = None
    # Run as one query per window of the range (db/export_stream.copy_blocks), so each
    # window's ORDER BY sorts in memory.
    window: timedelta | None = None

    def sql(self, *, native: bool = False) -> str:
        """The SELECT with text columns (CSV, and Parquet through Arrow) or native ones."""
        select = ", ".join(f"{column.raw if native else column.text} AS {column.name}"
                           for column in self.columns)
        return self.template.replace("{select}", select).replace("{joins}", self.joins)

    def bare_sql(self) -> str:
        """The same rows as a bare SELECT 1, without the columns' joins or the order (what a
        count reads)."""
        body = self.template.replace("{select}", "1").replace("{joins}", "")
        return body.rsplit(" ORDER BY ", 1)[0]


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: who may export it, its parameters, how to build its query."""

    name: str
    label: str
    params: tuple[str, ...]
    build: Callable[[Mapping[str, Any]], Query]
    admins_only: bool = False
    formats: tuple[str, ...] = ("csv", "excel", "parquet")


DATASETS: dict[str, Dataset] = {}


def dataset(name: str, label: str, params: tuple[str, ...], **options: Any
            ) -> Callable[[Callable[[Mapping[str, Any]], Query]], Callable]:
    """Register the decorated query builder as dataset `name`."""

    def register(build: Callable[[Mapping[str, Any]], Query]) -> Callable:
        DATASETS[name] = Dataset(name, label, params, build, **options)
        return build

    return register


# ---- parameters --------------------------------------------------------------------------

def parse_time(field_name: str, raw: str | None) -> datetime | None:
    """ISO 8601 (UTC unless it says otherwise) or epoch milliseconds, bounded, as the
    candles API reads them; None when empty."""
    from db.candles_api import CandleParamError
    from db.candles_api import parse_time as parse_api_time

    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_api_time(field_name, raw)
    except CandleParamError as error:
        raise ExportInvalid(error.field, error.message) from None


def _range(args: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    end = parse_time("end", args.get("end")) or now
    start = parse_time("start", args.get("start")) or end - timedelta(days=1)
    if start >= end:
        raise ExportInvalid("start", "must be before end")
    return start, end


def _symbol(args: Mapping[str, str]) -> str:
    raw = (args.get("symbol") or "").strip().upper()
    if not SYMBOL.match(raw):
        raise ExportInvalid("symbol", "is required: a symbol like BTCUSDT")
    return raw


def _market(args: Mapping[str, str]) -> tuple[str, str, str]:
    raw = (args.get("market") or "").strip()
    exchange, _, pair = raw.partition(":")
    match = MARKET.match(f"{exchange.lower()}:{pair.upper()}")
    if not match:
        raise ExportInvalid("market", "is required: EXCHANGE:ASSET/FIAT like binance:USDT/ARS")
    return match[1], match[2], match[3]


def _decimal(args: Mapping[str, str], name: str, low: Decimal, high: Decimal
             ) -> Decimal | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > 30 or not re.fullmatch(r"[0-9]{1,16}(\.[0-9]{1,18})?", raw):
        raise ExportInvalid(name, "must be a decimal number like 200000")
    value = Decimal(raw)
    if not low <= value <= high:
        raise ExportInvalid(name, f"must be from {low} to {high}")
    return value


def _filters(args: Mapping[str, str]) -> dict[str, Any]:
    """The views' offer filters: amount, payment (codes), merchant_only, min_completion."""
    payment = [code.strip() for code in (args.get("payment") or "").split(",") if code.strip()]
    if len(payment) > 20 or not all(PAYMENT.match(code) for code in payment):
        raise ExportInvalid("payment", "must be canonical payment codes like mercadopago")
    merchant = (args.get("merchant_only") or "false").strip().lower()
    if merchant not in ("true", "false", "1", "0"):
        raise ExportInvalid("merchant_only", "must be true or false")
    return {"amount": _decimal(args, "amount", Decimal(0), Decimal("1e15")),
            "payment": payment, "merchant_only": merchant in ("true", "1"),
            "min_completion": _decimal(args, "min_completion", Decimal(0), Decimal(1))}


@dataclass(frozen=True)
class ExportRequest:
    """A checked export: the dataset, its parameters, the format, the query."""

    dataset: Dataset
    format: str
    query: Query
    params: dict[str, Any] = field(default_factory=dict)


def parse_request(name: str, args: Mapping[str, str], *, role: str, user_id: int | None = None,
                  max_days: int | None = None, now: datetime | None = None) -> ExportRequest:
    """Check a request before any byte is sent; ExportInvalid names the field."""
    found = DATASETS.get(name)
    if found is None:
        raise ExportInvalid("dataset", f"unknown; known: {', '.join(sorted(DATASETS))}")
    if found.admins_only and role != "admin":
        raise ExportInvalid("dataset", "only admins export this dataset")
    fmt = (args.get("format") or "csv").strip().lower()
    if fmt not in found.formats:
        raise ExportInvalid("format", f"must be one of {', '.join(found.formats)}")
    start, end = _range(args, now or datetime.now(UTC))
    if max_days is not None and end - start > timedelta(days=max_days):
        raise ExportInvalid("start", f"the range is longer than the {max_days} days your role "
                                     "may export at once (P2PDASH_EXPORT_MAX_DAYS)")
    params = {"start": start, "end": end, **{key: args.get(key) for key in found.params}}
    query = found.build({**args, "start": start, "end": end,
                         "user_id": None if role == "admin" else user_id})
    return ExportRequest(found, fmt, query, params)


# ---- datasets ----------------------------------------------------------------------------

def _col(name: str, kind: str, sql: str | None = None) -> Column:
    return Column(name, kind, sql or name)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


CANDLE_COLUMNS = (
    _col("open_time", "time"), _col("open", "decimal"), _col("high", "decimal"),
    _col("low", "decimal"), _col("close", "decimal"), _col("volume", "decimal"),
    _col("close_time", "time"), _col("quote_volume", "decimal"), _col("trades", "int"),
    _col("taker_base_volume", "decimal"), _col("taker_quote_volume", "decimal"),
    _col("is_closed", "bool"))


@dataset("candles", "Spot candles (any interval, aggregated as the Candles page does)",
         ("symbol", "interval"), formats=("csv", "excel", "parquet", "binance"))
def _candles(args: Mapping[str, Any]) -> Query:
    symbol = _symbol(args)
    interval = (args.get("interval") or "1m").strip()
    if interval not in INTERVALS:
        raise ExportInvalid("interval", f"must be one of {', '.join(INTERVALS)}")
    name = f"candles_{symbol}_{interval}_{_stamp(args['start'])}_{_stamp(args['end'])}"
    params = {"symbol": symbol, "interval": interval, "start": args["start"],
              "end": args["end"]}
    if interval != "1m":  # built by db.candles, in bounded windows
        return Query("", params, CANDLE_COLUMNS, name, lambda engine: (
            [tuple(getattr(candle, column.name) for column in CANDLE_COLUMNS)
             for candle in window] for window in candle_windows(engine, params)),
            most=_buckets(args["start"], args["end"], INTERVALS[interval], interval))
    return Query(_simple("candles", "open_time",
                         "exchange = 'binance' AND symbol = :symbol AND interval = '1m'"),
                 params, CANDLE_COLUMNS, name)


def _buckets(start: datetime, end: datetime, width_ms: int, interval: str | None = None
             ) -> int:
    """How many buckets of `width_ms` (aligned as `interval`'s) overlap [start, end)."""
    first = bucket_start_ms(to_ms(start), interval) if interval else to_ms(start)
    return max(0, -(-(to_ms(end) - first) // width_ms))


CANDLE_WINDOW = 10_000  # buckets of aggregated candles read per query


def candle_windows(engine: Any, params: Mapping[str, Any]) -> Iterator[list[Any]]:
    """Candles of the asked interval, CANDLE_WINDOW buckets per query, oldest first."""
    from db.candles import get_candles

    interval = params["interval"]
    width = timedelta(milliseconds=INTERVALS[interval] * CANDLE_WINDOW)
    start = params["start"]
    # The bucket holding `start` overlaps the range (the Candles page shows it too); later
    # windows keep only the buckets that open inside them, so none comes twice.
    lower = from_ms(bucket_start_ms(to_ms(start), interval))
    while start < params["end"]:
        stop = min(start + width, params["end"])
        yield [candle for candle in get_candles(engine, params["symbol"], interval, start, stop)
               if lower <= candle.open_time < stop]
        start = lower = stop


def _simple(table: str, time_column: str, where: str = "") -> str:
    extra = f" AND {where}" if where else ""
    return (f"SELECT {{select}} FROM {table} WHERE {time_column} >= :start "
            f"AND {time_column} < :end{extra} ORDER BY {time_column}")


BOOK_COLUMNS = (_col("ts", "time"), _col("symbol", "text"), _col("bid", "decimal"),
                _col("bid_qty", "decimal"), _col("ask", "decimal"), _col("ask_qty", "decimal"))


def _symbol_samples(table: str, columns: tuple[Column, ...]
                    ) -> Callable[[Mapping[str, Any]], Query]:
    """A dataset of one spot symbol's samples in `table` over the range."""
    def build(args: Mapping[str, Any]) -> Query:
        symbol = _symbol(args)
        return Query(_simple(table, "ts", "exchange = 'binance' AND symbol = :symbol"),
                     {"symbol": symbol, "start": args["start"], "end": args["end"]}, columns,
                     f"{table}_{symbol}_{_stamp(args['start'])}_{_stamp(args['end'])}")
    return build


dataset("book_tickers", "Spot best bid and ask samples", ("symbol",))(
    _symbol_samples("book_tickers", BOOK_COLUMNS))


TICKER_COLUMNS = (_col("ts", "time"), _col("symbol", "text"), _col("last", "decimal"),
                  _col("open", "decimal"), _col("high", "decimal"), _col("low", "decimal"),
                  _col("change_pct", "decimal"), _col("volume", "decimal"),
                  _col("quote_volume", "decimal"), _col("trades", "int"))


dataset("tickers_24h", "Spot 24 h ticker samples", ("symbol",))(
    _symbol_samples("tickers_24h", TICKER_COLUMNS))


OFFER_COLUMNS = (
    _col("captured_at", "time", "o.captured_at"), _col("exchange", "text", "o.exchange"),
    _col("asset", "text", "o.asset"), _col("fiat", "text", "o.fiat"),
    _col("side", "text", "o.side"), _col("rank", "int", "o.rank"),
    _col("offer_id", "text", "o.offer_id"), _col("price", "decimal", "o.price"),
    _col("available", "decimal", "o.available"), _col("min_fiat", "decimal", "o.min_fiat"),
    _col("max_fiat", "decimal", "o.max_fiat"),
    _col("payment_methods", "text", "pay.codes"),
    _col("payment_method_names", "text", "pay.names"),
    _col("advertiser_id", "text", "o.advertiser_id"),
    _col("advertiser_name", "text", "o.advertiser_name"),
    _col("is_merchant", "bool", "o.is_merchant"), _col("month_orders", "int", "o.month_orders"),
    _col("month_finish_rate", "decimal", "o.month_finish_rate"),
    _col("run_id", "int", "o.run_id"))

OFFER_FILTER_SQL = """
    o.exchange = :exchange AND o.asset = :asset AND o.fiat = :fiat
    AND (CAST(:amount AS numeric) IS NULL OR (coalesce(o.min_fiat, 0) <= :amount
         AND (o.max_fiat IS NULL OR o.max_fiat >= :amount)))
    AND (CAST(:payment AS text[]) = '{}' OR o.payment_methods && ARRAY(
         SELECT identifier FROM payment_methods pm WHERE pm.exchange = o.exchange
           AND pm.canonical = ANY (CAST(:payment AS text[]))))
    AND (NOT :merchant_only OR o.is_merchant)
    AND (CAST(:min_completion AS numeric) IS NULL OR o.month_finish_rate >= :min_completion)
"""


# Both payment columns from one look-up per advert (two correlated subqueries ran at a
# fifth of the speed: bench/export.py).
OFFER_PAYMENTS = """
    LEFT JOIN LATERAL (
        SELECT string_agg(coalesce(pm.canonical, pm.identifier), ',' ORDER BY pm.identifier)
                   AS codes,
               string_agg(coalesce(pm.name, pm.identifier), ',' ORDER BY pm.identifier)
                   AS names
          FROM payment_methods pm
         WHERE pm.exchange = o.exchange AND pm.identifier = ANY (o.payment_methods)) pay
      ON true"""


OFFER_WINDOW = timedelta(hours=6)  # ~15k adverts of a market polled every 30 s


def _market_params(args: Mapping[str, Any]) -> dict[str, Any]:
    exchange, asset, fiat = _market(args)
    return {"exchange": exchange, "asset": asset, "fiat": fiat, "start": args["start"],
            "end": args["end"], **_filters(args)}


def _market_name(prefix: str, params: Mapping[str, Any]) -> str:
    return (f"{prefix}_{params['exchange']}_{params['asset']}{params['fiat']}_"
            f"{_stamp(params['start'])}_{_stamp(params['end'])}")


@dataset("p2p_offers", "P2P adverts of every snapshot, with the run that brought them",
         ("market", "amount", "payment", "merchant_only", "min_completion"))
def _offers(args: Mapping[str, Any]) -> Query:
    params = _market_params(args)
    sql = ("SELECT {select} FROM p2p_offers o {joins} "
           f"WHERE o.captured_at >= :start AND o.captured_at < :end AND {OFFER_FILTER_SQL} "
           "ORDER BY o.captured_at, o.side, o.rank")
    return Query(sql, params, OFFER_COLUMNS, _market_name("p2p_offers", params),
                 joins=OFFER_PAYMENTS, window=OFFER_WINDOW)


RUN_COLUMNS = (_col("id", "int"), _col("source", "text"), _col("kind", "text"),
               _col("market", "text"), _col("started_at", "time"), _col("finished_at", "time"),
               _col("status", "text"), _col("received", "int"), _col("inserted", "int"),
               _col("duplicates", "int"), _col("rejected", "int"), _col("error", "text"))


def _whole_table(table: str, time_column: str, columns: tuple[Column, ...]
                 ) -> Callable[[Mapping[str, Any]], Query]:
    """A dataset of every row of `table` in the range."""
    def build(args: Mapping[str, Any]) -> Query:
        return Query(_simple(table, time_column), {"start": args["start"], "end": args["end"]},
                     columns, f"{table}_{_stamp(args['start'])}_{_stamp(args['end'])}")
    return build


dataset("runs", "Ingestion runs (admins)", (), admins_only=True)(
    _whole_table("runs", "started_at", RUN_COLUMNS))


ERROR_COLUMNS = (_col("id", "int"), _col("run_id", "int"), _col("at", "time"),
                 _col("level", "text"), _col("message", "text"), _col("payload", "text"))


dataset("ingest_errors", "Ingestion errors (admins)", (), admins_only=True)(
    _whole_table("ingest_errors", "at", ERROR_COLUMNS))




HISTORY_COLUMNS = (
    _col("bucket", "time"), _col("captured_at", "time"), _col("exchange", "text"),
    _col("asset", "text"), _col("fiat", "text"), _col("best_ask", "decimal"),
    _col("best_bid", "decimal"), _col("spread", "decimal"), _col("spread_pct", "decimal"),
    _col("ask_offers", "int"), _col("bid_offers", "int"), _col("ask_liquidity", "decimal"),
    _col("bid_liquidity", "decimal"))
BUCKETS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
           "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}
HISTORY_WINDOW = 4000  # buckets per query (db.p2p_history allows 5,000)


def _offer_filter(params: Mapping[str, Any]) -> Any:
    from db.p2p_query import OfferFilter

    return OfferFilter(params["amount"], tuple(sorted(params["payment"])),
                       params["merchant_only"], params["min_completion"])


@dataset("p2p_history", "P2P best prices, spread and liquidity per bucket (the Spread page)",
         ("market", "bucket", "amount", "payment", "merchant_only", "min_completion"))
def _history(args: Mapping[str, Any]) -> Query:
    params = _market_params(args)
    bucket = (args.get("bucket") or "1h").strip()
    if bucket not in BUCKETS:
        raise ExportInvalid("bucket", f"must be one of {', '.join(BUCKETS)}")
    width = timedelta(seconds=BUCKETS[bucket])

    def rows(engine: Any) -> Iterator[list[tuple]]:
        from db.p2p_history import history

        start = params["start"]
        while start < params["end"]:
            stop = min(start + width * HISTORY_WINDOW, params["end"])
            found = history(engine, params["exchange"], params["asset"], params["fiat"],
                            start=start, end=stop, width=width, filters=_offer_filter(params))
            yield [tuple(row[column.name] for column in HISTORY_COLUMNS) for row in found]
            start = stop

    return Query("", {**params, "bucket": bucket}, HISTORY_COLUMNS,
                 _market_name(f"p2p_history_{bucket}", params), rows,
                 most=_buckets(params["start"], params["end"], BUCKETS[bucket] * 1000))


DEPTH_COLUMNS = (_col("captured_at", "time"), _col("side", "text"), _col("price", "decimal"),
                 _col("available", "decimal"), _col("offers", "int"),
                 _col("cum_available", "decimal"), _col("cum_fiat", "decimal"))


@dataset("p2p_depth", "The cumulative book of a P2P snapshot (the Depth page; `at` picks "
         "the snapshot, default the latest)",
         ("market", "at", "amount", "payment", "merchant_only", "min_completion"))
def _depth(args: Mapping[str, Any]) -> Query:
    params = _market_params(args)
    at = parse_time("at", args.get("at"))

    def rows(engine: Any) -> Iterator[list[tuple]]:
        from db.p2p import depth

        book = depth(engine, params["exchange"], params["asset"], params["fiat"],
                     _offer_filter(params), at=at)
        for side, levels in (("ask", book["asks"]), ("bid", book["bids"])):
            yield [(book["captured_at"], side, level["price"], level["available"],
                    level["offers"], level["cum_available"], level["cum_fiat"])
                   for level in levels]

    moment = (at or params["end"]).strftime("%Y-%m-%dT%H%M%SZ")
    return Query("", params, DEPTH_COLUMNS,
                 f"p2p_depth_{params['exchange']}_{params['asset']}{params['fiat']}_{moment}",
                 rows)


EVENT_COLUMNS = (
    _col("at", "time", "e.at"), _col("rule_id", "int", "e.rule_id"),
    _col("rule_name", "text", "r.name"), _col("owner", "text", "u.username"),
    _col("metric", "text", "r.metric"), _col("from_state", "text", "e.from_state"),
    _col("to_state", "text", "e.to_state"), _col("value", "decimal", "e.value"),
    _col("threshold", "text", "e.threshold"), _col("data_at", "time", "e.data_at"),
    _col("run_id", "int", "e.run_id"), _col("silenced", "bool", "e.silenced"),
    _col("message", "text", "e.message"))


@dataset("alert_events", "Alert rule transitions (your rules; admins: everyone's)", ())
def _events(args: Mapping[str, Any]) -> Query:
    sql = ("SELECT {select} FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id "
           "JOIN users u ON u.id = r.user_id WHERE e.at >= :start AND e.at < :end "
           "AND (CAST(:user_id AS integer) IS NULL OR r.user_id = :user_id) "
           "ORDER BY e.at, e.id")
    return Query(sql, {"start": args["start"], "end": args["end"],
                       "user_id": args.get("user_id")}, EVENT_COLUMNS,
                 f"alert_events_{_stamp(args['start'])}_{_stamp(args['end'])}")
