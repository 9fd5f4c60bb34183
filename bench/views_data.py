"""The views benchmark's dataset, generated with SQL generate_series straight into the tables.

At scale 1: 1 year of 1m candles for 10 symbols (~5.3M rows), 30 days of one-minute P2P
snapshots for 20 markets with 20 adverts a side (~35M offers), 1 day of one-second book
tickers for 10 symbols (864k rows), and a day of one-minute 24h tickers. Each table's window
reaches a little into the future of the moment it was generated (a week for candles and
P2P, twelve hours for tickers, at most a quarter of the span), so the "last day" of every
view holds data for as long as the dataset is reused; `missing_parts` says which parts are
too old and need generating.
Prices are smooth waves plus a fast wiggle: realistic in shape and size, deterministic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from app.config import EXCHANGES, P2PMarket

SYMBOLS = {"BTCUSDT": 65000, "ETHUSDT": 3500, "BNBUSDT": 600, "SOLUSDT": 150,
           "XRPUSDT": 0.6, "ADAUSDT": 0.45, "DOGEUSDT": 0.15, "LTCUSDT": 80, "DOTUSDT": 7,
           "ETHBTC": 0.054}
FIAT_PER_USDT = {"ARS": 1100, "NGN": 1550, "RUB": 92, "TRY": 34, "BRL": 5.4, "VES": 36,
                 "KZT": 480, "UAH": 41, "INR": 84, "COP": 4000}
ASSET_IN_USDT = {"USDT": 1, "BTC": 65000}
# Payment method identifiers per exchange (mapped to canonical codes by 0002_p2p's seed).
METHODS = {"binance": ["BANK", "MercadoPagoNew", "Wise", "Tinkoff"],
           "okx": ["bank", "aliPay", "wxPay"], "bybit": ["14", "382", "581", "585"]}
FUTURE = {"candles": timedelta(days=7), "p2p": timedelta(days=7), "tickers": timedelta(hours=12)}
# A part reaches at most a quarter of its span into the future (small datasets).
FUTURE_SHARE = 0.25
REUSE_MARGIN = timedelta(hours=1)
LAYOUT = 2  # bump when the generated rows change shape: older datasets are generated again


@dataclass(frozen=True)
class Dataset:
    """What to generate (scale 1 is the issue's dataset)."""

    symbols: int = 10
    candle_days: int = 365
    markets: int = 20
    p2p_days: int = 30
    adverts: int = 20
    ticker_hours: int = 24

    @classmethod
    def scaled(cls, scale: float) -> Dataset:
        """The dataset with every time span multiplied by `scale`."""
        return cls(candle_days=max(1, round(365 * scale)), p2p_days=max(1, round(30 * scale)),
                   ticker_hours=max(1, round(24 * scale)))

    def ahead(self, part: str) -> timedelta:
        """How far past its generation a part's data reaches."""
        span = {"candles": timedelta(days=self.candle_days),
                "p2p": timedelta(days=self.p2p_days),
                "tickers": timedelta(hours=self.ticker_hours)}[part]
        return min(FUTURE[part], span * FUTURE_SHARE)

    def symbol_names(self) -> list[str]:
        return list(SYMBOLS)[:self.symbols]

    def p2p_markets(self) -> list[P2PMarket]:
        """USDT then BTC markets over the fiats; a fiat's markets share an exchange."""
        fiats = list(FIAT_PER_USDT)
        pairs = [(asset, fiat) for asset in ASSET_IN_USDT for fiat in fiats]
        return [P2PMarket(EXCHANGES[fiats.index(fiat) % len(EXCHANGES)], asset, fiat)
                for asset, fiat in (pairs[n % len(pairs)] for n in range(self.markets))]


META = text("""
CREATE TABLE IF NOT EXISTS bench_dataset (
    part text PRIMARY KEY, params jsonb NOT NULL, generated_at timestamptz NOT NULL)
""")

CANDLES = text("""
INSERT INTO candles (exchange, symbol, interval, open_time, open, high, low, close, volume,
                     close_time, trades, quote_volume, taker_base_volume, taker_quote_volume,
                     is_closed)
SELECT 'binance', :symbol, '1m', t, p.o, greatest(p.o, p.c) + p.wick, least(p.o, p.c) - p.wick,
       p.c, q.v, t + interval '59.999 seconds', q.trades, round(q.v * p.c, 8),
       round(q.v / 2, 8), round(q.v * p.c / 2, 8), t < now()
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz) - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN LATERAL (SELECT extract(epoch FROM t) / 60 AS m) AS e
CROSS JOIN LATERAL (SELECT
    round(CAST(:base * (1 + 0.2 * sin(e.m / 40000) + 0.01 * sin(e.m / 97)) AS numeric), 8) AS o,
    round(CAST(:base * (1 + 0.2 * sin((e.m + 1) / 40000) + 0.01 * sin((e.m + 1) / 97))
               AS numeric), 8) AS c,
    round(CAST(:base * 0.0004 * (1 + abs(sin(e.m * 7.1))) AS numeric), 8) AS wick) AS p
CROSS JOIN LATERAL (SELECT round(CAST(1 + abs(sin(e.m * 12.9898)) * 10 AS numeric), 8) AS v,
                           CAST(10 + abs(sin(e.m * 78.233)) * 90 AS integer) AS trades) AS q
""")

BOOK_TICKERS = text("""
INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty)
SELECT 'binance', :symbol, t, p.mid - p.half, 1.5, p.mid + p.half, 2.5
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz) - interval '1 second',
                     interval '1 second') AS t
CROSS JOIN LATERAL (SELECT extract(epoch FROM t) / 60 AS m) AS e
CROSS JOIN LATERAL (SELECT
    round(CAST(:base * (1 + 0.2 * sin(e.m / 40000) + 0.01 * sin(e.m / 97)) AS numeric), 8) AS mid,
    round(CAST(:base * 0.00005 * (1 + abs(sin(e.m * 3.3))) AS numeric), 8) AS half) AS p
""")

TICKERS = text("""
INSERT INTO tickers_24h (exchange, symbol, ts, last, open, high, low, change_pct, volume,
                         quote_volume, trades)
SELECT 'binance', :symbol, t, p.last, p.open, p.last * 1.02, p.open * 0.98,
       round((p.last / p.open - 1) * 100, 4), 12000, 12000 * p.last, 80000
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz) - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN LATERAL (SELECT extract(epoch FROM t) / 60 AS m) AS e
CROSS JOIN LATERAL (SELECT
    round(CAST(:base * (1 + 0.2 * sin(e.m / 40000) + 0.01 * sin(e.m / 97)) AS numeric), 8) AS last,
    round(CAST(:base * (1 + 0.2 * sin((e.m - 1440) / 40000) + 0.01 * sin((e.m - 1440) / 97))
               AS numeric), 8) AS open) AS p
""")


RUN = text("""
INSERT INTO runs (source, kind, market, started_at, finished_at, status, received, inserted)
VALUES (:source, 'p2p_poll', :market, :start, :stop, 'ok', :offers, :offers) RETURNING id
""")

# One market's adverts over [start, stop): 20 a side a minute, the same adverts every
# minute (offer ids persist), prices a wave around the market's base, k-th best k steps out.
OFFERS = text("""
INSERT INTO p2p_offers (captured_at, run_id, exchange, asset, fiat, side, offer_id, price,
                        available, min_fiat, max_fiat, advertiser_id, advertiser_name,
                        is_merchant, month_orders, month_finish_rate, rank, payment_methods)
SELECT t, :run, :exchange, :asset, :fiat, s.side, (:market_id * 1000 + s.n * 100 + k)::text,
       round(CAST(:base * (1 + 0.01 * sin(extract(epoch FROM t) / 86400 * 6.2832))
                  * (1 + s.sign * (0.002 + k * 0.0005)) AS numeric), 2),
       round(CAST((100 + 10 * k) / :asset_usdt AS numeric), 8),
       round(CAST(:fiat_usdt * (10 + 5 * k) AS numeric), 2),
       round(CAST(:fiat_usdt * (500 + 200 * k) AS numeric), 2),
       'a' || (:market_id * 100 + s.n * 40 + k), 'trader ' || (s.n * 40 + k), k % 3 = 0,
       100 + 7 * k, round(0.85 + k * 0.007, 3), k + 1,
       CASE WHEN k % 2 = 0
            THEN ARRAY[(:methods)[1 + k % :n_methods], (:methods)[1 + (k + 1) % :n_methods]]
            ELSE ARRAY[(:methods)[1 + k % :n_methods]] END
FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz) - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN (VALUES ('ask', 1, 0), ('bid', -1, 1)) AS s (side, sign, n)
CROSS JOIN generate_series(0, :adverts - 1) AS k
""").bindparams(bindparam("methods", type_=ARRAY(Text)))

SNAPSHOTS = text("""
INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, offers, complete,
                           best_price, liquidity)
SELECT :run, exchange, asset, fiat, side, captured_at, count(*), true,
       CASE WHEN side = 'ask' THEN min(price) ELSE max(price) END, sum(available)
FROM p2p_offers
WHERE run_id = :run AND captured_at >= :start AND captured_at < :stop
GROUP BY exchange, asset, fiat, side, captured_at
""")


def _run_sql(engine: Engine, statement, params: dict) -> int:
    with engine.begin() as connection:
        return connection.execute(statement, params).rowcount


def _chunks(start: datetime, stop: datetime, size: timedelta):
    cursor = start
    while cursor < stop:
        yield cursor, min(cursor + size, stop)
        cursor += size


def generate_spot(engine: Engine, dataset: Dataset, now: datetime,
                  say: Callable[[str], None]) -> None:
    """One-minute candles of every symbol."""
    stop = now + dataset.ahead("candles")
    start = stop - timedelta(days=dataset.candle_days)
    for symbol in dataset.symbol_names():
        base = SYMBOLS[symbol]
        for first, last in _chunks(start, stop, timedelta(days=30)):
            _run_sql(engine, CANDLES, {"symbol": symbol, "base": base, "start": first,
                                       "stop": last})
        say(f"candles of {symbol}: {dataset.candle_days} days of 1m")


def generate_tickers(engine: Engine, dataset: Dataset, now: datetime,
                     say: Callable[[str], None]) -> None:
    """Book tickers (one a second) and 24h tickers (one a minute) of every symbol."""
    stop = now + dataset.ahead("tickers")
    start = stop - timedelta(hours=dataset.ticker_hours)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE book_tickers, tickers_24h"))
    for symbol in dataset.symbol_names():
        params = {"symbol": symbol, "base": SYMBOLS[symbol], "start": start, "stop": stop}
        _run_sql(engine, BOOK_TICKERS, params)
        _run_sql(engine, TICKERS, params)
    say(f"book tickers and 24h tickers: {dataset.ticker_hours} h of every symbol")


def generate_p2p(engine: Engine, dataset: Dataset, now: datetime,
                 say: Callable[[str], None]) -> None:
    """Every market's adverts and snapshots, one run per market and day."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE p2p_offers, p2p_snapshots"))
        connection.execute(text("DELETE FROM runs WHERE kind = 'p2p_poll'"))
    stop = now + dataset.ahead("p2p")
    start = stop - timedelta(days=dataset.p2p_days)
    for market_id, market in enumerate(dataset.p2p_markets()):
        for first, last in _chunks(start, stop, timedelta(days=1)):
            _market_day(engine, dataset, market_id, market, start=first, stop=last)
        say(f"P2P {market}: {dataset.p2p_days} days")


def _market_day(engine: Engine, dataset: Dataset, market_id: int, market: P2PMarket, *,
                start: datetime, stop: datetime) -> None:
    fiat_usdt, asset_usdt = FIAT_PER_USDT[market.fiat], ASSET_IN_USDT[market.asset]
    methods = METHODS[market.exchange]
    with engine.begin() as connection:
        run = connection.scalar(RUN, {"source": f"{market.exchange}_p2p", "market": str(market),
                                      "start": start, "stop": stop, "offers": 0})
        connection.execute(OFFERS, {
            "run": run, "exchange": market.exchange, "asset": market.asset, "fiat": market.fiat,
            "market_id": market_id, "base": fiat_usdt * asset_usdt, "asset_usdt": asset_usdt,
            "fiat_usdt": fiat_usdt, "methods": methods, "n_methods": len(methods),
            "adverts": dataset.adverts, "start": start, "stop": stop})
        connection.execute(SNAPSHOTS, {"run": run, "start": start, "stop": stop})


def record(engine: Engine, part: str, dataset: Dataset, now: datetime) -> None:
    """Note that a part of the dataset was generated at `now`."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO bench_dataset (part, params, generated_at) VALUES (:p, :d, :t) "
            "ON CONFLICT (part) DO UPDATE SET params = EXCLUDED.params, "
            "generated_at = EXCLUDED.generated_at"),
            {"p": part, "d": json.dumps(_params(dataset)), "t": now})


