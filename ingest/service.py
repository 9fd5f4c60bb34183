"""The ingestion service: while this process is the ingest leader, run the feeds.

While leader it runs the Binance spot stream (with its writer and gap repairer) and an
APScheduler 3.x BackgroundScheduler whose jobs come from job factories: functions
`(settings, engine) -> list[JobSpec]`. Another source adds its scheduled work by adding
its factory to DEFAULT_JOB_FACTORIES (or passing `job_factories`). Every thread is a
daemon, and `stop()` ends them in order, flushing the writer. Ingest never imports Dash.

A database outage does not stop the feeds: the elector keeps the leadership until another
process takes the lock, the writer holds rows, and when this process becomes leader (or
re-takes the lock after an outage) it closes the runs left `running` as `interrupted`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from app.config import Settings
from db.engine import make_engine
from ingest.alerts import AlertService
from ingest.binance_rest import BinanceError, BinanceRest, TradingSymbols
from ingest.binance_ws import SpotStream, StreamOptions
from ingest.gaps import GapRepairer, repair_symbol
from ingest.job_queue import job_queue_jobs
from ingest.jobs import JobFactory, JobSpec
from ingest.leader import LeaderElector
from ingest.p2p_jobs import p2p_jobs
from ingest.p2p_poll import POLL_STATS
from ingest.retention import retention_jobs
from ingest.rollups import rollup_jobs
from ingest.runs import close_interrupted
from ingest.writer import DATABASE_ERRORS, Writer

log = logging.getLogger(__name__)

GAP_REPAIR_EVERY_SECONDS = 600


def spot_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """Gap repair of every spot symbol now and then, besides the one after each reconnect."""
    if not settings.spot_symbols:
        return []
    return [JobSpec("spot_gap_repair", repair_spot_gaps, GAP_REPAIR_EVERY_SECONDS, jitter=30,
                    kwargs={"settings": settings, "engine": engine})]


def repair_spot_gaps(settings: Settings, engine: Engine) -> None:
    """Fill missing closed 1m candles of every configured symbol."""
    rest = BinanceRest(settings.endpoints["BINANCE_REST_URL"])
    for symbol in settings.spot_symbols:
        try:
            repair_symbol(engine, rest, symbol, settings.ingest.gap_horizon_minutes)
        except BinanceError as error:
            log.error("scheduled gap repair failed: %s", error, extra={"symbol": symbol})
        except DATABASE_ERRORS as error:
            log.error("scheduled gap repair skipped: the database is unreachable (%s)",
                      str(error).splitlines()[0], extra={"symbol": symbol})
            return


JOBS_STOP_SECONDS = 15.0
DEFAULT_JOB_FACTORIES: tuple[JobFactory, ...] = (spot_jobs, p2p_jobs, retention_jobs,
                                                 rollup_jobs, job_queue_jobs)


def _alerts(settings: Settings, engine: Engine) -> AlertService | None:
    """Alert evaluation and delivery, which run next to ingestion in the leader."""
    return AlertService(settings, engine) if settings.alerts.enabled else None


class _Feeds:
    """What runs while this process leads: writer, gap repairer, stream, scheduler."""

    def __init__(self, settings: Settings, engine: Engine,
                 job_factories: Sequence[JobFactory]) -> None:
        tuning = settings.ingest
        self.writer = Writer.from_settings(engine, tuning)
        rest_url = settings.endpoints["BINANCE_REST_URL"]
        self.repairer = GapRepairer(engine, lambda: BinanceRest(rest_url),
                                    tuning.gap_horizon_minutes)
        self.stream = SpotStream(settings.endpoints["BINANCE_WS_URL"], settings.spot_symbols,
                                 self.writer, engine, StreamOptions.from_settings(tuning),
                                 on_connect=self.repairer.request,
                                 listing=TradingSymbols(rest_url))
        self.alerts = _alerts(settings, engine)
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": 60})
        self.on_stop: list[Callable[[], None]] = []
        for factory in job_factories:
            for job in factory(settings, engine):
                self.scheduler.add_job(**job.add_job_kwargs())
                if job.on_stop is not None:
                    self.on_stop.append(job.on_stop)

    def start(self) -> None:
        self.writer.start()
        self.repairer.start()
        self.stream.start()
        self.scheduler.start()
        if self.alerts is not None:
            self.alerts.start()

    def stop(self) -> None:
        for stop in self.on_stop:
            stop()
        self._stop_scheduler()
        if self.alerts is not None:
            self.alerts.stop()
        self.stream.stop()
        self.repairer.stop()
        self.writer.stop()

    def _stop_scheduler(self) -> None:
        """Start no more jobs and let the running ones end (a P2P poll storing its
        snapshot), for at most JOBS_STOP_SECONDS: the database may go right after."""
        waiter = threading.Thread(target=self.scheduler.shutdown, name="scheduler-stop",
                                  daemon=True)
        waiter.start()
        waiter.join(JOBS_STOP_SECONDS)
        if waiter.is_alive():
            log.warning("scheduled jobs still running after %.0f s: stopping without them",
                        JOBS_STOP_SECONDS)


class IngestService:
    """Leader election plus, while leader, every feed; start() returns at once."""

    def __init__(self, settings: Settings, engine: Engine | None = None,
                 job_factories: Sequence[JobFactory] = DEFAULT_JOB_FACTORIES) -> None:
        assert settings.database_url is not None, "resolve the database before ingesting"
        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.database_url, pool_size=4)
        self.job_factories = tuple(job_factories)
        self.feeds: _Feeds | None = None
        self._lock = threading.Lock()
        self.elector = LeaderElector(settings.database_url, on_elected=self._start_feeds,
                                     on_lost=self._stop_feeds,
                                     on_retaken=self._after_outage,
                                     retry_seconds=settings.ingest.leader_retry_seconds)

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    def start(self) -> IngestService:
        self.elector.start()
        return self

    def stop(self) -> None:
        """Stop every feed (flushing the writer) and give up the leadership."""
        self.elector.stop()
        self._stop_feeds()
        if self._own_engine:
            self.engine.dispose()

    def status(self) -> dict[str, Any]:
        """What this process is doing, for health pages."""
        feeds = self.feeds
        if feeds is None:
            return {"leader": self.is_leader, "feeds": None}
        return {"leader": self.is_leader,
                "leader_lock": self._lock_status(),
                "writer": _writer_status(feeds.writer),
                "p2p_polls": vars(POLL_STATS).copy(),
                "stream": [{"symbols": len(c.symbols), "sessions": c.stats.sessions,
                            "frames": c.stats.frames, "malformed": c.stats.malformed,
                            "last_end": c.stats.last_end} for c in feeds.stream.connections],
                "jobs": sorted(job.id for job in feeds.scheduler.get_jobs()),
                "alerts": feeds.alerts.status() if feeds.alerts is not None else None}

    def _lock_status(self) -> dict[str, Any]:
        elector = self.elector
        return {"held": elector.holds_lock, "outage_since": elector.outage_since,
                "outages": elector.outages, "retakes": elector.retakes}

    def _after_outage(self) -> None:
        """Back from an outage: close what it cut off; let REST fill any candle it cost."""
        self._close_interrupted_runs()
        feeds = self.feeds
        if feeds is not None and self.settings.spot_symbols:
            feeds.repairer.request(self.settings.spot_symbols)

    def _close_interrupted_runs(self) -> None:
        """Close the runs a dead process (or this one, cut off by an outage) left open."""
        try:
            close_interrupted(self.engine)
        except DATABASE_ERRORS as error:
            log.warning("could not close interrupted runs (the next election retries): %s",
                        str(error).splitlines()[0])

    def _start_feeds(self) -> None:
        self._close_interrupted_runs()
        with self._lock:
            if self.feeds is None:
                self.feeds = _Feeds(self.settings, self.engine, self.job_factories)
                self.feeds.start()
                log.info("ingestion started", extra={
                    "spot_symbols": len(self.settings.spot_symbols),
                    "jobs": [job.id for job in self.feeds.scheduler.get_jobs()]})

    def _stop_feeds(self) -> None:
        with self._lock:
            feeds, self.feeds = self.feeds, None
        if feeds is not None:
            feeds.stop()
            log.info("ingestion stopped")


def _writer_status(writer: Writer) -> dict[str, Any]:
    """What the writer holds and has lost, for health pages."""
    stats = writer.stats
    return {"pending": writer.pending, "max_pending": writer.max_pending_rows,
            "database_down_since": stats.outage_since, "outages": stats.outages,
            "inserted": stats.inserted, "dropped": stats.dropped, "rejected": stats.rejected,
            "last_error": stats.last_error}
