"""Seed a fresh demo: a day of simulated P2P history, and example alert rules that use it.

Without it a new demo has nothing before its first poll: the Spread chart shows one point
on an axis ticked in fractions of a millisecond. The simulated books are a pure function
of the clock (ingest/fake/p2p_books.py), so every market with no snapshots gets the last
24 h as the simulated exchange served them, one poll a minute, and the live polls carry on
the same price path. The rows are the pollers' own (complete snapshots with their
aggregates, their offers, payment methods, p2p_poll runs marked {"seeded": true}), written
in bulk: one run per market and hour, one transaction per market.

The example rules are created once, through the alerting service as the first admin, with
thresholds taken from the seeded day: the spread rule is set just below the spreads of the
next minutes (known in advance), so it fires on the first live evaluations.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, exists, insert, select

from app.alerts import service
from app.alerts.metrics import METRICS
from app.alerts.preview import preview
from app.auth import users
from app.config import P2PMarket, Settings
from db import alerts as alert_store
from db.alert_model import Rule, Subject
from db.bulk import copy_merge
from db.p2p_query import SideStats, metrics
from db.schema import p2p_offers, p2p_snapshots, runs
from ingest.fake.market import MINUTE_MS, SimulatedMarket, instrument
from ingest.fake.p2p_books import Simulation, simulation_at
from ingest.p2p_normalise import SIDES, Offer, offer_row
from ingest.p2p_poll import CONNECTORS
from ingest.p2p_store import (
    OFFER_KEY,
    Snapshot,
    aggregates,
    remember_payment_methods,
    unique_offers,
)
from ingest.runs import this_process

log = logging.getLogger(__name__)

SEED_MINUTES = 24 * 60
RUN_MINUTES = 60
# The first live evaluations: at start, on the last seeded snapshot, then on the first polls.
LOOKAHEAD_MINUTES = 3
FEED_SILENT_POLLS = 3


@dataclass(frozen=True)
class SeedReport:
    """What a seed did: the markets it filled, their snapshots, the rules it created."""

    markets: tuple[str, ...] = ()
    snapshots: int = 0
    rules: tuple[str, ...] = ()
    seconds: float = 0.0


def seed_demo(engine: Engine, settings: Settings, *, spot_seed: int = 1,
              now: datetime | None = None) -> SeedReport:
    """Seed every demo market with no snapshots; with the first history, the example rules.

    `spot_seed` is the simulated exchange's --seed (its spot market prices the BTC books).
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    empty = [market for market in settings.p2p_markets if not has_snapshots(engine, market)]
    if not empty:
        return SeedReport()
    log.info("seeding %d h of demo P2P history", settings.demo_history_hours,
             extra={"markets": [str(m) for m in empty]})
    moments = seed_moments(now, settings.demo_history_hours * 60)
    seed_markets(engine, settings, spot_seed, empty, moments)
    rules: tuple[str, ...] = ()
    if not alert_store.list_rules(engine, None):
        rules = tuple(rule.name for rule in create_example_rules(
            engine, settings, spot_market(spot_seed), now))
    report = SeedReport(tuple(str(m) for m in empty), len(empty) * len(moments) * len(SIDES),
                        rules, round(time.perf_counter() - started, 1))
    log.info("demo history seeded in %.1f s", report.seconds, extra={
        "markets": list(report.markets), "snapshots": report.snapshots,
        "rules": list(report.rules), "seconds": report.seconds})
    return report


def has_snapshots(engine: Engine, market: P2PMarket) -> bool:
    """Whether any snapshot of the market is stored."""
    s = p2p_snapshots.c
    with engine.connect() as connection:
        return bool(connection.scalar(select(exists().where(
            s.exchange == market.exchange, s.asset == market.asset, s.fiat == market.fiat))))


def seed_moments(now: datetime, minutes: int = SEED_MINUTES) -> list[datetime]:
    """One moment a minute, oldest first, ending with the start of the current minute."""
    last = now.replace(second=0, microsecond=0)
    return [last - timedelta(minutes=back) for back in range(minutes - 1, -1, -1)]


