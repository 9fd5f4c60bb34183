"""Prometheus metrics: the one module that defines every metric p2pdash exports, and /metrics.

Every name starts with `p2pdash_`. The code that does the work counts it (the writer, the
pollers, the stream, gap repair, the leader, the web hooks below, the alerting engine, the
exports) through the objects and small helpers here; label values come from bounded sets
only (tables, exchanges, configured markets and symbols, url rules, callback outputs), never
from raw paths, user names or ids.

Under gunicorn (several worker processes) set PROMETHEUS_MULTIPROC_DIR and start gunicorn
with `-c python:app.gunicorn_conf`: each process then writes its values to files there
(prometheus_client's multiprocess mode), any worker's /metrics adds them up, the directory
is emptied when gunicorn starts, and a worker that exits is marked dead, so counters
neither reset nor pile up and the gauges of dead workers go away.

What the database knows (live sessions, the age of each feed's newest row) is read when
/metrics is scraped, by collectors whose answers are kept a few seconds, so frequent
scrapes cost the database one small query each few seconds.

/metrics wants `Authorization: Bearer $P2PDASH_METRICS_TOKEN` when that is set (compared in
constant time; 401 otherwise); without a token it answers loopback callers only (403).
"""

from __future__ import annotations

import atexit
import bisect
import collections
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

# prometheus_client picks its mode from this variable when it is first imported; reading
# it here, at the same moment, keeps this module and the client in agreement.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    Path(MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

from flask import Flask, Response, current_app, g, request  # noqa: E402
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from app import state  # noqa: E402
from app.config import Settings  # noqa: E402

log = logging.getLogger(__name__)

# Our metrics live in a registry of their own (never the client's global one), so /metrics
# shows p2pdash_ names only. In multiprocess mode the values are in files; this registry
# then only holds the objects.
REGISTRY = CollectorRegistry(auto_describe=True)
SCRAPE_CACHE_SECONDS = 5.0
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
POLL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
WEB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def _counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


def _gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    # livesum: the sum over the live processes (a dead worker's value goes with it).
    return Gauge(name, documentation, labels, registry=REGISTRY, multiprocess_mode="livesum")


def _histogram(name: str, documentation: str, labels: Sequence[str],
               buckets: Sequence[float]) -> Histogram:
    return Histogram(name, documentation, labels, registry=REGISTRY, buckets=buckets)


# -- ingest --------------------------------------------------------------------------------
WS_FRAMES = _counter("p2pdash_ws_frames_received_total",
                     "Stream frames received (data frames, not pings)", ["exchange"])
WS_MALFORMED = _counter("p2pdash_ws_frames_malformed_total",
                        "Stream frames that did not parse, skipped", ["exchange"])
WS_CONNECTIONS = _counter("p2pdash_ws_connections_total",
                          "Stream WebSocket connections opened", ["exchange"])
WS_OPEN = _gauge("p2pdash_ws_open_connections", "Stream WebSocket connections open now",
                 ["exchange"])
WS_RECONNECTS = _counter("p2pdash_ws_reconnects_total",
                         "Stream reconnects (after a session ended or a connect failed)",
                         ["exchange"])
P2P_POLLS = _counter("p2pdash_p2p_polls_total", "P2P polls by how they ended",
                     ["exchange", "market", "status"])
P2P_POLL_SECONDS = _histogram("p2pdash_p2p_poll_duration_seconds",
                              "Time one P2P poll (both sides) took", ["exchange"], POLL_BUCKETS)
ROWS_WRITTEN = _counter("p2pdash_ingest_rows_written_total",
                        "Rows new to a table, committed", ["table"])
ROWS_UPDATED = _counter("p2pdash_ingest_rows_updated_total",
                        "Stored rows updated by a newer record (a live candle)", ["table"])
ROWS_DUPLICATE = _counter("p2pdash_ingest_rows_duplicate_total",
                          "Rows already stored, left as they were", ["table"])
ROWS_DROPPED = _counter("p2pdash_ingest_rows_dropped_total",
                        "Rows the writer dropped (buffer full while the database was down)",
                        ["table"])
