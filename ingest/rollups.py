"""The leader's rollup job: keep the 1h and 1d candle rollups of every streamed symbol."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine

from app.config import Settings
from db import rollups
from ingest.jobs import JobSpec
from ingest.writer import DATABASE_ERRORS

log = logging.getLogger(__name__)
EVERY_SECONDS = 600


def rollup_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """Roll up every EVERY_SECONDS, redoing what gap repair may still change."""
    if not settings.spot_symbols:
        return []
    # Gap repair refills up to its horizon back; a day's bucket needs its whole day.
    recent = timedelta(minutes=settings.ingest.gap_horizon_minutes) + timedelta(days=1, hours=1)
    return [JobSpec("candle_rollups", roll_up, EVERY_SECONDS, jitter=30, kwargs={
        "engine": engine, "symbols": settings.spot_symbols, "recent": recent})]


def roll_up(engine: Engine, symbols: tuple[str, ...], recent: timedelta) -> int:
    """Refresh the rollups of each symbol; return the rows written."""
    written = 0
    for symbol in symbols:
        try:
            written += rollups.refresh(engine, symbol, recent=recent)
        except DATABASE_ERRORS as error:
            log.error("rollups skipped: the database is unreachable (%s)",
                      str(error).splitlines()[0], extra={"symbol": symbol})
            break
    log.info("candle rollups refreshed: %d rows", written, extra={"symbols": len(symbols)})
    return written
