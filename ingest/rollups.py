"""The leader's rollup jobs: the 1h and 1d candles of every streamed symbol, and the hourly
aggregates of every P2P market's snapshots (polled or pushed)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine

from app.config import Settings
from db import p2p_rollups, rollups
from ingest.jobs import JobSpec
from ingest.writer import DATABASE_ERRORS

log = logging.getLogger(__name__)
EVERY_SECONDS = 600


def rollup_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """Roll up every EVERY_SECONDS, redoing what gap repair or late pushes may still change."""
    jobs = [JobSpec("p2p_rollups", roll_up_p2p, EVERY_SECONDS, jitter=30,
                    kwargs={"engine": engine, "recent": p2p_rollups.RECOMPUTED})]
    if settings.spot_symbols:
        # Gap repair refills up to its horizon back; a day's bucket needs its whole day.
        recent = timedelta(minutes=settings.ingest.gap_horizon_minutes) + timedelta(days=1,
                                                                                    hours=1)
        jobs.append(JobSpec("candle_rollups", roll_up, EVERY_SECONDS, jitter=30, kwargs={
            "engine": engine, "symbols": settings.spot_symbols, "recent": recent}))
    return jobs


def roll_up_p2p(engine: Engine, recent: timedelta) -> int:
    """Refresh the hourly P2P aggregates; return the rows written."""
    try:
        written = p2p_rollups.refresh(engine, recent=recent)
    except DATABASE_ERRORS as error:
        log.error("P2P rollups skipped: the database is unreachable (%s)",
                  str(error).splitlines()[0])
        return 0
    log.info("P2P hourly rollups refreshed: %d rows", written)
    return written


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
