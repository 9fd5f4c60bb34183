"""The rule state machine, pure: one evaluation in, the next state (and what to send) out.

States as Grafana names them: Normal; Pending (the condition holds, for less than the
rule's `for`); Firing; Recovering (the condition stopped holding, for less than
`keep_firing_for`); NoData (no fresh data within the stated age); Error (the query failed).
NoData and Error handling is per rule: go to that state, count as alerting (the condition
holds), count as normal, or keep the last state. The live evaluator and the preview (which
replays stored data) step through the same functions, so a preview shows what live would do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from db.alert_model import (
    ALERTING,
    ERROR,
    FIRING,
    NODATA,
    NORMAL,
    PENDING,
    RECOVERING,
    Rule,
    RuleState,
    Sample,
)


@dataclass(frozen=True)
class Observation:
    """One evaluation's input: whether the condition holds for the sample, or that the
    data is stale (NoData), or that evaluating failed (Error)."""

    truth: bool = False
    sample: Sample | None = None
    stale: bool = False
    error: str | None = None


def step(rule: Rule, state: RuleState, now: datetime, observation: Observation) -> RuleState:
    """The state after one evaluation at `now`."""
    if observation.error is not None:
        mode, special = rule.error_state, ERROR
    elif observation.stale:
        mode, special = rule.nodata_state, NODATA
    else:
        return _advance(rule, _seen(state, observation), now, observation.truth)
    state = replace(state, error=observation.error)
    if mode == "keep_last":
        return state
    if mode in ("alerting", "normal"):
        return _advance(rule, state, now, mode == "alerting")
    return _enter(state, special, now)


def _seen(state: RuleState, observation: Observation) -> RuleState:
    sample = observation.sample
    if sample is None:
        return replace(state, last_true=observation.truth, error=None)
    return replace(state, value=sample.value, data_at=sample.at, run_id=sample.run_id,
                   last_true=observation.truth, error=None)


def _advance(rule: Rule, state: RuleState, now: datetime, truth: bool) -> RuleState:
    current = state.state
    if truth:
        if current in (FIRING, RECOVERING):
            target = FIRING
        elif current == PENDING:
            held = _elapsed(state.condition_since, now)
            target = FIRING if held >= rule.for_seconds else PENDING
        else:
            target = FIRING if rule.for_seconds == 0 else PENDING
    elif current == FIRING:
        target = RECOVERING if rule.keep_firing_for_seconds > 0 else NORMAL
    elif current == RECOVERING:
        held = _elapsed(state.condition_since, now)
        target = NORMAL if held >= rule.keep_firing_for_seconds else RECOVERING
    else:
        target = NORMAL
    return _enter(state, target, now)


def _elapsed(start: datetime | None, now: datetime) -> float:
    return 0.0 if start is None else (now - start).total_seconds()


def _enter(state: RuleState, target: str, now: datetime) -> RuleState:
    """Move to `target` (no change when already there), keeping the alerting period's
    start across alerting states and the pending/recovering start while it lasts."""
    if state.state == target:
        return state
    alerting = target in ALERTING
    active_since = (state.active_since if state.alerting else now) if alerting else None
    condition_since = now if target in (PENDING, RECOVERING) else None
    return replace(state, state=target, since=now, active_since=active_since,
                   condition_since=condition_since)


def _alerting_kind(rule: Rule, before: RuleState, after: RuleState,
                   now: datetime) -> str | None:
    if not after.notified:
        return "firing"
    if before.alerting and FIRING_KIND[before.state] != FIRING_KIND[after.state]:
        return "update"
    last = after.last_notified_at
    if last is not None and (now - last).total_seconds() >= rule.repeat_seconds:
        return "repeat"
    return None


FIRING_KIND = {FIRING: FIRING, RECOVERING: FIRING, NODATA: NODATA, ERROR: ERROR}


def plan(rule: Rule, before: RuleState, after: RuleState, now: datetime, *,
         silenced: bool) -> tuple[RuleState, str | None]:
    """What to notify after a step: "firing" (a first firing of the alerting period, or
    one after a silence ended), "update" (firing became NoData or Error, or back), "repeat"
    (still alerting after the repeat interval), "resolved", or None; and the state with
    its notification marks. Silenced rules notify nothing (their transitions are stored)."""
    if after.alerting:
        kind = None if silenced else _alerting_kind(rule, before, after, now)
        if kind is None:
            return after, None
        return replace(after, notified=True, last_notified_at=now), kind
    if before.alerting and after.notified:
        return replace(after, notified=False), None if silenced else "resolved"
    return (replace(after, notified=False) if after.notified else after), None
