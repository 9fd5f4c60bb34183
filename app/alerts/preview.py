"""Preview: replay a rule over stored data, the way the live evaluator would have run it.

"Would have fired 3 times in the last 24 h", with the moments and the alerting periods:
how a trader picks a threshold that is not noise. The replay steps the same state machine
(app/alerts/machine.py) over the metric's stored series (the metric registry's `series`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from app.alerts.conditions import Observed, holds
from app.alerts.machine import Observation, step
from app.alerts.metrics import METRICS
from db.alert_model import ALERTING, FIRING, Rule, RuleState, Sample

SPANS = {"1d": timedelta(days=1), "1w": timedelta(days=7)}
WIDTHS = {"1d": timedelta(minutes=1), "1w": timedelta(minutes=5)}


@dataclass
class Preview:
    """A rule replayed: the series, the moments it would have fired, its alerting periods."""

    samples: list[Sample] = field(default_factory=list)
    firings: list[datetime] = field(default_factory=list)
    periods: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.firings)


def reference_at(samples: Sequence[Sample], times: Sequence[datetime],
                 at: datetime) -> Decimal | None:
    """The value of the last sample at or before `at`."""
    index = bisect.bisect_right(times, at) - 1
    return samples[index].value if index >= 0 else None


def replay(rule: Rule, samples: Sequence[Sample]) -> Preview:
    """Step the state machine over `samples` (oldest first)."""
    preview = Preview(samples=list(samples))
    times = [sample.at for sample in samples]
    window = timedelta(seconds=rule.window_seconds or 0)
    state = RuleState()
    for sample in samples:
        reference = (reference_at(samples, times, sample.at - window)
                     if rule.window_seconds else None)
        truth = holds(rule, Observed(sample.value, state.value, state.last_true, reference))
        after = step(rule, state, sample.at, Observation(truth=truth, sample=sample))
        if after.state == FIRING and state.state not in ALERTING:
            preview.firings.append(sample.at)
            preview.periods.append((sample.at, None))
        elif after.state not in ALERTING and state.state in ALERTING and preview.periods:
            preview.periods[-1] = (preview.periods[-1][0], sample.at)
        state = after
    return preview


def preview(engine: Engine, rule: Rule, span: str = "1d", *,
            now: datetime | None = None) -> Preview:
    """Replay `rule` over the last day ("1d") or week ("1w") of stored data."""
    now = now or datetime.now(UTC)
    length, width = SPANS[span], WIDTHS[span]
    window = timedelta(seconds=rule.window_seconds or 0)
    samples = METRICS[rule.metric].series(engine, rule.subject, now - length - window, now,
                                          width)
    result = replay(rule, samples)
    start = now - length
    result.samples = [sample for sample in result.samples if sample.at >= start]
    result.firings = [moment for moment in result.firings if moment >= start]
    result.periods = [(a, b) for a, b in result.periods if b is None or b >= start]
    return result
