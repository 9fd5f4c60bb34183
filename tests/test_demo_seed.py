"""The demo's seed: a day of simulated P2P history through the pollers' rows, example rules.

One database is seeded for the module (a day of four markets takes seconds); the tests read
it. The seeded books are checked against what the simulated exchange serves and what a real
poll of it stores, so the live polls continue the seeded day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text

from app.alerts import service
from app.alerts.rules import Catalog, parse_rule
from app.auth import commands, users
from app.config import P2PMarket, Settings
from app.demo_seed import SEED_MINUTES, SeedReport, seed_demo, seed_market, seed_moments
from db import alerts as alert_store
from db.engine import make_engine
from db.p2p_history import history
from db.schema import p2p_offers, p2p_snapshots, payment_methods, runs
from ingest.alerts import AlertEngine
from ingest.fake.market import SimClock
from ingest.fake.server import FakeExchange
from ingest.p2p_poll import CONNECTORS, poll_market
from tests.conftest import TEMPLATE, _new_database, make_settings

MARKETS = (P2PMarket("binance", "USDT", "ARS"), P2PMarket("okx", "USDT", "ARS"),
           P2PMarket("bybit", "USDT", "NGN"), P2PMarket("binance", "BTC", "ARS"))


@dataclass(frozen=True)
class Seeded:
    """The module's seeded database."""

    engine: Engine
    settings: Settings
    report: SeedReport
    now: datetime
    admin: users.User


def demo_settings(tmp_path, database_url: str, **env: str) -> Settings:
    return make_settings(tmp_path, DATABASE_URL=database_url,
                         P2P_MARKETS=",".join(str(m) for m in MARKETS), **env)


@pytest.fixture(scope="module")
def seeded(pg_cluster, tmp_path_factory) -> Seeded:
    databases = _new_database(pg_cluster, TEMPLATE)
    url = next(databases)
    engine = make_engine(url)
    settings = demo_settings(tmp_path_factory.mktemp("demo"), url)
    commands.create_user(engine, "test", "analyst", "correct-horse-analyst", "analyst")
    admin = commands.create_user(engine, "test", "admin", "correct-horse-admin", "admin")
    commands.create_user(engine, "test", "second", "correct-horse-second", "admin")
    now = datetime.now(UTC)
    report = seed_demo(engine, settings, now=now)
    yield Seeded(engine, settings, report, now, admin)
    engine.dispose()
    next(databases, None)


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.scalar(text(sql), params)


def test_the_seed_writes_a_complete_snapshot_per_minute_side_and_market_for_a_day(seeded):
    with seeded.engine.connect() as connection:
        counts = connection.execute(text("""
            SELECT exchange, asset, fiat, side, count(*), count(DISTINCT captured_at),
                   bool_and(complete), min(captured_at), max(captured_at)
            FROM p2p_snapshots GROUP BY 1, 2, 3, 4""")).all()
    assert len(counts) == len(MARKETS) * 2
    for *_key, snapshots, moments, complete, first, last in counts:
        assert snapshots == moments == SEED_MINUTES and complete
        assert seeded.now - timedelta(days=1) < first and last <= seeded.now
        assert last - first == timedelta(minutes=SEED_MINUTES - 1)
    assert seeded.report.snapshots == len(MARKETS) * 2 * SEED_MINUTES
    assert seeded.report.markets == tuple(str(m) for m in MARKETS)


def test_best_prices_and_liquidity_equal_the_offers_as_store_snapshot_computes(seeded):
    wrong = scalar(seeded.engine, """
        SELECT count(*) FROM p2p_snapshots s
        JOIN LATERAL (SELECT min(price) AS low, max(price) AS high, count(*) AS n,
                             sum(available) AS total
                      FROM p2p_offers o
                      WHERE o.exchange = s.exchange AND o.asset = s.asset AND o.fiat = s.fiat
                        AND o.side = s.side AND o.captured_at = s.captured_at
                        AND o.run_id = s.run_id) o ON true
        WHERE s.best_price IS DISTINCT FROM (CASE s.side WHEN 'ask' THEN o.low ELSE o.high END)
           OR s.offers <> o.n OR s.offers <> 20 OR s.liquidity IS DISTINCT FROM o.total""")
    assert wrong == 0
    spreads = scalar(seeded.engine, """
        SELECT count(*) FROM p2p_snapshots a JOIN p2p_snapshots b USING
            (exchange, asset, fiat, captured_at)
        WHERE a.side = 'ask' AND b.side = 'bid' AND a.best_price <= b.best_price""")
    assert spreads == 0


