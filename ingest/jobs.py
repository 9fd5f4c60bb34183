"""Scheduled ingestion work: a job spec any source can hand to the ingest service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from app.config import Settings


@dataclass(frozen=True)
class JobSpec:
    """Run `func(**kwargs)` every `seconds` (with jitter), never two at once, late runs merged."""

    id: str
    func: Callable[..., Any]
    seconds: float
    jitter: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    run_now: bool = False
    # Called when the feeds stop, before they wait for running jobs: work that outlives
    # one call of `func` (a backfill's thread) ends at its next safe point.
    on_stop: Callable[[], None] | None = None

    def add_job_kwargs(self) -> dict[str, Any]:
        """The arguments of APScheduler 3's add_job for this job."""
        first = {"next_run_time": datetime.now(UTC)} if self.run_now else {}
        return {"func": self.func, "trigger": "interval", "seconds": self.seconds,
                "jitter": self.jitter or None, "id": self.id, "name": self.name or self.id,
                "kwargs": self.kwargs, "max_instances": 1, "coalesce": True,
                "replace_existing": True, "misfire_grace_time": max(1, int(self.seconds)),
                **first}


JobFactory = Callable[[Settings, Engine], list[JobSpec]]