ROWS_REJECTED = _counter("p2pdash_ingest_rows_rejected_total",
                         "Rows the database refused as bad data, skipped", ["table"])
PENDING_ROWS = _gauge("p2pdash_ingest_pending_rows", "Rows the writer holds, not yet written")
INGEST_LAG = _histogram("p2pdash_ingest_lag_seconds",
                        "From the exchange's event time to the commit of the row", ["table"],
                        LAG_BUCKETS)
GAP_MINUTES = _counter("p2pdash_gap_repair_minutes_filled_total",
                       "Missing closed 1m candles filled from REST by gap repair", ["symbol"])
LEADER = _gauge("p2pdash_ingest_leader", "1 in the process that is the ingest leader")

# -- web -----------------------------------------------------------------------------------
HTTP_REQUESTS = _counter("p2pdash_http_requests_total", "HTTP requests by route and status",
                         ["method", "route", "status"])
HTTP_SECONDS = _histogram("p2pdash_http_request_duration_seconds",
                          "Time to the response's headers, by route", ["route"], WEB_BUCKETS)
CALLBACK_SECONDS = _histogram("p2pdash_dash_callback_duration_seconds",
                              "Time a Dash callback took, by its output", ["callback"],
                              WEB_BUCKETS)
CACHE_HITS = _counter("p2pdash_cache_hits_total", "Query cache lookups answered", ["query"])
CACHE_MISSES = _counter("p2pdash_cache_misses_total", "Query cache lookups not answered",
                        ["query"])

# -- alerting and export -------------------------------------------------------------------
ALERT_EVALUATIONS = _counter("p2pdash_alert_evaluations_total", "Alert rule evaluations")
ALERT_TRANSITIONS = _counter("p2pdash_alert_transitions_total",
                             "Alert state changes, by the state entered", ["state"])
ALERT_NOTIFICATIONS = _counter("p2pdash_alert_notifications_total",
                               "Notification deliveries: sent, retry (failed, will retry) or "
                               "failed (given up)", ["outcome"])
EXPORT_ROWS = _counter("p2pdash_export_rows_total", "Rows sent by exports",
                       ["dataset", "format"])
EXPORTS = _counter("p2pdash_exports_total", "Exports, by whether they completed",
                   ["dataset", "format", "complete"])


# -- helpers for the code that does the work -----------------------------------------------

def count_merge(table: str, inserted: int, updated: int, duplicates: int) -> None:
    """Count one committed merge into `table`."""
    if inserted:
        ROWS_WRITTEN.labels(table).inc(inserted)
    if updated:
        ROWS_UPDATED.labels(table).inc(updated)
    if duplicates:
        ROWS_DUPLICATE.labels(table).inc(duplicates)


def observe_lag(records: Sequence[Any], committed_at: float) -> None:
    """Observe, per table, each committed record's lag from its exchange event time."""
    for table in {record.table for record in records}:
        stamps = [record.event_ms for record in records
                  if record.table == table and record.event_ms is not None]
        if stamps:
            observe_since(INGEST_LAG.labels(table), stamps, committed_at)


def observe_since(child: Any, stamps_ms: list[int], now: float) -> None:
    """Observe into a histogram's child the age at `now` (epoch s) of each of `stamps_ms`
    (epoch ms; one from the future counts as 0), as observe_many would: the stamps are
    sorted (in C) and each bucket's count is found by bisection, so a batch costs no Python
    per amount. Ages exactly on a bucket bound may fall either side of it by rounding."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        observe_many(child, [max(0.0, now - stamp / 1000) for stamp in stamps_ms])
        return
    stamps = sorted(stamps_ms)
    count = len(stamps)
    below = 0  # ages counted in the buckets before this one
    for index, bound in enumerate(bounds):
        # Ages at most `bound` are the stamps at or after now - bound.
        within = count - bisect.bisect_left(stamps, (now - bound) * 1000)
        if within > below:
            buckets[index].inc(within - below)
            below = within
    past = bisect.bisect_right(stamps, now * 1000)  # the rest are ages of 0
    total.inc(past * now - sum(stamps[:past]) / 1000)


def observe_many(child: Any, amounts: Sequence[float]) -> None:
    """Observe every amount into a histogram's child as that many `observe` calls would,
    with one increment per bucket touched: `observe` takes a lock and walks the buckets in
    Python for each amount, a fifth of the writer's time on a batch of candles. Falls back
    to `observe` should prometheus_client's histogram not be built as this expects."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:
            child.observe(amount)
        return
    # observe() counts an amount in the first bucket whose bound it does not exceed.
    for index, count in collections.Counter(bisect.bisect_left(bounds, amount)
                                            for amount in amounts).items():
        buckets[index].inc(count)
    total.inc(sum(amounts))


