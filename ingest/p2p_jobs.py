"""Scheduling hook: the APScheduler jobs that poll every configured P2P market.

The ingestion service (with its leader election) adds these with
`scheduler.add_job(**spec.add_job_kwargs())`; each job polls one market every
P2P_POLL_SECONDS, with jitter so markets do not fire together, never two at once
(max_instances=1), and a backlog of missed runs collapses into one (coalesce).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from app.config import Settings
from ingest.p2p_poll import poll_market


@dataclass(frozen=True)
class JobSpec:
    """One interval job, as keyword arguments of APScheduler 3's add_job."""

    id: str
    name: str
    func: Callable[..., Any]
    seconds: int
    jitter: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def add_job_kwargs(self) -> dict[str, Any]:
        """The arguments of scheduler.add_job for this job (first run: now)."""
        return {"func": self.func, "trigger": "interval", "seconds": self.seconds,
                "jitter": self.jitter or None, "id": self.id, "name": self.name,
                "kwargs": self.kwargs, "max_instances": 1, "coalesce": True,
                "replace_existing": True, "misfire_grace_time": self.seconds,
                "next_run_time": datetime.now(UTC)}


def p2p_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """One polling job per market in P2P_MARKETS."""
    return [JobSpec(id=f"p2p_poll:{market}", name=f"P2P poll {market}", func=poll_market,
                    seconds=settings.p2p_poll_seconds,
                    jitter=min(settings.p2p_jitter_seconds, settings.p2p_poll_seconds // 2),
                    kwargs={"settings": settings, "engine": engine, "market": market})
            for market in settings.p2p_markets]
