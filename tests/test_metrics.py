"""/metrics: Prometheus's own parser reads it, its access is a token or loopback, and the
numbers move as the work happens; under two gunicorn workers (multiprocess mode) the rows
counted are the rows in the tables, through a worker killed mid-stream."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select, text

from app import access, metrics
from app.config import ConfigError
from db.embedded import free_port
from db.engine import make_engine
from db.schema import book_tickers, candles, candles_live, p2p_offers, tickers_24h
from ingest.fake.server import FakeExchange
from tests.conftest import AuthActions, make_settings
from tests.dash_calls import callback_body
from tests.spot_support import wait_until

TOKEN = "metrics-token-" + "t" * 24
ROOT = Path(__file__).resolve().parent.parent
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(body: str) -> Samples:
    """Every sample of a scrape by name, through prometheus_client's own text parser."""
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        assert family.name.startswith("p2pdash_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    return sum(number for found, number in samples.get(name, [])
               if labels.items() <= found.items())


def scrape(client, **options) -> Samples:
    response = client.get("/metrics", **options)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


@pytest.fixture
def token_app(database_url, tmp_path):
    from app import create_app

    server = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                      P2PDASH_METRICS_TOKEN=TOKEN))
    yield server
    server.extensions["p2pdash"].engine.dispose()


def test_the_metrics_parse_and_every_name_starts_with_p2pdash(client):
    client.get("/healthz")
    samples = scrape(client)
    assert value(samples, "p2pdash_http_requests_total", route="/healthz", method="GET",
                 status="200") >= 1
    assert value(samples, "p2pdash_database_up") == 1
    assert {labels["role"] for labels, _ in samples["p2pdash_active_sessions"]} == \
        set(metrics.SESSION_KINDS) == {*access.ROLES, "device"}
    assert "p2pdash_process_resident_memory_bytes" in samples


def test_requests_are_labelled_by_their_url_rule_not_their_path(client):
    before = value(scrape(client), "p2pdash_http_requests_total", route="/export/<name>")
    client.get("/export/candles-secret-name")
    client.get("/no/such/page-of-mine")
    samples = scrape(client)
    assert value(samples, "p2pdash_http_requests_total", route="/export/<name>") == before + 1
    routes = {labels["route"] for labels, _ in samples["p2pdash_http_requests_total"]}
    assert not any("secret" in route or "page-of-mine" in route for route in routes)


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token-wrong-token"}, 401),
    ({"Authorization": f"Basic {TOKEN}"}, 401),
    ({"Authorization": f"Bearer {TOKEN}"}, 200),
])
def test_with_a_token_set_metrics_want_it(token_app, headers, status):
    response = token_app.test_client().get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"p2pdash_" not in response.data


@pytest.mark.parametrize(("address", "headers", "status"), [
    ("127.0.0.1", {}, 200),
    ("::1", {}, 200),
    ("10.1.2.3", {}, 403),
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),  # a local proxy, for anyone
])
def test_without_a_token_metrics_answer_loopback_only(client, address, headers, status):
    response = client.get("/metrics", headers=headers,
                          environ_overrides={"REMOTE_ADDR": address})
    assert response.status_code == status


def test_metrics_is_public_in_the_access_registry_and_checks_its_own_token(app):
    # The route walk (tests/test_access.py) expects a public route to answer its loopback
    # test client: it does, because no token is set there.
    assert access.rule_for_endpoint(app, "metrics") == access.PUBLIC


@pytest.mark.parametrize("token", ["short", "has spaces in it, sixteen+", "x" * 513])
def test_a_bad_metrics_token_is_refused_at_start(tmp_path, token):
    with pytest.raises(ConfigError, match=r"^P2PDASH_METRICS_TOKEN"):
        make_settings(tmp_path, P2PDASH_METRICS_TOKEN=token)


