"""One poll of one P2P market: both sides, each a snapshot, the whole poll one run.

Each side is stamped with the moment its book was read: when the answer to its last page
arrived, however long the request hung before. A side whose paging breaks off is kept as
an incomplete snapshot (visible, but never counted in metrics) and the run fails naming
the cause; a side already stored stays. With the database down a poll cannot open its run
and is skipped; a book read but not stored is lost: both are counted (POLL_STATS) and
logged, and a run cut off this way is closed as `interrupted` by the leader later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.config import P2PMarket, Settings
from ingest import binance_p2p, bybit_p2p, okx_p2p
from ingest.p2p_http import ExchangeClient, P2PFetchError
from ingest.p2p_normalise import SIDES
from ingest.p2p_store import Snapshot, announce, normalise_adverts, store_snapshot
from ingest.runs import Run

log = logging.getLogger(__name__)

CONNECTORS: dict[str, ModuleType] = {"binance": binance_p2p, "okx": okx_p2p, "bybit": bybit_p2p}


@dataclass
class PollStats:
    """Polls of this process lost to a database outage."""

    skipped: int = 0  # could not open their run: nothing was fetched
    lost_snapshots: int = 0  # a side read from the exchange but not stored


POLL_STATS = PollStats()


@dataclass(frozen=True)
class PollResult:
    """How a poll ended: its run, the run's status and, when it failed, why."""

    run_id: int | None  # None when the poll was skipped (no run could be opened)
    status: str
    error: str | None = None


@dataclass
class Poll:
    """One poll in progress: the market, its run and the HTTP client."""

    settings: Settings
    engine: Engine
    market: P2PMarket
    run: Run
    client: ExchangeClient

    @property
    def connector(self) -> ModuleType:
        return CONNECTORS[self.market.exchange]

    def side(self, side: str) -> None:
        """Read one side page by page and store it; keep what was read if paging breaks."""
        adverts: list[Any] = []
        try:
            for page in self.connector.fetch_pages(self.client, self.market, side,
                                                   self.settings.p2p_depth,
                                                   self.settings.p2p_page_rows):
                adverts.extend(page)
        except P2PFetchError:
            if adverts:
                self.store(side, adverts, complete=False)
            raise
        self.store(side, adverts, complete=True)

    def store(self, side: str, adverts: list[Any], complete: bool) -> None:
        """Normalise (rejecting malformed adverts) and store one side as a snapshot."""
        captured_at = self.client.answered_at or datetime.now(UTC)
        self.run.add(received=len(adverts))
        try:
            offers = normalise_adverts(self.run, self.connector.normalise, self.market, side,
                                       adverts)
            snapshot = Snapshot(self.market, side, captured_at, offers, complete)
            result = store_snapshot(self.engine, self.run, snapshot)
        except SQLAlchemyError:
            POLL_STATS.lost_snapshots += 1
            log.error("P2P snapshot LOST: the database did not take it", extra={
                "run_id": self.run.id, "market": str(self.market), "side": side,
                "captured_at": captured_at.isoformat(), "adverts": len(adverts),
                "lost_snapshots": POLL_STATS.lost_snapshots})
            raise
        log.info("P2P snapshot stored", extra={
            "run_id": self.run.id, "market": str(self.market), "side": side,
            "complete": complete, "inserted": result.inserted, "duplicates": result.duplicates})


def poll_market(settings: Settings, engine: Engine, market: P2PMarket) -> PollResult:
    """Poll both sides of `market` once and record the poll as a p2p_poll run (and in
    the metrics: its status and how long it took)."""
    started, status = time.monotonic(), "error"
    try:
        result = _poll_market(settings, engine, market)
        status = result.status
        return result
    finally:
        metrics.P2P_POLLS.labels(market.exchange, str(market), status).inc()
        metrics.P2P_POLL_SECONDS.labels(market.exchange).observe(time.monotonic() - started)


def _poll_market(settings: Settings, engine: Engine, market: P2PMarket) -> PollResult:
    source = CONNECTORS[market.exchange].SOURCE
    params = {"depth": settings.p2p_depth, "page_rows": settings.p2p_page_rows}
    try:
        run = Run(engine, source, "p2p_poll", str(market), params)
    except SQLAlchemyError as error:
        return _skipped(market, error)
    try:
        with ExchangeClient.for_settings(settings, market.exchange) as client:
            poll = Poll(settings, engine, market, run, client)
            for side in SIDES:
                poll.side(side)
    except P2PFetchError as error:
        message = f"{error.__class__.__name__}: {error}"
        run.finish("failed", error=message)
        announce(engine, market)
        log.error("P2P poll failed", extra={"run_id": run.id, "market": str(market),
                                            "error": message})
        return PollResult(run.id, "failed", message)
    except Exception as error:
        run.finish("failed", error=f"{error.__class__.__name__}: {error}"[:1000])
        raise
    status = run.finish()
    announce(engine, market)
    return PollResult(run.id, status)


def _skipped(market: P2PMarket, error: SQLAlchemyError) -> PollResult:
    """A poll that could not open its run (the database is down): count it, say so."""
    POLL_STATS.skipped += 1
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    log.error("P2P poll SKIPPED: the database is unreachable", extra={
        "market": str(market), "error": reason, "skipped_polls": POLL_STATS.skipped})
    return PollResult(None, "skipped", reason)
