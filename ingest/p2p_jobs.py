"""Scheduling hook: the APScheduler jobs that poll every configured P2P market.

The ingestion service (with its leader election) adds these with
`scheduler.add_job(**spec.add_job_kwargs())`; each job polls one market every
P2P_POLL_SECONDS, with jitter so markets do not fire together, never two at once
(max_instances=1), and a backlog of missed runs collapses into one (coalesce).
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.config import Settings
from ingest.jobs import JobSpec
from ingest.p2p_poll import poll_market


def p2p_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """One polling job per market in P2P_MARKETS."""
    return [JobSpec(id=f"p2p_poll:{market}", name=f"P2P poll {market}", func=poll_market,
                    seconds=settings.p2p_poll_seconds,
                    jitter=min(settings.p2p_jitter_seconds, settings.p2p_poll_seconds // 2),
                    kwargs={"settings": settings, "engine": engine, "market": market},
                    run_now=True)
            for market in settings.p2p_markets]