def test_sessions_feed_ages_callbacks_and_cache_are_measured(app, dash_app, client_as, engine):
    trader = client_as("trader")
    with engine.begin() as connection:
        connection.execute(insert(book_tickers).values(
            exchange="binance", symbol="BTCUSDT", ts=datetime.now(UTC) - timedelta(seconds=30),
            bid=1, bid_qty=1, ask=2, ask_qty=1))
    key = next(key for key in dash_app.callback_map if "home-database" in key)
    before = scrape(trader)
    response = trader.post("/_dash-update-component", json=callback_body(
        dash_app.callback_map, key), headers=AuthActions(trader).dash_headers())
    assert response.status_code == 200
    with app.test_request_context():
        from db import views

        views.p2p_method_codes(("binance",))
        views.p2p_method_codes(("binance",))
    after = scrape(trader)
    assert value(after, "p2pdash_active_sessions", role="trader") == 1
    [(labels, age)] = [(labels, age) for labels, age in after["p2pdash_feed_age_seconds"]
                       if labels["symbol"] == "BTCUSDT"]
    assert labels == {"exchange": "binance", "feed": "book_ticker", "symbol": "BTCUSDT",
                      "market": ""}
    assert 29 <= age < 60
    name = "p2pdash_dash_callback_duration_seconds_count"
    assert value(after, name, callback=key) == value(before, name, callback=key) + 1
    query = "db.views.p2p_method_codes"
    assert value(after, "p2pdash_cache_misses_total", query=query) - \
        value(before, "p2pdash_cache_misses_total", query=query) == 1
    assert value(after, "p2pdash_cache_hits_total", query=query) - \
        value(before, "p2pdash_cache_hits_total", query=query) == 1


def test_the_grafana_dashboard_draws_only_metrics_that_exist(client):
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    drawn = {re.sub(r"_(bucket|count|sum)$", "", name)
             for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"p2pdash_[a-z0-9_]+", target["expr"])}
    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    defined = {family.name for family in families}  # counters without _total
    assert drawn - defined - {f"{name}_total" for name in defined} == set()


# -- two gunicorn workers, multiprocess mode ---------------------------------------------

TABLES = {"book_tickers": book_tickers, "tickers_24h": tickers_24h, "candles": candles,
          "candles_live": candles_live, "p2p_offers": p2p_offers}


