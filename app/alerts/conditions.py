"""The condition registry: whether a rule's condition holds for a value.

A condition is one function `(rule, observed) -> bool`; adding one is adding a function
with @condition. `Observed` carries what the stateful ones need: the previous value and
whether the condition held then (crossings), and the value one window ago (change_pct).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from db.alert_model import Rule


@dataclass(frozen=True)
class Observed:
    """A value with its context: the value before it, whether the condition held then,
    and the value `window_seconds` ago (for change_pct)."""

    value: Decimal
    previous: Decimal | None = None
    was_true: bool = False
    reference: Decimal | None = None


@dataclass(frozen=True)
class Condition:
    """A registered condition and which rule fields it needs."""

    name: str
    check: Callable[[Rule, Observed], bool]
    label: str
    band: bool = False
    window: bool = False


CONDITIONS: dict[str, Condition] = {}


def condition(name: str, label: str, *, band: bool = False,
              window: bool = False) -> Callable[[Callable], Callable]:
    """Register a condition under `name`."""

    def register(check: Callable[[Rule, Observed], bool]) -> Callable[[Rule, Observed], bool]:
        CONDITIONS[name] = Condition(name, check, label, band, window)
        return check

    return register


def holds(rule: Rule, observed: Observed) -> bool:
    """Whether `rule`'s condition holds for the observed value."""
    return CONDITIONS[rule.condition].check(rule, observed)


def _threshold(rule: Rule) -> Decimal:
    assert rule.threshold is not None, f"rule {rule.id} has no threshold"
    return rule.threshold


@condition(">", "is above")
def _above(rule: Rule, observed: Observed) -> bool:
    return observed.value > _threshold(rule)


@condition(">=", "is at or above")
def _at_or_above(rule: Rule, observed: Observed) -> bool:
    return observed.value >= _threshold(rule)


@condition("<", "is below")
def _below(rule: Rule, observed: Observed) -> bool:
    return observed.value < _threshold(rule)


@condition("<=", "is at or below")
def _at_or_below(rule: Rule, observed: Observed) -> bool:
    return observed.value <= _threshold(rule)


@condition("crosses_above", "crosses above")
def _crosses_above(rule: Rule, observed: Observed) -> bool:
    """True from a sample at or above the threshold that follows one below it (wherever
    between two evaluations the crossing happened), while the value stays at or above.
    A value that was already above when first seen is no crossing."""
    threshold = _threshold(rule)
    if observed.value < threshold:
        return False
    crossed = observed.previous is not None and observed.previous < threshold
    return crossed or observed.was_true


@condition("crosses_below", "crosses below")
def _crosses_below(rule: Rule, observed: Observed) -> bool:
    """The mirror of crosses_above."""
    threshold = _threshold(rule)
    if observed.value > threshold:
        return False
    crossed = observed.previous is not None and observed.previous > threshold
    return crossed or observed.was_true


def _band(rule: Rule) -> tuple[Decimal, Decimal]:
    assert rule.low is not None and rule.high is not None, f"rule {rule.id} has no band"
    return rule.low, rule.high


@condition("outside", "is outside the band", band=True)
def _outside(rule: Rule, observed: Observed) -> bool:
    low, high = _band(rule)
    return observed.value < low or observed.value > high


@condition("inside", "is inside the band", band=True)
def _inside(rule: Rule, observed: Observed) -> bool:
    low, high = _band(rule)
    return low <= observed.value <= high


def change_pct(value: Decimal, reference: Decimal | None) -> Decimal | None:
    """The change from `reference` to `value` in % of the reference (None without one)."""
    if reference is None or reference == 0:
        return None
    return (value - reference) / abs(reference) * 100


@condition("change_pct", "changes by more than", window=True)
def _changes(rule: Rule, observed: Observed) -> bool:
    """The value moved by at least `threshold` % against its value one window ago, in the
    rule's direction (up, down or either)."""
    change = change_pct(observed.value, observed.reference)
    if change is None:
        return False
    limit = abs(_threshold(rule))
    direction = rule.direction or "either"
    if direction == "up":
        return change >= limit
    if direction == "down":
        return change <= -limit
    return abs(change) >= limit
