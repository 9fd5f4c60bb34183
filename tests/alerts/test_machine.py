"""The state machine, the conditions and the preview replay on known series (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.alerts.conditions import Observed, holds
from app.alerts.machine import Observation, plan, step
from app.alerts.preview import replay
from db.alert_model import Rule, RuleState, Sample, Subject

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rule(**fields) -> Rule:
    base = {"id": 1, "user_id": 1, "name": "r", "metric": "p2p.best_ask",
            "subject": Subject(market="binance:USDT/ARS"), "condition": ">",
            "threshold": Decimal("10")}
    return Rule(**{**base, **fields})


def check(condition: str, value: str, previous: str | None = None, was_true: bool = False,
          reference: str | None = None, **fields) -> bool:
    return holds(rule(condition=condition, **fields),
                 Observed(Decimal(value), _number(previous), was_true, _number(reference)))


def _number(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@pytest.mark.parametrize(("condition", "value", "expected"), [
    (">", "10.01", True), (">", "10", False), (">=", "10", True), (">=", "9.99", False),
    ("<", "9.99", True), ("<", "10", False), ("<=", "10", True), ("<=", "10.01", False)])
def test_comparisons(condition, value, expected):
    assert check(condition, value) is expected


def test_crosses_above_needs_a_value_below_first_and_holds_while_above():
    assert check("crosses_above", "11") is False, "first seen above: no crossing"
    assert check("crosses_above", "11", previous="9") is True
    assert check("crosses_above", "10", previous="9.5") is True
    assert check("crosses_above", "12", previous="11", was_true=True) is True
    assert check("crosses_above", "9", previous="11", was_true=True) is False


def test_crosses_below_mirrors_crosses_above():
    assert check("crosses_below", "9", previous="11") is True
    assert check("crosses_below", "9") is False
    assert check("crosses_below", "11", previous="9", was_true=True) is False


def test_bands():
    band = {"low": Decimal("5"), "high": Decimal("10"), "threshold": None}
    assert check("outside", "4.9", **band) and check("outside", "10.1", **band)
    assert not check("outside", "5", **band)
    assert check("inside", "5", **band) and check("inside", "10", **band)
    assert not check("inside", "10.1", **band)


@pytest.mark.parametrize(("direction", "value", "expected"), [
    ("up", "106", True), ("up", "94", False), ("down", "94", True), ("down", "106", False),
    ("either", "94", True), ("either", "106", True), ("either", "104", False)])
def test_change_pct_over_a_window(direction, value, expected):
    assert check("change_pct", value, reference="100", threshold=Decimal("5"),
                 direction=direction, window_seconds=3600) is expected


def test_change_pct_without_a_reference_is_false():
    assert check("change_pct", "200", threshold=Decimal("5"), window_seconds=3600) is False


def run(r: Rule, truths: list[bool | str], every: int = 60) -> list[str]:
    """States after each evaluation: True/False, 'stale' or 'error'."""
    state, out = RuleState(), []
    for index, truth in enumerate(truths):
        now = T0 + timedelta(seconds=every * index)
        sample = Sample(Decimal(index), now)
        if truth == "stale":
            observation = Observation(stale=True)
        elif truth == "error":
            observation = Observation(error="boom")
        else:
            observation = Observation(truth=bool(truth), sample=sample)
        state = step(r, state, now, observation)
        out.append(state.state)
    return out


def test_for_holds_pending_until_the_period_has_passed():
    assert run(rule(for_seconds=120), [True, True, True, False]) == [
        "pending", "pending", "firing", "normal"]
    assert run(rule(for_seconds=120), [True, False, True]) == ["pending", "normal", "pending"]


def test_keep_firing_for_recovers_then_resolves_or_fires_again():
    assert run(rule(keep_firing_for_seconds=120), [True, False, False, False]) == [
        "firing", "recovering", "recovering", "normal"]
    assert run(rule(keep_firing_for_seconds=120), [True, False, True]) == [
        "firing", "recovering", "firing"]


@pytest.mark.parametrize(("mode", "expected"), [
    ("nodata", ["normal", "nodata", "normal"]), ("alerting", ["normal", "firing", "normal"]),
    ("normal", ["normal", "normal", "normal"]), ("keep_last", ["normal", "normal", "normal"])])
def test_nodata_modes(mode, expected):
    assert run(rule(nodata_state=mode), [False, "stale", False]) == expected


def test_keep_last_on_nodata_keeps_firing():
    assert run(rule(nodata_state="keep_last"), [True, "stale", "stale"]) == [
        "firing", "firing", "firing"]


@pytest.mark.parametrize(("mode", "expected"), [
    ("error", ["firing", "error", "firing"]), ("alerting", ["firing", "firing", "firing"]),
    ("normal", ["firing", "normal", "firing"]), ("keep_last", ["firing", "firing", "firing"])])
def test_error_modes(mode, expected):
    assert run(rule(error_state=mode), [True, "error", True]) == expected


def test_the_alerting_period_starts_once_across_alerting_states():
    r = rule()
    firing = step(r, RuleState(), T0, Observation(truth=True, sample=Sample(Decimal(11), T0)))
    later = T0 + timedelta(minutes=5)
    nodata = step(r, firing, later, Observation(stale=True))
    assert firing.active_since == nodata.active_since == T0
    assert nodata.since == later


def notified(r: Rule, steps: list[tuple[bool, bool]], every: int = 60) -> list[str | None]:
    """What plan() sends at each evaluation of (truth, silenced)."""
    state, out = RuleState(), []
    for index, (truth, quiet) in enumerate(steps):
        now = T0 + timedelta(seconds=every * index)
        after = step(r, state, now, Observation(truth=truth, sample=Sample(Decimal(1), now)))
        state, kind = plan(r, state, after, now, silenced=quiet)
        out.append(kind)
    return out


def test_plan_sends_a_firing_once_then_a_resolved():
    assert notified(rule(), [(True, False), (True, False), (False, False), (False, False)]) == [
        "firing", None, "resolved", None]


def test_plan_repeats_at_the_repeat_interval():
    kinds = notified(rule(repeat_seconds=120), [(True, False)] * 5)
    assert kinds == ["firing", None, "repeat", None, "repeat"]


def test_plan_sends_nothing_while_silenced_and_fires_when_the_silence_ends():
    kinds = notified(rule(), [(True, True), (True, True), (True, False), (False, False)])
    assert kinds == [None, None, "firing", "resolved"]
    assert notified(rule(), [(True, True), (False, True)]) == [None, None]


def test_replay_counts_each_time_the_rule_would_have_fired():
    values = [9, 11, 12, 9, 8, 13, 9, 11]
    samples = [Sample(Decimal(v), T0 + timedelta(minutes=i)) for i, v in enumerate(values)]
    preview = replay(rule(), samples)
    assert preview.count == 3
    assert preview.firings == [T0 + timedelta(minutes=m) for m in (1, 5, 7)]
    assert preview.periods[0] == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert preview.periods[-1] == (T0 + timedelta(minutes=7), None)
    assert replay(rule(for_seconds=120), samples).count == 0