def test_every_seeded_snapshot_belongs_to_a_seeded_poll_run_of_its_hour(seeded):
    with seeded.engine.connect() as connection:
        rows = connection.execute(
            select(runs.c.source, runs.c.market, runs.c.kind, runs.c.status, runs.c.params,
                   runs.c.received, runs.c.inserted)).all()
        orphans = connection.scalar(select(func.count()).select_from(p2p_snapshots).where(
            p2p_snapshots.c.run_id.not_in(select(runs.c.id))))
    assert orphans == 0
    assert len(rows) == len(MARKETS) * SEED_MINUTES // 60
    for source, market, kind, status, params, received, inserted in rows:
        assert kind == "p2p_poll" and status == "ok" and params["seeded"] is True
        assert source == CONNECTORS[market.split(":")[0]].SOURCE
        assert received == inserted == 60 * 2 * 20
    mercadopago = scalar(seeded.engine, "SELECT count(*) FROM payment_methods WHERE "
                                        "exchange = 'binance' AND identifier = 'MercadoPagoNew'")
    assert mercadopago == 1


def test_the_seeded_book_is_what_a_poll_of_the_simulated_exchange_stores(tmp_path, database_url,
                                                                        engine):
    market = P2PMarket("binance", "BTC", "ARS")
    moment = seed_moments(datetime.now(UTC) - timedelta(hours=3), 1)[0]
    with FakeExchange("simulate", clock=SimClock(0.0, start=moment.timestamp()),
                      p2p=True) as fake:
        url = fake.rest_url
        settings = demo_settings(tmp_path, database_url,
                                 BINANCE_P2P_URL=url, P2P_PACING_MS="0")
        seed_market(engine, settings, 1, market, [moment])
        assert poll_market(settings, engine, market).status == "ok"
    seeded_snapshots, seeded_offers, polled_snapshots, polled_offers = (
        rows_at(engine, table, moment, after)
        for after in (False, True) for table in (p2p_snapshots, p2p_offers))
    assert len(seeded_snapshots) == 2 and len(seeded_offers) == 40
    assert seeded_snapshots == polled_snapshots and seeded_offers == polled_offers


def rows_at(engine: Engine, table, moment: datetime, after: bool) -> list:
    """A table's rows captured at `moment` (or after it), less their ids, times and runs."""
    columns = [c for c in table.c if c.name not in ("id", "captured_at", "run_id")]
    when = table.c.captured_at > moment if after else table.c.captured_at == moment
    with engine.connect() as connection:
        return connection.execute(select(*columns).where(when).order_by(*columns)).all()


def test_a_second_seed_adds_nothing(seeded):
    def counts():
        return [scalar(seeded.engine, f"SELECT count(*) FROM {table.name}")
                for table in (p2p_snapshots, p2p_offers, runs, payment_methods)] + [
            len(alert_store.list_rules(seeded.engine, None))]

    before = counts()
    assert seed_demo(seeded.engine, seeded.settings) == SeedReport()
    assert counts() == before


def test_the_example_rules_are_valid_and_belong_to_the_first_admin(seeded):
    rows = alert_store.list_rules(seeded.engine, None)
    assert {row.rule.metric for row in rows} == {
        "p2p.spread_pct", "p2p.best_ask", "feed.age_seconds", "spot.last"}
    assert seeded.report.rules == tuple(row.rule.name for row in sorted(
        rows, key=lambda row: row.rule.id))
    catalog = Catalog.of(seeded.settings)
    for row in rows:
        assert row.rule.user_id == seeded.admin.id and row.rule.owner == "admin"
        parse_rule(service.editable_json(row), catalog)
    mercadopago = next(row.rule for row in rows if row.rule.metric == "p2p.best_ask")
    assert mercadopago.subject.payment == ("mercadopago",)
    assert mercadopago.subject.amount == Decimal("150000")


def test_the_spread_rule_fires_on_the_first_evaluation_and_often_in_the_seeded_day(seeded):
    from app.alerts.preview import preview

    rule = next(row.rule for row in alert_store.list_rules(seeded.engine, None)
                if row.rule.metric == "p2p.spread_pct")
    assert preview(seeded.engine, rule, "1d").count >= 5
    alerts = AlertEngine(seeded.settings, seeded.engine)
    alerts.evaluate_all()
    assert alerts.states[rule.id].state == "firing"


@pytest.mark.parametrize("market", MARKETS, ids=str)
def test_a_day_of_history_at_1h_buckets_has_24_buckets(seeded, market):
    # The last 24 whole hours: an unaligned day would cut a 25th, partial bucket.
    end = seeded.now.replace(minute=0, second=0, microsecond=0)
    rows = history(seeded.engine, market.exchange, market.asset, market.fiat,
                   start=end - timedelta(days=1), end=end, width=timedelta(hours=1))
    assert len(rows) == 24
    assert all(row["spread_pct"] > 0 and row["ask_offers"] == 20 for row in rows)
