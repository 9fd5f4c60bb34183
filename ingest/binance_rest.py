"""Binance spot REST: kline pages kept under the request-weight limit, and idempotent backfill.

The client reads X-MBX-USED-WEIGHT-1M from every answer and waits for the next minute
rather than exceed the limit; 429 waits Retry-After; 5xx and timeouts retry with capped
exponential backoff; 418 (the IP is banned) stops at once with BinanceBanned. Backfill
merges closed candles only (the open one is the stream's), so running it twice inserts
nothing the second time; each backfill is a `runs` row.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import Engine

from app import metrics
from db.bulk import copy_merge
from db.intervals import INTERVALS, bucket_start_ms, from_ms, to_ms
from ingest.runs import Run, start_run
from ingest.spot_records import MalformedFrame, kline_record_from_row
from ingest.writer import MERGES

log = logging.getLogger(__name__)

KLINES_WEIGHT = 2
PAGE = 1000
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
Progress = Callable[[int, int], None]
# should_stop(run, next_ms): asked before each page with where it starts; True stops there.
ShouldStop = Callable[[Run, int], bool]


class BinanceError(RuntimeError):
    """Binance did not give what was asked; the message says what happened."""


class BinanceBanned(BinanceError):
    """Binance answered 418: this IP is banned for a while. Stop, do not retry."""


class BinanceUnavailable(BinanceError):
    """Binance kept failing (5xx, timeouts, 429) after every retry."""


class BinanceRequestError(BinanceError):
    """Binance refused the request itself (a 4xx other than 418 and 429)."""


@dataclass(frozen=True)
class RestPolicy:
    """Timeouts, retries and the weight budget of one client."""

    timeout: float = 10.0
    retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    weight_limit: int = 6000


class BinanceRest:
    """A small Binance spot REST client; one per thread (it keeps the weight it has seen)."""

    def __init__(self, base_url: str, policy: RestPolicy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RestPolicy()
        self.sleep = sleep
        self.clock = clock
        self.session = requests.Session()
        self.used_weight = 0
        self._weight_minute = -1

    def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int,
               limit: int = PAGE) -> list[list[Any]]:
        """One page of /api/v3/klines: candles opening from start_ms to end_ms (inclusive)."""
        params = {"symbol": symbol, "interval": interval, "startTime": start_ms,
                  "endTime": end_ms, "limit": limit}
        return self.get("/api/v3/klines", params, KLINES_WEIGHT)

    def exchange_info(self) -> dict[str, Any]:
        """/api/v3/exchangeInfo: the symbols Binance lists and its rate limits."""
        return self.get("/api/v3/exchangeInfo", {}, 20)

    def get(self, path: str, params: Mapping[str, Any], weight: int) -> Any:
        """GET with the weight budget, waits and retries; return the decoded JSON."""
        attempt = 0
        while True:
            self._respect_weight(weight)
            try:
                response = self.session.get(self.base_url + path, params=params,
                                            timeout=self.policy.timeout)
            except (requests.Timeout, requests.ConnectionError) as error:
                self._back_off(attempt, f"{path}: {error.__class__.__name__}: {error}")
                attempt += 1
                continue
            self._note_weight(response)
            if response.status_code == 200:
                return response.json()
            self._handle_refusal(path, response, attempt)
            attempt += 1

    def _handle_refusal(self, path: str, response: requests.Response, attempt: int) -> None:
        status, message = response.status_code, _binance_message(response)
        if status == 418:
            wait = response.headers.get("Retry-After", "?")
            raise BinanceBanned(f"Binance answered 418 to {path}: this IP is banned "
                                f"(Retry-After {wait} s); stopped without retrying. "
                                f"Binance said: {message}")
        if status == 429:
            if attempt >= self.policy.retries:
                raise BinanceUnavailable(f"Binance kept answering 429 to {path}: {message}")
            wait = _retry_after(response, default=60.0)
            log.warning("Binance answered 429; waiting %.0f s as Retry-After asks", wait,
                        extra={"path": path})
            self.sleep(wait)
            return
        if status >= 500:
            self._back_off(attempt, f"{path}: HTTP {status}: {message}")
            return
        raise BinanceRequestError(f"Binance refused {path} (HTTP {status}): {message}")

    def _back_off(self, attempt: int, reason: str) -> None:
        if attempt >= self.policy.retries:
            raise BinanceUnavailable(f"Binance unavailable after {attempt + 1} attempts: "
                                     f"{reason}")
        delay = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** attempt)
        delay *= random.uniform(0.5, 1.0)
        log.warning("Binance request failed; retrying in %.1f s: %s", delay, reason)
        self.sleep(delay)

    def _respect_weight(self, weight: int) -> None:
        """Wait for the next minute rather than go over the weight limit."""
        now = self.clock()
        if int(now // 60) != self._weight_minute:
            self.used_weight = 0
        if self.used_weight + weight > self.policy.weight_limit:
            wait = 60 - now % 60 + 0.5
            log.info("request weight %d of %d used this minute; waiting %.1f s",
                     self.used_weight, self.policy.weight_limit, wait)
            self.sleep(wait)
            self.used_weight = 0

    def _note_weight(self, response: requests.Response) -> None:
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used and used.isdigit():
            self.used_weight = int(used)
            self._weight_minute = int(self.clock() // 60)


class TradingSymbols:
    """The symbols Binance lists as TRADING (exchangeInfo), asked at most every `ttl_seconds`
    and shared by every stream connection; None while it has never been able to ask.

    Binance acknowledges a SUBSCRIBE to a symbol it does not list and then sends nothing
    for it: a misspelt or delisted symbol would look like a quiet one for ever. Asked with
    a short timeout and one retry, so a REST outage delays a connection by seconds at most
    (and the streams are then subscribed unchecked)."""

    POLICY = RestPolicy(timeout=5.0, retries=1, backoff_base=0.5, backoff_max=1.0)
    MAX_SYMBOLS = 100_000
    RETRY_SECONDS = 60.0

    def __init__(self, rest_url: str, ttl_seconds: float = 3600.0) -> None:
        self.rest_url = rest_url
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._symbols: frozenset[str] | None = None
        self._asked_at = float("-inf")

    def __call__(self) -> frozenset[str] | None:
        with self._lock:
            if time.monotonic() - self._asked_at < self.ttl_seconds:
                return self._symbols
            self._asked_at = time.monotonic()
            try:
                info = BinanceRest(self.rest_url, self.POLICY).exchange_info()
            except (BinanceError, ValueError) as error:  # ValueError: not JSON
                log.warning("cannot ask Binance which symbols it lists (streams are "
                            "subscribed unchecked): %s", error)
                return self._failed()
            listed = _trading(info)
            if listed is None:
                log.warning("Binance's exchangeInfo has no symbol list; streams are "
                            "subscribed unchecked")
                return self._failed()
            self._symbols = listed
            return listed

    def _failed(self) -> frozenset[str] | None:
        """What was known before; asked again in a minute, not in `ttl_seconds`."""
        self._asked_at = time.monotonic() - max(0.0, self.ttl_seconds - self.RETRY_SECONDS)
        return self._symbols


def _trading(info: Any) -> frozenset[str] | None:
    """The TRADING symbols of an exchangeInfo answer; None if it has no symbol list."""
    entries = info.get("symbols") if isinstance(info, dict) else None
    if not isinstance(entries, list) or len(entries) > TradingSymbols.MAX_SYMBOLS:
        return None
    return frozenset(entry["symbol"] for entry in entries
                     if isinstance(entry, dict) and entry.get("status") == "TRADING"
                     and isinstance(entry.get("symbol"), str) and len(entry["symbol"]) <= 20)


def _binance_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason
    if isinstance(body, dict) and "msg" in body:
        return f"{body['msg']} (code {body.get('code')})"
    return str(body)[:200]


def _retry_after(response: requests.Response, default: float) -> float:
    raw = response.headers.get("Retry-After", "")
    return float(raw) if raw.isdigit() else default


class BackfillError(ValueError):
    """A backfill request that cannot run; the message names the parameter."""


class BackfillStopped(RuntimeError):
    """`should_stop` ended a backfill; every page before `next_ms` is stored."""

    def __init__(self, run_id: int, next_ms: int) -> None:
        super().__init__(f"stopped before the page starting at {from_ms(next_ms).isoformat()}")
        self.run_id, self.next_ms = run_id, next_ms


@dataclass(frozen=True)
class KlinesRequest:
    """Which candles to backfill: those of `interval` opening in [start, end)."""

    symbol: str
    interval: str
    start: datetime
    end: datetime

    def validate(self) -> KlinesRequest:
        """Return self if the request makes sense, else raise BackfillError."""
        if not _SYMBOL.match(self.symbol):
            raise BackfillError(f"symbol: {self.symbol!r} is not a symbol like BTCUSDT")
        if self.interval not in INTERVALS:
            raise BackfillError(f"interval: {self.interval!r} is not one of "
                                f"{', '.join(INTERVALS)}")
        if self.end <= self.start:
            raise BackfillError(f"end: {self.end.isoformat()} is not after start "
                                f"{self.start.isoformat()}")
        return self

    def expected_candles(self) -> int:
        """How many candles open in [start, end)."""
        length = INTERVALS[self.interval]
        first = bucket_start_ms(to_ms(self.start) + length - 1, self.interval)
        return max(0, -(-(to_ms(self.end) - first) // length))


@dataclass
class BackfillReport:
    """What a backfill did."""

    request: KlinesRequest
    inserted: int = 0
    updated: int = 0
    duplicates_skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.request.symbol, "interval": self.request.interval,
                "inserted": self.inserted, "duplicates_skipped": self.duplicates_skipped,
                "updated": self.updated, "from": self.request.start.isoformat(),
                "to": self.request.end.isoformat()}


def backfill_klines(engine: Engine, rest: BinanceRest, request: KlinesRequest, *,
                    progress: Progress | None = None,
                    kind: str = "klines_backfill",
                    should_stop: ShouldStop | None = None) -> dict[str, Any]:
    """Fetch and store the closed candles the request names; return the report.

    `progress(done, total)` is called after every page (in candles); a caller such as the
    CLI's progress bar or an admin page can show it. `should_stop(run, next_ms)` is asked
    before every page; True raises BackfillStopped (the run ends failed; its caller may
    restate that) with every earlier page stored, so a later backfill from next_ms resumes.
    """
    request.validate()
    report = BackfillReport(request)
    total = request.expected_candles()
    end_ms, length = to_ms(request.end), INTERVALS[request.interval]
    params = {"symbol": request.symbol, "interval": request.interval,
              "from": request.start.isoformat(), "to": request.end.isoformat(),
              "expected": total}
    with start_run(engine, "binance_rest", kind, request.symbol, params) as run:
        cursor, done = to_ms(request.start), 0
        while cursor < end_ms:
            if should_stop and should_stop(run, cursor):
                raise BackfillStopped(run.id, cursor)
            rows = rest.klines(request.symbol, request.interval, cursor, end_ms - 1)
            _store_page(engine, run, report, rows, int(rest.clock() * 1000))
            done = min(total, done + len(rows))
            run.save_counts()  # progress any process can read from the runs row
            if progress:
                progress(done, total)
            if len(rows) < PAGE:
                break
            cursor = int(rows[-1][0]) + length
        if progress:
            progress(total, total)
    return report.as_dict()


def _store_page(engine: Engine, run: Run, report: BackfillReport, rows: list[list[Any]],
                now_ms: int) -> None:
    records = []
    for row in rows:
        try:
            records.append(kline_record_from_row(report.request.symbol,
                                                 report.request.interval, row, now_ms))
        except MalformedFrame as error:
            run.add(rejected=1)
            run.error(f"kline row rejected: {error}", str(row))
    closed = [record.row for record in records if record.row["is_closed"]]
    spec = MERGES["candles"]
    with engine.begin() as connection:
        result = copy_merge(connection, spec.table, closed, key=spec.key, update=spec.update,
                            only_if=spec.only_if)
    run.add(received=len(rows), inserted=result.inserted, duplicates=result.skipped)
    metrics.count_merge("candles", result.inserted, result.updated, result.skipped)
    report.inserted += result.inserted
    report.updated += result.updated
    report.duplicates_skipped += result.skipped