def seeded_depth(settings: Settings) -> int:
    """How many adverts a poll of a simulated side reads: P2P_DEPTH, at most the book."""
    return min(settings.p2p_depth, Simulation.adverts)


def simulated_snapshots(spot: SimulatedMarket, market: P2PMarket, at: datetime,
                        depth: int) -> list[Snapshot]:
    """Both sides of the market as a poll at `at` would have read and normalised them."""
    simulation = simulation_at(spot, at.timestamp(), adverts=depth)
    normalise = CONNECTORS[market.exchange].normalise
    snapshots = []
    for side in SIDES:
        adverts = simulation.book(market.exchange, market.asset, market.fiat, side)
        offers = [normalise(raw, market, side, rank) for rank, raw in enumerate(adverts, 1)]
        snapshots.append(Snapshot(market, side, at, unique_offers(offers)))
    return snapshots


@dataclass
class SeededHour:
    """An hour of one market's simulated polls, built by a worker: the rows store_snapshot
    writes (their run id still to set), and an offer for each payment method seen."""

    snapshots: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    naming: list[Offer]
    received: int


def seed_markets(engine: Engine, settings: Settings, spot_seed: int,
                 markets: Sequence[P2PMarket], moments: Sequence[datetime]) -> None:
    """Write the markets' snapshots at `moments`: a run per market and hour, a transaction
    per market, one writer. Worker processes build the rows meanwhile: that is Python work
    (19 s for 4 markets in one process), which threads would only take turns at."""
    depth = seeded_depth(settings)
    hours = [moments[first:first + RUN_MINUTES] for first in range(0, len(moments), RUN_MINUTES)]
    workers = max(1, min(len(markets), (os.cpu_count() or 1)))
    # spawn, not fork: a forked worker would close the parent's pooled connections on exit.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        built = {market: [pool.submit(build_hour, spot_seed, market, hour, depth)
                          for hour in hours] for market in markets}
        try:
            for market in markets:
                with engine.begin() as connection:
                    for future in built[market]:
                        store_hour(connection, settings, market, future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def seed_market(engine: Engine, settings: Settings, spot_seed: int, market: P2PMarket,
                moments: Sequence[datetime]) -> None:
    """Write one market's snapshots at `moments`, in this process."""
    with engine.begin() as connection:
        for first in range(0, len(moments), RUN_MINUTES):
            hour = build_hour(spot_seed, market, moments[first:first + RUN_MINUTES],
                              seeded_depth(settings))
            store_hour(connection, settings, market, hour)


def build_hour(spot_seed: int, market: P2PMarket, moments: Sequence[datetime],
               depth: int) -> SeededHour:
    """The rows of both sides of the market at each moment (a worker process's task)."""
    spot = spot_market(spot_seed)
    snapshots = [snapshot for at in moments
                 for snapshot in simulated_snapshots(spot, market, at, depth)]
    offers = [(offer, snapshot) for snapshot in snapshots for offer in snapshot.offers]
    # remember_payment_methods keeps the first name seen of each identifier: the first
    # offer of each distinct list of methods holds every first sighting.
    naming: dict[tuple, Offer] = {}
    for offer, _snapshot in offers:
        naming.setdefault(offer.payment_methods, offer)
    return SeededHour(
        snapshots=[snapshot_row(snapshot) for snapshot in snapshots],
        offers=[offer_row(offer, market, snapshot.side, snapshot.captured_at, 0)
                for offer, snapshot in offers],
        naming=list(naming.values()), received=len(offers))


@functools.cache
def spot_market(seed: int) -> SimulatedMarket:
    """The simulated spot market of the exchange's --seed (one per process: it caches)."""
    return SimulatedMarket(seed)


def store_hour(connection: Connection, settings: Settings, market: P2PMarket,
               hour: SeededHour) -> int:
    """One p2p_poll run holding an hour of snapshots, the rows store_snapshot would write."""
    params = {"depth": settings.p2p_depth, "page_rows": settings.p2p_page_rows,
              "seeded": True, "process": this_process()}
    run_id = connection.scalar(insert(runs).values(
        source=CONNECTORS[market.exchange].SOURCE, kind="p2p_poll", market=str(market),
        params=params, started_at=hour.snapshots[0]["captured_at"],
        finished_at=hour.snapshots[-1]["captured_at"], status="ok", received=hour.received,
        inserted=len(hour.offers)).returning(runs.c.id))
    for row in (*hour.snapshots, *hour.offers):
        row["run_id"] = run_id
    connection.execute(insert(p2p_snapshots), hour.snapshots)
    copy_merge(connection, p2p_offers, hour.offers, key=OFFER_KEY, unique_keys=True)
    remember_payment_methods(connection, market, hour.naming)
    return run_id


def snapshot_row(snapshot: Snapshot) -> dict[str, Any]:
    """The p2p_snapshots row of a complete snapshot with its aggregates (run id to set)."""
    best, liquidity = aggregates(snapshot.side, snapshot.offers)
    market = snapshot.market
    return {"run_id": 0, "exchange": market.exchange, "asset": market.asset,
            "fiat": market.fiat, "side": snapshot.side, "captured_at": snapshot.captured_at,
            "offers": len(snapshot.offers), "complete": True, "best_price": best,
            "liquidity": liquidity}


# ---- example alert rules -----------------------------------------------------------------

def first_admin(engine: Engine) -> users.User | None:
    """The active admin created first (the one first_run made), or None."""
    admins = [user for user in users.all_users(engine) if user.role == "admin" and user.is_active]
    return min(admins, key=lambda user: user.id, default=None)


def create_example_rules(engine: Engine, settings: Settings, spot: SimulatedMarket,
                         now: datetime) -> list[Rule]:
    """Create the example rules as the first admin; log how often each would have fired."""
    admin = first_admin(engine)
    if admin is None:
        log.warning("no admin yet: the demo's example alert rules are not created")
        return []
    actor = service.Actor(admin.id, admin.username, admin.role)
    created = []
    for data in example_rules(engine, settings, spot, now):
        try:
            rule = service.create_rule(engine, settings, actor, data).rule
        except service.AlertError as error:
            log.warning("example alert rule not created: %s", error.message,
                        extra={"rule": data["name"], "errors": error.errors})
            continue
        log.info("example alert rule %r created: its preview fires %d times in the stored "
                 "day", rule.name, preview(engine, rule, "1d", now=now).count,
                 extra={"rule_id": rule.id})
        created.append(rule)
    return created


def example_rules(engine: Engine, settings: Settings, spot: SimulatedMarket,
                  now: datetime) -> list[dict[str, Any]]:
    """The example rules' JSON, for the markets and symbols this demo has."""
    markets = settings.p2p_markets
    rules = [spread_rule(engine, settings, spot, markets[0], now),
             mercadopago_rule(engine, settings, now),
             feed_rule(markets[min(1, len(markets) - 1)], settings.p2p_poll_seconds)]
    if settings.spot_symbols:
        symbol = "BTCUSDT" if "BTCUSDT" in settings.spot_symbols else settings.spot_symbols[0]
        rules.append(breakout_rule(spot, symbol, now))
    return [rule for rule in rules if rule is not None]


def spread_rule(engine: Engine, settings: Settings, spot: SimulatedMarket, market: P2PMarket,
                now: datetime) -> dict[str, Any]:
    """Spread % above about the seeded day's median, and below the spreads of the coming
    minutes (the simulated books are known in advance): it fires on the first live polls."""
    start = now.replace(second=0, microsecond=0)
    coming = [spread_pct(simulated_snapshots(spot, market, start + timedelta(minutes=ahead),
                                             seeded_depth(settings)))
              for ahead in range(LOOKAHEAD_MINUTES)]
    threshold = min(coming) - Decimal("0.005")  # rounded down below: strictly under them
    seeded = series_values(engine, "p2p.spread_pct", Subject(market=str(market)), now)
    if seeded:
        threshold = min(threshold, statistics.median(seeded))
    return {"name": f"{market} spread wide", "metric": "p2p.spread_pct", "market": str(market),
            "condition": ">", "threshold": _rounded(threshold, "0.01", ROUND_DOWN),
            "labels": {"severity": "warning"},
            "note": "Set near the median spread of the seeded day: a wider book than usual, "
                    "worth a look before trading."}


def spread_pct(sides: Sequence[Snapshot]) -> Decimal:
    """The spread % of a simulated book (both sides), as the views compute it."""
    stats = {}
    for snapshot in sides:
        best, liquidity = aggregates(snapshot.side, snapshot.offers)
        stats[snapshot.side] = SideStats(best, len(snapshot.offers), liquidity)
    return metrics(stats["ask"], stats["bid"])["spread_pct"]


def mercadopago_rule(engine: Engine, settings: Settings,
                     now: datetime) -> dict[str, Any] | None:
    """Best ask for 150,000 ARS paid by Mercadopago above the seeded day's upper quartile,
    for two polls in a row."""
    market = "binance:USDT/ARS"
    if market not in {str(m) for m in settings.p2p_markets}:
        return None
    filters = {"amount": "150000", "payment": ["mercadopago"]}
    subject = Subject(market=market, amount=Decimal(filters["amount"]),
                      payment=tuple(filters["payment"]))
    seeded = series_values(engine, "p2p.best_ask", subject, now)
    if len(seeded) < 2:
        return None
    return {"name": "USDT/ARS Mercadopago ask high", "metric": "p2p.best_ask",
            "market": market, "filters": filters, "condition": ">",
            "threshold": _rounded(statistics.quantiles(seeded, n=4)[2], "0.01"),
            "for_seconds": 2 * settings.p2p_poll_seconds, "labels": {"severity": "info"},
            "note": "Buying USDT for 150,000 ARS by Mercadopago costs more than on three "
                    "quarters of the last day, for two polls in a row."}


def feed_rule(market: P2PMarket, poll_seconds: int) -> dict[str, Any]:
    """No complete snapshot of the market for three poll intervals (3 minutes by default)."""
    return {"name": f"{market} feed silent", "metric": "feed.age_seconds",
            "market": str(market), "condition": ">",
            "threshold": str(FEED_SILENT_POLLS * poll_seconds),
            "labels": {"severity": "critical"},
            "note": f"No complete snapshot for {FEED_SILENT_POLLS} polls: the exchange is "
                    "failing or blocking the poller (see Admin > Health)."}


def breakout_rule(spot: SimulatedMarket, symbol: str, now: datetime) -> dict[str, Any]:
    """The symbol's price crossing above the median close of its last day (simulated)."""
    shape = instrument(symbol)
    minute = int(now.timestamp() * 1000) // MINUTE_MS
    closes = [Decimal(shape.price(spot.candle(symbol, earlier).close))
              for earlier in range(minute - SEED_MINUTES, minute)]
    places = "1" if shape.base_price >= 100 else "0.0001"
    return {"name": f"{symbol} breaks above the day's median", "metric": "spot.last",
            "symbol": symbol, "condition": "crosses_above",
            "threshold": _rounded(statistics.median(closes), places),
            "labels": {"severity": "info"},
            "note": "The last price crossed above the median of the last day's closes."}


def series_values(engine: Engine, metric: str, subject: Subject, now: datetime) -> list[Decimal]:
    """The metric's 1-minute values over the last day: what the rule preview replays."""
    start = now - timedelta(seconds=SEED_MINUTES * 60)
    samples = METRICS[metric].series(engine, subject, start, now + timedelta(minutes=1),
                                     timedelta(minutes=1))
    return [sample.value for sample in samples]


def _rounded(value: Decimal, places: str, rounding: str | None = None) -> str:
    return format(Decimal(value).quantize(Decimal(places), rounding=rounding), "f")