def _params(dataset: Dataset) -> dict:
    return {**asdict(dataset), "layout": LAYOUT}


def missing_parts(engine: Engine, dataset: Dataset, now: datetime) -> list[str]:
    """The parts ("spot", "tickers", "p2p") to generate: absent, other params, or too old."""
    with engine.begin() as connection:
        connection.execute(META)
        rows = {part: (params, at) for part, params, at in connection.execute(
            text("SELECT part, params, generated_at FROM bench_dataset"))}
    wanted = _params(dataset)
    horizon = {"spot": dataset.ahead("candles"), "tickers": dataset.ahead("tickers"),
               "p2p": dataset.ahead("p2p")}
    return [part for part, ahead in horizon.items()
            if part not in rows or rows[part][0] != wanted
            or now > rows[part][1] + ahead - REUSE_MARGIN]


def clear_spot(engine: Engine) -> None:
    """Drop every candle before generating them again."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE candles"))


def analyze(engine: Engine) -> None:
    """Fresh planner statistics after a bulk load."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def ensure(engine: Engine, dataset: Dataset, say: Callable[[str], None],
           generators: dict[str, Callable[[Engine, Dataset, datetime, Callable], None]]) -> None:
    """Generate whatever part of the dataset is missing or stale, then analyze."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    parts = missing_parts(engine, dataset, now)
    if "spot" in parts:
        clear_spot(engine)
    for part in parts:
        started = time.perf_counter()
        say(f"generating {part} ...")
        generators[part](engine, dataset, now, say)
        record(engine, part, dataset, now)
        say(f"{part} done in {time.perf_counter() - started:.0f} s")
    if parts:
        analyze(engine)
    else:
        say("reusing the generated dataset")