def timed_callback(register: Callable[[Callable], Callable],
                   output: str) -> Callable[[Callable], Callable]:
    """Dash's callback decorator, timing each call of the function under `output`."""
    child = CALLBACK_SECONDS.labels(output)

    def decorate(function: Callable) -> Callable:
        @wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                child.observe(time.perf_counter() - started)

        return register(timed)

    return decorate


def count_export(dataset: str, export_format: str, rows: int, complete: bool) -> None:
    """Count one export that ended, and the rows it sent."""
    EXPORT_ROWS.labels(dataset, export_format).inc(rows)
    EXPORTS.labels(dataset, export_format, "true" if complete else "false").inc()


def count_cache_lookup(query: str, hit: bool) -> None:
    """Count one query cache lookup (db.cache calls this through its hook)."""
    (CACHE_HITS if hit else CACHE_MISSES).labels(query).inc()


# -- the web hooks and the route -----------------------------------------------------------

UNMATCHED = "<unmatched>"


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = request.method if rule is not None else "other"
    HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _from_loopback(settings: Settings) -> bool:
    """Whether the caller is on this host: a loopback address that no untrusted proxy
    forwarded (a local reverse proxy connects from loopback on behalf of anyone)."""
    if not settings.trusted_proxies and ("X-Forwarded-For" in request.headers
                                         or "Forwarded" in request.headers):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _refusal() -> Response | None:
    """401 or 403 when the caller may not read the metrics, else None."""
    settings = state.current().settings
    expected = settings.metrics_token
    if expected is None:
        if _from_loopback(settings):
            return None
        return Response("metrics are served to loopback only: set P2PDASH_METRICS_TOKEN\n",
                        403, mimetype="text/plain")
    given = _bearer_token()
    if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return Response("a bearer token is required\n", 401, mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="p2pdash metrics"'})


def serve_metrics():
    """Every p2pdash metric in Prometheus's text format (GET /metrics). Its access rule is
    public: it checks its own bearer token, or that the caller is on loopback."""
    refused = _refusal()
    if refused is not None:
        return refused
    body = generate_latest(_exposition(current_app))
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


class _Exposition:
    """What one scrape shows: the metrics of this process (or, in multiprocess mode, of
    every process) and the database's, through the app's cached collector."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def _exposition(app: Flask) -> _Exposition:
    if MULTIPROC_DIR:
        own: Any = multiprocess.MultiProcessCollector(None, MULTIPROC_DIR)
        return _Exposition(own, app.extensions[EXTENSION])
    return _Exposition(REGISTRY, _PROCESS, app.extensions[EXTENSION])


# CPU, memory and file descriptors of this process; per process, so single-process only.
_PROCESS = ProcessCollector(namespace="p2pdash", registry=None)
EXTENSION = "p2pdash_metrics"


def register(server: Flask) -> None:
    """Serve /metrics, count every request, and read the database's gauges at scrape."""
    from app import access
    from app.logs import register_secret

    app_state = state.current_of(server)
    register_secret(app_state.settings.metrics_token)
    server.extensions[EXTENSION] = DatabaseCollector(app_state.engine, app_state.settings)
    server.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    server.after_request(_count_request)
    server.add_url_rule("/metrics", "metrics", access.public(serve_metrics), methods=["GET"])
    _hook_cache()


def _hook_cache() -> None:
    from db import cache

    cache.on_lookup = count_cache_lookup


def mark_dead(pid: int | None = None) -> None:
    """Drop the live gauges of a process that ended (default: this one, at its exit)."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, MULTIPROC_DIR)


# Any process that ends cleanly (a gunicorn worker, `p2pdash ingest`) takes its live gauges
# with it; gunicorn's child_exit hook does it for a worker that was killed.
atexit.register(mark_dead)


# -- what the database knows, read at scrape time ------------------------------------------

# A user's session that still works (app/auth/sessions.py's rules), and a kiosk device's
# (a row without a user) until it expires or is revoked.
LIVE_SESSIONS = text("""
    SELECT coalesce(u.role, 'device') AS role, count(*) AS sessions
    FROM sessions s LEFT JOIN users u ON u.id = s.user_id
    WHERE s.revoked_at IS NULL AND s.expires_at > now()
      AND (u.id IS NULL OR (u.is_active AND (
           s.remember OR s.last_seen_at > now() - make_interval(mins => :idle_minutes))))
    GROUP BY 1
""")
SESSION_KINDS = ("kiosk", "trader", "analyst", "admin", "device")  # app.access.ROLES


class DatabaseCollector:
    """Live sessions per role and the age of each feed's newest row (as the Status page
    shows it), read when scraped and kept SCRAPE_CACHE_SECONDS."""

    def __init__(self, engine: Engine, settings: Settings,
                 seconds: float = SCRAPE_CACHE_SECONDS) -> None:
        self.engine = engine
        self.settings = settings
        self.seconds = seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.seconds:
                self._families = self._read()
                self._read_at = time.monotonic()
            families = self._families
        yield from families

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("p2pdash_database_up",
                               "1 when the database answered the last scrape's queries")
        try:
            with self.engine.connect() as connection:
                families = [self._sessions(connection), self._freshness(connection)]
        except SQLAlchemyError as error:
            log.warning("metrics: the database did not answer: %s",
                        str(getattr(error, "orig", None) or error).strip().splitlines()[0])
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _sessions(self, connection: Any) -> Metric:
        family = GaugeMetricFamily("p2pdash_active_sessions",
                                   "Sessions that still work, by role ('device': kiosk "
                                   "devices)", labels=["role"])
        found = dict(connection.execute(
            LIVE_SESSIONS, {"idle_minutes": self.settings.session_idle_minutes}).all())
        for role in SESSION_KINDS:
            family.add_metric([role], found.get(role, 0))
        return family

    def _freshness(self, connection: Any) -> Metric:
        family = GaugeMetricFamily(
            "p2pdash_feed_age_seconds", "Age of the newest row of each feed (the Status page's)",
            labels=["exchange", "feed", "symbol", "market"])
        for exchange, feed, symbol, market, newest in feed_times(connection, self.settings):
            family.add_metric([exchange, feed, symbol, market], _age(newest))
        return family


def feed_times(connection: Any, settings: Settings
               ) -> Iterator[tuple[str, str, str, str, datetime]]:
    """(exchange, feed, symbol, market, newest) of every configured feed that has data."""
    from db.alert_metrics import market_times
    from db.spot import LATEST_TIMES

    if settings.spot_symbols:
        rows = connection.execute(LATEST_TIMES, {"symbols": list(settings.spot_symbols),
                                                 "exchange": "binance"}).mappings()
        for row in rows:
            for feed in ("book_ticker", "ticker_24h", "candle_1m"):
                if row[feed] is not None:
                    yield "binance", feed, row["symbol"], "", row[feed]
    for market, (captured_at, _run) in market_times(connection, settings.p2p_markets).items():
        yield market.exchange, "p2p_snapshot", "", f"{market.asset}/{market.fiat}", captured_at


def _age(newest: datetime) -> float:
    return max(timedelta(0), datetime.now(UTC) - newest).total_seconds()