def gunicorn(database_url: str, fake: FakeExchange, tmp_path: Path,
             multiproc: Path) -> tuple[subprocess.Popen, str]:
    """The app under gunicorn (two workers, both electing an ingest leader)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "s" * 40,
           "P2PDASH_DATA_DIR": str(tmp_path / "var"), "P2PDASH_ADMIN_PASSWORD": "a" * 12,
           "P2PDASH_AUTO_MIGRATE": "false", "SPOT_SYMBOLS": "BTCUSDT",
           "P2P_MARKETS": "binance:USDT/ARS", "P2P_POLL_SECONDS": "5",
           "P2P_JITTER_SECONDS": "0", "P2P_PACING_MS": "0", "ALERTS_ENABLED": "false",
           "INGEST_LEADER_RETRY_SECONDS": "0.5", "INGEST_FLUSH_SECONDS": "0.1",
           "SPOT_GAP_HORIZON_MINUTES": "5", "SPOT_RECONNECT_MAX_SECONDS": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "P2PDASH_METRICS_TOKEN": TOKEN,
           **fake.environment()}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "-w", "2",
               "--threads", "4", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
               "--timeout", "120",
               "wsgi:server"]
    with (tmp_path / "gunicorn.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def http_scrape(base: str) -> Samples:
    response = requests.get(f"{base}/metrics", timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    return parse(response.text)


def try_scrape(base: str) -> Samples | None:
    try:
        return http_scrape(base)
    except requests.RequestException:
        return None


def table_rows(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {name: connection.scalar(select(func.count()).select_from(table))
                for name, table in TABLES.items()}


def counted_rows(samples: Samples) -> dict[str, int]:
    return {name: int(value(samples, "p2pdash_ingest_rows_written_total", table=name))
            for name in TABLES}


def leader_pid(engine) -> int:
    with engine.connect() as connection:
        process = connection.scalar(text(
            "SELECT params->>'process' FROM runs WHERE kind = 'ws_session' "
            "ORDER BY started_at DESC LIMIT 1"))
    return int(process.rsplit(":", 1)[1])


def ingesting(base: str, minimum: dict[str, int]) -> Samples | None:
    """A scrape once one process leads and the counts passed `minimum`, else None."""
    samples = try_scrape(base)
    if samples is None or value(samples, "p2pdash_ingest_leader") != 1:
        return None
    counted = counted_rows(samples)
    return samples if all(counted[name] > low for name, low in minimum.items()) else None


def settled(base: str, engine) -> Samples | None:
    """A scrape whose rows counted equal the rows in the tables, else None."""
    samples = try_scrape(base)
    return samples if samples is not None and counted_rows(samples) == table_rows(engine) \
        else None


@pytest.mark.slow
def test_rows_counted_equal_rows_stored_across_two_gunicorn_workers(database_url, tmp_path):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    stale = multiproc / "counter_999999.db"
    stale.write_bytes(b"left by a previous run")
    engine = make_engine(database_url)
    fake = FakeExchange("simulate", symbols=["BTCUSDT"], p2p=True).start()
    process, base = gunicorn(database_url, fake, tmp_path, multiproc)
    stopped = False
    try:
        first = wait_until(lambda: ingesting(base, {"book_tickers": 2, "p2p_offers": 0}),
                           timeout=90, interval=0.3, message="a leader ingesting")
        assert not stale.exists(), "gunicorn's start emptied the metrics directory"
        assert value(first, "p2pdash_ws_connections_total", exchange="binance") >= 1
        assert value(first, "p2pdash_p2p_polls_total", market="binance:USDT/ARS",
                     status="ok") >= 1
        assert value(first, "p2pdash_p2p_poll_duration_seconds_count", exchange="binance") >= 1

        victim = leader_pid(engine)
        os.kill(victim, signal.SIGKILL)
        counted = counted_rows(first)
        # The other worker leads; the dead one's leader gauge is gone (1, not 2), and its
        # counts stay in the sums, which go on growing from there.
        after = wait_until(lambda: leader_pid(engine) != victim and ingesting(
            base, {"book_tickers": counted["book_tickers"] + 2}), timeout=60, interval=0.3,
            message="a new leader ingesting")
        assert value(after, "p2pdash_ingest_leader") == 1
        assert value(after, "p2pdash_ws_frames_received_total") >= \
            value(first, "p2pdash_ws_frames_received_total")

        fake.stop()  # the stream and the polls stop: let the writer finish
        stopped = True
        final = wait_until(lambda: settled(base, engine), timeout=30, interval=0.3,
                           message="the rows counted equal to the rows stored")
        assert all(final_count > 0 for final_count in counted_rows(final).values())
        assert value(final, "p2pdash_ingest_lag_seconds_count", table="tickers_24h") > 0
    except AssertionError as error:
        tail = (tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{error}\ngunicorn's log ends with:\n{tail}") from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        if not stopped:
            fake.stop()
        engine.dispose()


def test_observing_many_amounts_at_once_counts_as_observing_each():
    registry = CollectorRegistry()
    one_by_one, at_once = (Histogram(name, "lags", ["table"], buckets=metrics.LAG_BUCKETS,
                                     registry=registry) for name in ("each", "many"))
    amounts = [0.0, 0.05, 0.1, 0.1000001, 0.25, 0.999, 1.0, 7.5, 1e6, *metrics.LAG_BUCKETS]
    for amount in amounts:
        one_by_one.labels("candles").observe(amount)
    metrics.observe_many(at_once.labels("candles"), amounts)
    samples = {name: [(s.name.removeprefix(name), s.labels, s.value)
                      for metric in registry.collect() if metric.name == name
                      for s in metric.samples if not s.name.endswith("_created")]
               for name in ("each", "many")}
    assert samples["each"] == samples["many"] and len(samples["each"]) > 5


def test_observing_ages_of_stamps_counts_as_observing_each_age():
    registry = CollectorRegistry()
    one_by_one, at_once = (Histogram(name, "lags", ["table"], buckets=metrics.LAG_BUCKETS,
                                     registry=registry) for name in ("each", "since"))
    rng = random.Random(15)
    now = 1_765_000_000.123457
    stamps = [int(now * 1000 - rng.expovariate(1 / 400)) for _ in range(5000)]
    stamps += [int(now * 1000) + 250, int(now * 1000) - 10**9]  # from the future; very old
    for stamp in stamps:
        one_by_one.labels("candles").observe(max(0.0, now - stamp / 1000))
    metrics.observe_since(at_once.labels("candles"), stamps, now)
    samples = {name: {(s.name.removeprefix(name), tuple(s.labels.items())): s.value
                      for metric in registry.collect() if metric.name == name
                      for s in metric.samples if not s.name.endswith("_created")}
               for name in ("each", "since")}
    each, since = samples["each"], samples["since"]
    sums = [key for key in each if key[0] == "_sum"]
    assert since.pop(sums[0]) == pytest.approx(each.pop(sums[0]), rel=1e-9)
    assert each == since and len(each) > 5
    assert 0 < each[("_bucket", (("table", "candles"), ("le", "0.5")))] < len(stamps)
