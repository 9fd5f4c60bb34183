"""Benchmark alerting at scale: 10,000 rules over 200 P2P markets and 50 spot symbols.

Prints, each beside a baseline measured in the same run:
1. evaluation time per stored snapshot (the rules of one market, set-based) against the
   same rules evaluated one query per rule;
2. evaluation time per timer cycle (spot and feed rules read afresh, P2P rules on their
   last sample) and per full fresh pass of all 10,000 rules;
3. latency from a snapshot's commit to the webhook's arrival at a loopback receiver,
   p50/p99, through the real leader threads (NOTIFY, evaluator, outbox, sender);
4. notifications delivered per second from the outbox to the loopback receiver, against
   bare HTTP posts of the same body with the same number of threads.

Runs on its own PostgreSQL + TimescaleDB cluster in a temporary directory:
    .venv/bin/python bench/alerts.py [--rules 10000] [--markets 200] [--symbols 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.alerts import service
from app.alerts.metrics import METRICS
from app.alerts.rules import Catalog, parse_rule
from app.auth import commands
from app.config import EXCHANGES, P2PMarket, load_settings
from bench.p2p import fresh_database, scratch_cluster
from db import alerts as store
from ingest.alerts import AlertEngine, AlertService
from ingest.p2p_normalise import Offer, PaymentMethod
from ingest.p2p_store import Snapshot, announce, store_snapshot
from ingest.runs import Run

PRICE = Decimal("1000")
P2P_METRICS = ("p2p.best_ask", "p2p.best_bid", "p2p.spread_pct", "p2p.liquidity_ask",
               "p2p.liquidity_bid")


class Receiver:
    """A keep-alive HTTP receiver on loopback that notes each POST's arrival time."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.arrivals.append((arrived, json.loads(body)))
                    receiver.lock.notify_all()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        with self.lock:
            self.lock.wait_for(lambda: len(self.arrivals) >= count, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def the_markets(count: int) -> list[P2PMarket]:
    return [P2PMarket(EXCHANGES[i % 3], "USDT", f"F{i // 3:03d}") for i in range(count)]


def the_symbols(count: int) -> list[str]:
    return ["BTCUSDT"] + [f"S{i:03d}USDT" for i in range(1, count)]


def book(number: int, best_ask: Decimal, best_bid: Decimal, adverts: int = 20
         ) -> tuple[list[Offer], list[Offer]]:
    def offer(n: int, price: Decimal) -> Offer:
        return Offer(f"ad-{number}-{n}", price, Decimal("500"), Decimal("1000"),
                     Decimal("900000"), f"u{n}", f"trader {n}", n % 3 == 0, 100,
                     Decimal("0.98"), (PaymentMethod("BANK" if n % 2 else "MercadoPagoNew"),),
                     n)
    asks = [offer(n, best_ask + n) for n in range(adverts)]
    bids = [offer(adverts + n, best_bid - n) for n in range(adverts)]
    return asks, bids


def store_book(engine: Engine, market: P2PMarket, at: datetime, ask: Decimal,
               bid: Decimal) -> None:
    run = Run(engine, f"{market.exchange}_p2p", "p2p_poll", str(market), {})
    asks, bids = book(int(at.timestamp() * 1000) % 10**9, ask, bid)
    for side, offers in (("ask", asks), ("bid", bids)):
        store_snapshot(engine, run, Snapshot(market, side, at, offers))
    run.finish()


def seed_data(engine: Engine, markets: list[P2PMarket], symbols: list[str]) -> None:
    now = datetime.now(UTC)
    for market in markets:
        store_book(engine, market, now, PRICE, PRICE - 10)
    with engine.begin() as connection:
        for symbol in symbols:
            params = {"s": symbol, "ts": now}
            connection.execute(text(
                "INSERT INTO tickers_24h (exchange, symbol, ts, last) "
                "VALUES ('binance', :s, :ts, 100)"), params)
            connection.execute(text(
                "INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty) "
                "VALUES ('binance', :s, :ts, 99.99, 1, 100.01, 1)"), params)
            connection.execute(text(
                "INSERT INTO candles SELECT 'binance', :s, '1m', t, 100, 101, 99, 100, 5, "
                "t + interval '59.999 seconds', 10, 500, 2, 200, true "
                "FROM generate_series(date_trunc('minute', CAST(:ts AS timestamptz)) - "
                "interval '2 hours', CAST(:ts AS timestamptz), interval '1 minute') AS t"),
                params)


def rule_data(index: int, markets: list[P2PMarket], symbols: list[str],
              spot_share: float) -> dict[str, Any]:
    """The index-th rule: P2P rules spread over markets and metrics, the rest on spot."""
    rng = random.Random(index)
    if rng.random() >= spot_share:
        metric = P2P_METRICS[index % len(P2P_METRICS)]
        data = {"metric": metric, "market": str(markets[index % len(markets)]),
                "condition": rng.choice([">", "<", "crosses_above", "outside"]),
                "threshold": str(rng.randint(1, 2000))}
        if rng.random() < 0.25:
            data["filters"] = {"amount": str(rng.randint(1000, 800000)),
                               "payment": ["mercadopago"]}
    else:
        metric = rng.choice(["spot.last", "spot.book_spread_bps", "spot.change_pct",
                             "feed.age_seconds"])
        data = {"metric": metric, "symbol": symbols[index % len(symbols)],
                "condition": rng.choice([">", "<"]), "threshold": str(rng.randint(1, 200))}
        if metric == "spot.change_pct":
            data["window_seconds"] = 3600
    if data["condition"] == "outside":
        data.pop("threshold")
        data.update(low="900", high="1100")
    return {"name": f"rule {index}", **data}


def seed_rules(engine: Engine, settings, count: int, markets: list[P2PMarket], *,
               symbols: list[str], hook_url: str) -> tuple[list[int], int]:
    """`count` rules over 20 users, plus one 'hot' best-ask rule per market that notifies
    the receiver; the hot rules' ids and the contact point's id."""
    catalog = Catalog.of(settings)
    users = []
    for n in range(20):
        user = commands.create_user(engine, "bench", f"trader{n}", "a-long-password-1",
                                    "trader")
        users.append(user)
    actor = service.Actor(users[0].id, users[0].username, "trader")
    contact = service.create_contact(engine, settings, actor, {
        "name": "bench hook", "kind": "webhook", "url": hook_url})["id"]
    hot = []
    with engine.begin() as connection:
        for index in range(count - len(markets)):
            draft = parse_rule(rule_data(index, markets, symbols, 0.2), catalog)
            store.create_rule(connection, users[index % 20].id, draft.columns, [])
        for market in markets:
            draft = parse_rule({"name": f"hot {market}", "metric": "p2p.best_ask",
                                "market": str(market), "condition": "<",
                                "threshold": str(PRICE - 50)}, catalog)
            hot.append(store.create_rule(connection, users[0].id, draft.columns, [contact]))
    return hot, contact


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000


def per_rule_baseline(engine: Engine, rules: list[Any]) -> float:
    """The same rules read one query per rule (what set-based evaluation avoids)."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with engine.connect() as connection:
        for rule in rules:
            METRICS[rule.metric].current(connection, [rule.subject], now)
    return time.perf_counter() - started


def bench_evaluation(engine: Engine, settings, markets: list[P2PMarket],
                     rounds: int) -> dict[str, tuple[float, float]]:
    alerts = AlertEngine(settings, engine)
    alerts.evaluate_all()
    out: dict[str, tuple[float, float]] = {}
    snapshot, baseline = [], []
    for n in range(rounds):
        market = markets[(n * 37) % len(markets)]
        store_book(engine, market, datetime.now(UTC), PRICE + n % 3, PRICE - 10)
        started = time.perf_counter()
        alerts.evaluate_markets([str(market)])
        snapshot.append(time.perf_counter() - started)
        rules = [alerts.rules[i] for i in alerts.by_market.get(str(market), [])]
        baseline.append(per_rule_baseline(engine, rules))
    out["snapshot"], out["snapshot_baseline"] = ms(snapshot), ms(baseline)
    out["rules_per_market"] = (len(alerts.rules) and
                               statistics.mean(len(v) for v in alerts.by_market.values()), 0)
    cycle, full = [], []
    for _ in range(max(3, rounds // 5)):
        alerts._last_full = datetime.now(UTC)  # a cycle between two full passes
        started = time.perf_counter()
        alerts.tick()
        cycle.append(time.perf_counter() - started)
    for _ in range(3):
        started = time.perf_counter()
        alerts.evaluate(list(alerts.rules.values()), fresh=True)
        full.append(time.perf_counter() - started)
    spot_rules = [r for r in alerts.rules.values() if METRICS[r.metric].kind != "p2p"]
    out["cycle"], out["full"] = ms(cycle), ms(full)
    out["cycle_baseline"] = ms([per_rule_baseline(engine, spot_rules)])
    out["counts"] = (len(alerts.rules), len(spot_rules))
    return out


def bench_latency(engine: Engine, settings, markets: list[P2PMarket], receiver: Receiver,
                  crossings: int) -> list[float]:
    alerts = AlertService(settings, engine).start()
    time.sleep(2)  # the evaluator loads 10,000 rules and listens
    latencies = []
    try:
        for n in range(crossings):
            market = markets[n % len(markets)]
            for ask in (PRICE - 60, PRICE):  # cross the hot rule's threshold, then back
                seen = len(receiver.arrivals)
                store_book(engine, market, datetime.now(UTC), ask, PRICE - 100)
                committed = time.perf_counter()
                announce(engine, market)
                receiver.wait_for(seen + 1, timeout=10)
                if len(receiver.arrivals) > seen:
                    latencies.append(receiver.arrivals[seen][0] - committed)
    finally:
        alerts.stop()
    return latencies


def bench_throughput(engine: Engine, settings, contact: int, receiver: Receiver,
                     count: int) -> tuple[float, float]:
    """Notifications/s from the outbox with the leader's senders, and bare posts/s."""
    payload = receiver.arrivals[-1][1] if receiver.arrivals else {"version": "4"}
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO notification_outbox (contact_point_id, idempotency_key, kind, payload) "
            "SELECT :c, 'bench-' || n, 'firing', CAST(:p AS jsonb) "
            "FROM generate_series(1, :n) AS n"),
            {"c": contact, "p": json.dumps(payload), "n": count})
    seen = len(receiver.arrivals)
    quiet = replace(settings, alerts=replace(settings.alerts, eval_seconds=3600))
    started = time.perf_counter()
    alerts = AlertService(quiet, engine).start()
    alerts.wake.set()
    receiver.wait_for(seen + count, timeout=600)
    outbox_rate = (len(receiver.arrivals) - seen) / (time.perf_counter() - started)
    alerts.stop()
    body = json.dumps(payload).encode()

    def post(_n: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        session.post(receiver.url, data=body, headers={"Content-Type": "application/json"})

    local = threading.local()
    started = time.perf_counter()
    with ThreadPoolExecutor(settings.alerts.senders) as pool:
        list(pool.map(post, range(count)))
    return outbox_rate, count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--crossings", type=int, default=100)
    parser.add_argument("--notifications", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cluster, root = scratch_cluster()
    receiver = Receiver()
    try:
        engine = fresh_database(cluster, "bench_alerts")
        markets, symbols = the_markets(args.markets), the_symbols(args.symbols)
        settings = load_settings(environ={
            "P2PDASH_ENV": "test", "SECRET_KEY": "b" * 40, "P2PDASH_DATA_DIR": str(root / "v"),
            "DATABASE_URL": cluster.url("bench_alerts"),
            "P2P_MARKETS": ",".join(str(m) for m in markets), "SPOT_SYMBOLS": ",".join(symbols),
            "ALERTS_GROUP_WAIT_SECONDS": "0", "ALERTS_EVAL_SECONDS": "5"}, env_file=None)
        seed_data(engine, markets, symbols)
        _hot, contact = seed_rules(engine, settings, args.rules, markets, symbols=symbols,
                                   hook_url=receiver.url)
        evaluation = bench_evaluation(engine, settings, markets, args.rounds)
        latencies = bench_latency(engine, settings, markets, receiver, args.crossings)
        rates = bench_throughput(engine, settings, contact, receiver, args.notifications)
        engine.dispose()
    finally:
        receiver.close()
        cluster.stop(force=True)
        shutil.rmtree(root, ignore_errors=True)
    print_table(args, evaluation, latencies, rates)


def print_table(args: argparse.Namespace, evaluation: dict[str, Any], latencies: list[float],
                rates: tuple[float, float]) -> None:
    rules, spot = evaluation["counts"]
    print(f"\nAlert evaluation: {rules:,} rules ({spot:,} spot and feed) over {args.markets} "
          f"P2P markets and {args.symbols} symbols; {args.rounds} snapshots")
    print("| pass | set-based p50 ms | p99 ms | one query per rule p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, label in (("snapshot", "one market's rules after its snapshot"),
                        ("cycle", "timer cycle (spot + feed fresh, P2P on last sample)")):
        p50, p99 = evaluation[name]
        b50, b99 = evaluation[f"{name}_baseline"]
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {b50:.1f} | {b99:.1f} |")
    p50, p99 = evaluation["full"]
    print(f"| full fresh pass of every rule | {p50:.1f} | {p99:.1f} | - | - |")
    print(f"\nRules per market: {evaluation['rules_per_market'][0]:.0f}")
    if latencies:
        l50, l99 = ms(latencies)
        print(f"\nSnapshot commit -> webhook arrival, {len(latencies)} notifications "
              f"(firing and resolved of {args.crossings} crossings): p50 {l50:.1f} ms, "
              f"p99 {l99:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print(f"\nNotifications: {rates[0]:,.0f}/s from the outbox (leader's senders) against "
          f"{rates[1]:,.0f}/s bare HTTP posts, {args.notifications} each")


if __name__ == "__main__":
    main()
