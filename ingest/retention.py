"""The leader's retention job: cut each table to its keep time, as a run that says what went."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from app.config import Settings
from db import retention
from ingest.jobs import JobSpec
from ingest.runs import start_run

log = logging.getLogger(__name__)
SOURCE = "retention"


def retention_jobs(settings: Settings, engine: Engine) -> list[JobSpec]:
    """Retention every RETENTION_EVERY_MINUTES, first a minute or so after leading starts."""
    keep = {table: days for table, days in settings.retention.keep_days.items() if days > 0}
    if not keep:
        return []
    return [JobSpec("retention", run_retention, settings.retention.every_minutes * 60,
                    jitter=30, kwargs={"engine": engine, "keep_days": keep})]


def run_retention(engine: Engine, keep_days: dict[str, int]) -> list[retention.Dropped]:
    """Apply retention once, recorded as a `retention` run with what each table lost."""
    with start_run(engine, SOURCE, "retention", params={"keep_days": keep_days}) as run:
        dropped = retention.apply(engine, keep_days)
        run.note({"dropped": [item.as_dict() for item in dropped]})
    for item in dropped:
        log.info("retention: %s lost %d chunks, about %d rows, before %s", item.table,
                 len(item.chunks), item.rows, item.cutoff.isoformat(),
                 extra={"run_id": run.id, "table": item.table})
    return dropped
