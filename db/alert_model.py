"""The alerting vocabulary shared by the API, the pages, the evaluator and the database.

It lives in db/ beside db/markets.py and db/intervals.py, so that db/alerts.py reads and
writes rules and states without importing app/ (every layer may import db/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from db.p2p_query import OfferFilter

NORMAL, PENDING, FIRING, RECOVERING, NODATA, ERROR = (
    "normal", "pending", "firing", "recovering", "nodata", "error")
STATES = (NORMAL, PENDING, FIRING, RECOVERING, NODATA, ERROR)
# States in which the rule counts as alerting: a firing notification went (or goes) out.
ALERTING = frozenset({FIRING, RECOVERING, NODATA, ERROR})
STATE_LABELS = {NORMAL: "Normal", PENDING: "Pending", FIRING: "Firing",
                RECOVERING: "Recovering", NODATA: "NoData", ERROR: "Error"}

# What a rule does when its subject has no fresh data, or its query fails.
NODATA_MODES = ("nodata", "alerting", "normal", "keep_last")
ERROR_MODES = ("error", "alerting", "normal", "keep_last")
DIRECTIONS = ("up", "down", "either")
SEVERITIES = ("info", "warning", "critical")

DEFAULT_REPEAT_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Subject:
    """What a metric is measured on: a P2P market (with offer filters), a second market
    (cross spread), a spot symbol, or a window (change over time). Hashable: rules on the
    same subject share one row of a set-based query."""

    market: str | None = None
    other: str | None = None
    symbol: str | None = None
    window_seconds: int | None = None
    amount: Decimal | None = None
    payment: tuple[str, ...] = ()
    merchant_only: bool = False
    min_completion: Decimal | None = None

    @property
    def offer_filter(self) -> OfferFilter:
        """The offer filters as the views' queries take them."""
        return OfferFilter(self.amount, self.payment, self.merchant_only, self.min_completion)

    def describe(self) -> str:
        """The subject as people read it: 'binance:USDT/ARS (200000 ARS, mercadopago)'."""
        base = self.symbol or self.market or ""
        if self.other:
            base = f"{self.market} vs {self.other}"
        extras = []
        if self.amount is not None:
            extras.append(f"{format(self.amount, 'f')} {base.rsplit('/', 1)[-1]}")
        if self.payment:
            extras.append(",".join(self.payment))
        if self.merchant_only:
            extras.append("merchants")
        if self.min_completion is not None:
            extras.append(f"completion >= {format(self.min_completion, 'f')}")
        return f"{base} ({', '.join(extras)})" if extras else base


@dataclass(frozen=True)
class Sample:
    """A metric's value for a subject, the time of the data behind it and the run that
    brought that data (None for spot data, which comes from the stream)."""

    value: Decimal
    at: datetime
    run_id: int | None = None


@dataclass(frozen=True)
class Rule:
    """An alert rule as the evaluator and the pages use it (db/alerts.py reads it)."""

    id: int
    user_id: int
    name: str
    metric: str
    subject: Subject
    condition: str
    threshold: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    direction: str | None = None
    window_seconds: int | None = None
    for_seconds: int = 0
    keep_firing_for_seconds: int = 0
    repeat_seconds: int = DEFAULT_REPEAT_SECONDS
    nodata_seconds: int | None = None
    nodata_state: str = "nodata"
    error_state: str = "error"
    labels: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    enabled: bool = True
    muted_until: datetime | None = None
    contact_ids: tuple[int, ...] = ()
    owner: str = ""

    def threshold_text(self) -> str:
        """The threshold as the notification and the history show it."""
        if self.low is not None and self.high is not None:
            return f"{format(self.low, 'f')}..{format(self.high, 'f')}"
        return format(self.threshold, "f") if self.threshold is not None else ""

    def all_labels(self) -> dict[str, str]:
        """The rule's labels plus alertname, metric and its subject: what silences and
        Alertmanager receivers match on."""
        labels = {"alertname": self.name, "metric": self.metric, "rule_id": str(self.id),
                  **self.labels}
        subject = self.subject
        if subject.market:
            exchange, _, pair = subject.market.partition(":")
            labels.update(market=subject.market, exchange=exchange, pair=pair)
        if subject.other:
            labels["other_market"] = subject.other
        if subject.symbol:
            labels["symbol"] = subject.symbol
        return labels


def jsonable_subject(subject: Subject) -> dict[str, Any]:
    """The subject's fields as the rule JSON names them (None and empty fields left out)."""
    out: dict[str, Any] = {}
    for key in ("market", "other", "symbol", "window_seconds"):
        if getattr(subject, key) is not None:
            out[key] = getattr(subject, key)
    return out


def jsonable_filters(subject: Subject) -> dict[str, Any]:
    """The offer filters as the rule JSON names them."""
    out: dict[str, Any] = {}
    if subject.amount is not None:
        out["amount"] = format(subject.amount, "f")
    if subject.payment:
        out["payment"] = list(subject.payment)
    if subject.merchant_only:
        out["merchant_only"] = True
    if subject.min_completion is not None:
        out["min_completion"] = format(subject.min_completion, "f")
    return out


@dataclass(frozen=True)
class RuleState:
    """Where a rule stands: its state and since when, the start of its alerting period
    (startsAt), the start of a pending or recovering stretch, the last value seen (with
    its data time and run), whether the condition held, and what was notified."""

    state: str = NORMAL
    since: datetime | None = None
    active_since: datetime | None = None
    condition_since: datetime | None = None
    value: Decimal | None = None
    data_at: datetime | None = None
    run_id: int | None = None
    last_true: bool = False
    notified: bool = False
    last_notified_at: datetime | None = None
    error: str | None = None

    @property
    def alerting(self) -> bool:
        return self.state in ALERTING
