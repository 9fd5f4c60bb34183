"""Backfills started from the admin tab: one background thread each, progress in its run row.

The run row (kind klines_backfill) holds the counts after every page and the expected total
in its params, so every web process can show the progress, not only the one that started it.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, text

from app.config import Settings
from db import rollups
from ingest.binance_rest import BackfillError, BinanceError, BinanceRest, KlinesRequest
from ingest.binance_rest import backfill_klines as run_backfill

log = logging.getLogger(__name__)


class BackfillBusy(RuntimeError):
    """A backfill of the same symbol and interval is already running."""


def _already_running(engine: Engine, request: KlinesRequest) -> bool:
    with engine.connect() as connection:
        return bool(connection.scalar(text(
            "SELECT count(*) FROM runs WHERE kind = 'klines_backfill' AND status = 'running' "
            "AND params->>'symbol' = :symbol AND params->>'interval' = :interval "
            "AND started_at > now() - interval '1 day'"),
            {"symbol": request.symbol, "interval": request.interval}))


def start_backfill(settings: Settings, engine: Engine, request: KlinesRequest) -> threading.Thread:
    """Check the request, then backfill it in a daemon thread; raise if it cannot start."""
    request.validate()
    if _already_running(engine, request):
        raise BackfillBusy(f"a {request.symbol} {request.interval} backfill is running already")
    rest = BinanceRest(settings.endpoints["BINANCE_REST_URL"])

    def work() -> None:
        try:
            report = run_backfill(engine, rest, request)
            log.info("backfill done", extra=report)
            # Late data: the rollups of every bucket the backfill touched are redone.
            rollups.recompute(engine, request.symbol, request.start, request.end)
        except (BinanceError, BackfillError) as error:
            log.error("backfill failed: %s", error, extra={"symbol": request.symbol})

    thread = threading.Thread(target=work, name=f"backfill-{request.symbol}", daemon=True)
    thread.start()
    return thread
