"""Gap repair: find the closed 1m candles missing within a horizon, and backfill them.

The stream cannot replay what it missed while disconnected (Binance sends nothing twice),
so after every (re)connect, on start, and every few minutes, the candles that should be
there and closed but are not (never stored, or stored open and never closed) are fetched
from REST. A `gap_repair` run records each repair that found something missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import requests
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from db.intervals import MINUTE_MS, from_ms
from ingest.binance_rest import BinanceError, BinanceRest, KlinesRequest, backfill_klines
from ingest.spot_records import EXCHANGE

log = logging.getLogger(__name__)

_MISSING = text("""
    SELECT minute FROM generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz),
                                       interval '1 minute') AS minute
    WHERE NOT EXISTS (SELECT 1 FROM candles
                      WHERE exchange = :exchange AND symbol = :symbol AND interval = '1m'
                        AND open_time = minute AND is_closed)
    ORDER BY minute
""")


def missing_minutes(engine: Engine, symbol: str, first: datetime,
                    last: datetime) -> list[datetime]:
    """Open times from `first` to `last` (inclusive) with no closed 1m candle stored."""
    with engine.connect() as connection:
        return list(connection.scalars(_MISSING, {"first": first, "last": last,
                                                  "exchange": EXCHANGE, "symbol": symbol}))


def repair_symbol(engine: Engine, rest: BinanceRest, symbol: str,
                  horizon_minutes: int) -> dict | None:
    """Backfill the missing closed minutes of the horizon; the report, or None if none."""
    last_closed = from_ms(int(rest.clock() * 1000) // MINUTE_MS * MINUTE_MS - MINUTE_MS)
    first = last_closed - timedelta(minutes=horizon_minutes - 1)
    missing = missing_minutes(engine, symbol, first, last_closed)
    if not missing:
        return None
    request = KlinesRequest(symbol, "1m", missing[0], missing[-1] + timedelta(minutes=1))
    report = backfill_klines(engine, rest, request, kind="gap_repair")
    filled = report["inserted"] + report["updated"]
    metrics.GAP_MINUTES.labels(symbol).inc(filled)
    log.info("gap repair: %d of %d missing minutes filled", filled, len(missing),
             extra={"symbol": symbol})
    return report


class GapRepairer:
    """A daemon thread that repairs the symbols it is asked to, one request at a time."""

    def __init__(self, engine: Engine, rest_factory: Callable[[], BinanceRest],
                 horizon_minutes: int) -> None:
        self.engine = engine
        self.rest_factory = rest_factory
        self.horizon_minutes = horizon_minutes
        self.repairs = 0
        self.failures = 0
        self._pending: dict[str, None] = {}
        self._busy = False
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spot-gap-repair", daemon=True)

    def start(self) -> GapRepairer:
        self._thread.start()
        return self

    def request(self, symbols: Iterable[str]) -> None:
        """Ask for a repair of these symbols (requests for a waiting symbol merge)."""
        with self._lock:
            self._pending.update(dict.fromkeys(symbols))
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no repair is waiting or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending or self._busy:
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        rest = self.rest_factory()
        while True:
            with self._lock:
                while not self._pending and not self._stopping.is_set():
                    self._lock.wait()
                if self._stopping.is_set():
                    return
                symbol = next(iter(self._pending))
                del self._pending[symbol]
                self._busy = True
            self._repair(rest, symbol)
            with self._lock:
                self._busy = False
                self._lock.notify_all()

    def _repair(self, rest: BinanceRest, symbol: str) -> None:
        try:
            repair_symbol(self.engine, rest, symbol, self.horizon_minutes)
            self.repairs += 1
        except (BinanceError, SQLAlchemyError, requests.RequestException, ValueError) as error:
            self.failures += 1
            log.error("gap repair failed; the next reconnect or scheduled repair retries: %s",
                      error, extra={"symbol": symbol})
        except Exception:  # keep the thread: the next request may well succeed
            self.failures += 1
            log.exception("gap repair failed unexpectedly", extra={"symbol": symbol})
