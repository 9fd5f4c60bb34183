"""The Prometheus Alertmanager webhook body (version 4), and its text for chat and e-mail.

Anything that consumes Alertmanager webhooks (PagerDuty bridges, alerta, Karma, a desk's
own bot) then works with p2pdash: `alerts[]` carries `labels` (alertname = the rule's
name, metric, market or symbol, the rule's own labels), `annotations` (`value`: the exact
decimal that caused the transition, `threshold`, `summary`), `startsAt`, `endsAt`,
`generatorURL` (the subject's chart at that moment) and a `fingerprint`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS
from db.alert_model import ALERTING, STATE_LABELS, Rule, RuleState

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(moment: datetime | None) -> str:
    """A UTC time as Alertmanager writes it."""
    if moment is None:
        return ZERO_TIME
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (Alertmanager's fingerprints are too)."""
    text = "\x1f".join(f"{key}\x1e{labels[key]}" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chart_url(base: str, rule: Rule, at: datetime | None) -> str:
    """The subject's chart at the moment: the P2P book then (Depth), or the spot candles."""
    subject = rule.subject
    if subject.market:
        params = {"market": subject.market}
        if at is not None:
            params["at"] = at.isoformat().replace("+00:00", "Z")
        return f"{base}/depth?{urlencode(params)}"
    return f"{base}/candles?{urlencode({'symbol': subject.symbol or '', 'range': '1d'})}"


def summary(rule: Rule, state: RuleState) -> str:
    """One line: 'USDT/ARS spread: p2p.spread_pct of binance:USDT/ARS is 2.4 (> 2)'."""
    value = format(state.value, "f") if isinstance(state.value, Decimal) else "no value"
    if state.state == "nodata":
        return f"{rule.name}: no fresh data for {rule.subject.describe()}"
    if state.state == "error":
        return f"{rule.name}: evaluation failed: {state.error or 'error'}"
    condition = CONDITIONS[rule.condition].label
    return (f"{rule.name}: {rule.metric} of {rule.subject.describe()} is {value} "
            f"({condition} {rule.threshold_text()})")


def alert(rule: Rule, state: RuleState, status: str, base: str,
          now: datetime) -> dict[str, Any]:
    """One entry of alerts[]."""
    labels = rule.all_labels()
    metric = METRICS[rule.metric]
    annotations = {
        "value": format(state.value, "f") if state.value is not None else "",
        "threshold": rule.threshold_text(),
        "summary": summary(rule, state),
        "state": STATE_LABELS[state.state],
        "unit": metric.unit,
        "data_at": iso(state.data_at) if state.data_at else "",
    }
    if state.run_id is not None:
        annotations["run_id"] = str(state.run_id)
    if rule.note:
        annotations["description"] = rule.note
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(state.active_since or state.since or now),
        "endsAt": iso(now) if status == "resolved" else ZERO_TIME,
        "generatorURL": chart_url(base, rule, state.data_at or now),
        "fingerprint": fingerprint(labels),
    }


def webhook_body(rule: Rule, state: RuleState, status: str, *, base: str, receiver: str,
                 now: datetime) -> dict[str, Any]:
    """The Alertmanager webhook body of one rule's notification."""
    entry = alert(rule, state, status, base, now)
    group = {"alertname": rule.name}
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname={rule.name!r}}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": entry["labels"],
        "commonAnnotations": entry["annotations"],
        "externalURL": base,
        "alerts": [entry],
    }


def text_of(body: dict[str, Any]) -> tuple[str, str]:
    """A title and a plain-text body for chat and e-mail channels."""
    entry = body["alerts"][0]
    status = body["status"].upper()
    title = f"[{status}] {entry['labels']['alertname']}"
    lines = [entry["annotations"]["summary"],
             f"state: {entry['annotations']['state']}",
             f"since: {entry['startsAt']}",
             f"chart: {entry['generatorURL']}"]
    if entry["annotations"].get("description"):
        lines.append(entry["annotations"]["description"])
    return title, "\n".join(lines)


def status_of(state: RuleState) -> str:
    """"firing" while alerting, else "resolved"."""
    return "firing" if state.state in ALERTING else "resolved"
