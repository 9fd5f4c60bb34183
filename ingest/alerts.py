"""Alert evaluation and delivery, run by the ingest leader only (never by web workers).

- AlertEngine evaluates rules set-based (one query per metric and batch of subjects): the
  rules of a market as soon as a snapshot of it is stored (the pollers and the push API
  NOTIFY p2pdash_snapshot), and every rule on a short timer (ALERTS_EVAL_SECONDS) for spot
  data, NoData, `for` and keep-firing periods and repeats. State changes, their transitions
  and the outbox rows that notify about them commit in one transaction.
- Sender threads deliver due outbox rows, each claimed FOR UPDATE SKIP LOCKED and marked
  sent in the transaction holding its lock: a crash before the mark sends it again after the
  restart (each request carries an Idempotency-Key), a crash before the state change
  commits sends nothing. Failures retry with backoff, honouring 429 and Retry-After.
- AlertService wires both to threads: a LISTEN connection, the timer, the senders.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.alerts.channels import Message
from app.alerts.conditions import Observed, holds
from app.alerts.machine import Observation, plan, step
from app.alerts.metrics import METRICS
from app.alerts.payload import summary, text_of, webhook_body
from app.alerts.service import external_url, send_to, silenced
from app.config import Settings
from db import alerts as store
from db.alert_model import Rule, RuleState, Sample
from ingest.leader import KEEPALIVE, libpq_url
from ingest.p2p_store import SNAPSHOT_CHANNEL

log = logging.getLogger(__name__)

SPOT_NODATA_SECONDS = 60
FULL_PASS_SECONDS = 60
# Notifications one sender claims per transaction (their rows stay locked while it sends).
SEND_BATCH = 20
SEND_BATCH_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 300


def utcnow() -> datetime:
    return datetime.now(UTC)


class AlertEngine:
    """Rules and their states in memory (this process is their only writer while it leads),
    evaluated in batches; every batch's changes are stored in one transaction."""

    def __init__(self, settings: Settings, engine: Engine, *,
                 clock: Callable[[], datetime] = utcnow,
                 on_queued: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.on_queued = on_queued
        self.base = external_url(settings)
        self.rules: dict[int, Rule] = {}
        self.states: dict[int, RuleState] = {}
        self.silences: list[dict[str, Any]] = []
        self.by_market: dict[str, list[int]] = {}
        self._references: dict[tuple, Any] = {}
        self._last_full: datetime | None = None

    def reload(self) -> None:
        """Load the enabled rules, their stored states and the silences in force."""
        with self.engine.connect() as connection:
            loaded = store.enabled_rules(connection)
            self.silences = store.active_silences(connection, self.clock())
        # While this process leads it is the states' only writer: what it holds is newest.
        states = {rule.id: self.states.get(rule.id) or state for rule, state in loaded}
        self.rules = {rule.id: rule for rule, _state in loaded}
        self.states = states
        self.by_market = {}
        for rule in self.rules.values():
            for market in METRICS[rule.metric].markets(rule.subject):
                self.by_market.setdefault(market, []).append(rule.id)

    def evaluate_all(self) -> store.Evaluation:
        """Reload, then evaluate every enabled rule on fresh data now."""
        self.reload()
        return self.evaluate(list(self.rules.values()), fresh=True)

    def evaluate_markets(self, markets: Iterable[str]) -> store.Evaluation:
        """Evaluate the rules whose metric reads any of these P2P markets."""
        ids = sorted({rule_id for market in markets for rule_id in self.by_market.get(market, ())})
        return self.evaluate([self.rules[rule_id] for rule_id in ids], fresh=True)

    def tick(self) -> store.Evaluation:
        """The timer's pass: spot and feed rules on fresh data; P2P rules on the sample
        their last snapshot gave (their value changes only with a new snapshot), for NoData,
        `for`, keep-firing and repeats."""
        now = self.clock()
        with self.engine.connect() as connection:
            self.silences = store.active_silences(connection, now)
        # Now and then every rule is read afresh: a missed notification costs a minute.
        fresh = self._last_full is None or \
            (now - self._last_full).total_seconds() >= FULL_PASS_SECONDS
        if fresh:
            self._last_full = now
        return self.evaluate(list(self.rules.values()), fresh=fresh)

    def evaluate(self, rules: Sequence[Rule], *, fresh: bool) -> store.Evaluation:
        """Evaluate `rules` now and store what changed."""
        now = self.clock()
        batch = store.Evaluation()
        if not rules:
            return batch
        reuse = {} if fresh else self._stored_samples(rules)
        queried = [rule for rule in rules if rule.id not in reuse]
        samples, errors = self._read(queried, now)
        for rule in rules:
            self._evaluate_rule(batch, rule, now, reuse=reuse, samples=samples, errors=errors)
        self._persist(batch, now)
        metrics.ALERT_EVALUATIONS.inc(len(batch.evaluated))
        for transition in batch.transitions:
            metrics.ALERT_TRANSITIONS.labels(transition.to_state).inc()
        return batch

    def _stored_samples(self, rules: Sequence[Rule]) -> dict[int, Sample | None]:
        """The last sample of each P2P rule (None when its last snapshot gave no value):
        only a new snapshot changes it, and that is evaluated when it is stored."""
        out: dict[int, Sample | None] = {}
        for rule in rules:
            state = self.states.get(rule.id, RuleState())
            if METRICS[rule.metric].kind == "p2p" and state.error is None:
                out[rule.id] = (Sample(state.value, state.data_at, state.run_id)
                                if state.data_at is not None and state.value is not None
                                else None)
        return out

    def _read(self, rules: Sequence[Rule], now: datetime
              ) -> tuple[dict[int, Sample], dict[int, str]]:
        """Each rule's sample: one query per metric for all its subjects."""
        by_metric: dict[str, list[Rule]] = {}
        for rule in rules:
            by_metric.setdefault(rule.metric, []).append(rule)
        samples: dict[int, Sample] = {}
        errors: dict[int, str] = {}
        for name, group in by_metric.items():
            subjects = list(dict.fromkeys(rule.subject for rule in group))
            try:
                with self.engine.connect() as connection:
                    found = METRICS[name].current(connection, subjects, now)
            except SQLAlchemyError as error:
                message = f"{name}: {error.__class__.__name__}: {getattr(error, 'orig', error)}"
                log.error("alert metric query failed", extra={"metric": name,
                                                              "error": message[:300]})
                errors.update({rule.id: message[:300] for rule in group})
                continue
            samples.update({rule.id: found[rule.subject] for rule in group
                            if rule.subject in found})
        return samples, errors

    def nodata_age(self, rule: Rule) -> float | None:
        """How old a rule's data may be before it counts as NoData (None: never)."""
        if rule.nodata_seconds:
            return rule.nodata_seconds
        kind = METRICS[rule.metric].kind
        if kind == "p2p":
            return 3 * self.settings.p2p_poll_seconds + 30
        return SPOT_NODATA_SECONDS if kind == "spot" else None

    def _observe(self, rule: Rule, state: RuleState, now: datetime, *, sample: Sample | None,
                 reused: bool, error: str | None) -> Observation | None:
        """What this evaluation saw; None while a new rule waits for its first data."""
        if error is not None:
            return Observation(error=error)
        age = self.nodata_age(rule)
        if sample is None and state.data_at is None and state.state == "normal" and \
                state.since is not None and \
                (now - state.since).total_seconds() < (age or SPOT_NODATA_SECONDS):
            return None  # a rule younger than its NoData age is not "no data" yet
        if sample is None or (age is not None and (now - sample.at).total_seconds() > age):
            return Observation(stale=True, sample=sample)
        if reused:
            return Observation(truth=state.last_true, sample=sample)
        reference = self._reference(rule, now) if rule.condition == "change_pct" else None
        # The same data point again compares equal to itself: no second crossing.
        truth = holds(rule, Observed(sample.value, state.value, state.last_true, reference))
        return Observation(truth=truth, sample=sample)

    def _reference(self, rule: Rule, now: datetime) -> Any:
        """The metric's value one window before now (change_pct), cached per minute."""
        window = timedelta(seconds=rule.window_seconds or 3600)
        key = (rule.metric, rule.subject, rule.window_seconds, int(now.timestamp() // 60))
        if key not in self._references:
            if len(self._references) > 10_000:
                self._references.clear()
            at = now - window
            series = METRICS[rule.metric].series(self.engine, rule.subject,
                                                 at - timedelta(minutes=10),
                                                 at + timedelta(seconds=1),
                                                 timedelta(minutes=1))
            self._references[key] = series[-1].value if series else None
        return self._references[key]

    def _settled(self, rule: Rule, state: RuleState, sample: Sample | None,
                 now: datetime) -> bool:
        """Whether a rule on its last sample cannot change now: Normal on data still fresh
        (only Pending, Recovering, alerting states and ageing data move with time)."""
        if state.state != "normal" or sample is None:
            return False
        age = self.nodata_age(rule)
        return age is None or (now - sample.at).total_seconds() <= age

    def _evaluate_rule(self, batch: store.Evaluation, rule: Rule, now: datetime, *,
                       reuse: dict[int, Sample | None], samples: dict[int, Sample],
                       errors: dict[int, str]) -> None:
        before = self.states.get(rule.id, RuleState())
        reused = rule.id in reuse
        sample = reuse[rule.id] if reused else samples.get(rule.id)
        if reused and self._settled(rule, before, sample, now):
            return
        observation = self._observe(rule, before, now, sample=sample, reused=reused,
                                    error=errors.get(rule.id))
        batch.evaluated.append(rule.id)
        if observation is None:
            return
        after = step(rule, before, now, observation)
        quiet = silenced(rule, self.silences, now)
        after, kind = plan(rule, before, after, now, silenced=quiet)
        transition = None
        if after.state != before.state:
            transition = len(batch.transitions)
            batch.transitions.append(store.Transition(
                rule_id=rule.id, at=now, from_state=before.state, to_state=after.state,
                value=after.value, threshold=rule.threshold_text(), data_at=after.data_at,
                run_id=after.run_id, silenced=quiet, message=summary(rule, after)[:500]))
        if kind is not None:
            self._queue(batch, rule, (before, after), kind=kind, now=now, transition=transition)
        if after != before:
            batch.states[rule.id] = after
        self.states[rule.id] = after

    def _queue(self, batch: store.Evaluation, rule: Rule, change: tuple[RuleState, RuleState],
               *, kind: str, now: datetime, transition: int | None) -> None:
        """An outbox row per contact point; a first firing waits the group wait."""
        before, after = change
        period = (after.active_since if after.alerting else before.active_since) or now
        prefix = f"r{rule.id}:{period.isoformat()}:"
        status = "resolved" if kind == "resolved" else "firing"
        wait = self.settings.alerts.group_wait_seconds if kind == "firing" else 0
        suffix = {"firing": "firing", "resolved": "resolved"}.get(
            kind, f"{kind}:{now.isoformat()}")
        if kind == "resolved":
            batch.withdraw[rule.id] = prefix + "firing:"
        shown = after if after.alerting else replace(after, active_since=before.active_since)
        for contact_id in rule.contact_ids:
            payload = webhook_body(rule, shown, status, base=self.base,
                                   receiver=f"contact-{contact_id}", now=now)
            batch.outgoing.append(store.Outgoing(
                rule_id=rule.id, contact_point_id=contact_id,
                idempotency_key=f"{prefix}{suffix}:c{contact_id}", kind=status,
                payload=payload, due_at=now + timedelta(seconds=wait), transition=transition))

    def _persist(self, batch: store.Evaluation, now: datetime) -> None:
        with self.engine.begin() as connection:
            for rule_id, prefix in batch.withdraw.items():
                if store.withdraw_firing(connection, rule_id, prefix, now):
                    # It flapped inside the group wait: nothing was sent, so nothing resolves.
                    batch.outgoing = [item for item in batch.outgoing
                                      if not (item.rule_id == rule_id and item.kind == "resolved")]
            store.save_evaluation(connection, batch, now)
        if batch.outgoing and self.on_queued is not None:
            self.on_queued()


class Sender:
    """Delivers due outbox rows, one per transaction, each locked while it is sent."""

    def __init__(self, settings: Settings, engine: Engine, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def send_one(self) -> bool:
        """Deliver the next due notifications (a small batch); False when none is due."""
        with self.engine.begin() as connection:
            rows = store.claim_due(connection, self.clock(), SEND_BATCH)
            if not rows:
                return False
            contacts: dict[int, Any] = {}
            attempts, outcome, delivered = [], {}, []
            started = time.monotonic()
            for row in rows:
                if time.monotonic() - started > SEND_BATCH_SECONDS:
                    break  # a slow receiver: the rest go back to the queue, unlocked
                if row.contact_point_id not in contacts:
                    contacts[row.contact_point_id] = store.contact_secret(
                        connection, row.contact_point_id)
                title, body = text_of(row.payload)
                message = Message(row.payload, title, body, row.idempotency_key)
                result = send_to(self.settings, contacts[row.contact_point_id], message)
                attempts.append({"outbox_id": row.id, "ok": result.ok,
                                 "status_code": result.status_code,
                                 "response": result.response, "duration_ms": result.duration_ms})
                outcome[row.contact_point_id] = result
                delivered.append(self._finish(connection, row, result))
            store.record_attempts(connection, attempts)
            for contact_id, result in sorted(outcome.items()):
                store.mark_contact(connection, contact_id, result.ok, result.error)
        for status in delivered:  # committed: count them
            metrics.ALERT_NOTIFICATIONS.labels(status).inc()
        return True

    def _finish(self, connection: Any, row: Any, result: Any) -> str:
        """Record how a delivery went; return its outcome: sent, failed or retry."""
        if result.ok:
            store.finish_outbox(connection, row.id, status="sent")
            return "sent"
        error = result.error or "failed"
        attempts = row.attempts + 1
        if result.permanent or attempts >= self.settings.alerts.max_attempts:
            store.finish_outbox(connection, row.id, status="failed", error=error)
            log.error("notification failed for good", extra={
                "outbox_id": row.id, "rule_id": row.rule_id, "attempts": attempts,
                "error": error[:200]})
            return "failed"
        delay = min(MAX_BACKOFF_SECONDS, 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, 3600))
        store.finish_outbox(connection, row.id, status="retry", error=error,
                            retry_at=self.clock() + timedelta(seconds=delay))
        log.warning("notification failed; will retry", extra={
            "outbox_id": row.id, "attempts": attempts, "retry_in_s": round(delay, 1),
            "error": error[:200]})
        return "retry"

    def send_due(self) -> int:
        """Deliver every due notification now; how many were tried."""
        count = 0
        while self.send_one():
            count += 1
        return count


class AlertService:
    """The evaluator thread (LISTEN plus timer) and the sender threads of the leader."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.wake = threading.Event()
        self.engine = AlertEngine(settings, engine, on_queued=self.wake.set)
        self.sender = Sender(settings, engine)
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._evaluate_loop, name="alerts-evaluate",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._send_loop, name=f"alerts-send-{n}",
                                           daemon=True)
                          for n in range(settings.alerts.senders)]

    def status(self) -> dict[str, Any]:
        """Rules evaluated and alerting now, for health pages."""
        states = list(self.engine.states.values())
        return {"rules": len(self.engine.rules),
                "alerting": sum(1 for state in states if state.alerting),
                "evaluator_alive": self._threads[0].is_alive()}

    def start(self) -> AlertService:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.sender.send_one():
                    continue
            except Exception:  # a broken row or a database outage must not end the thread
                log.exception("alert sender failed")
                self._stopping.wait(2)
            self.wake.wait(1.0)
            self.wake.clear()

    def _evaluate_loop(self) -> None:
        url = libpq_url(self.settings.database_url or "")
        while not self._stopping.is_set():
            try:
                with psycopg.connect(url, autocommit=True, application_name="p2pdash-alerts",
                                     **KEEPALIVE) as connection:
                    connection.execute(f"LISTEN {SNAPSHOT_CHANNEL}")
                    connection.execute(f"LISTEN {store.RULES_CHANNEL}")
                    self._listen(connection)
            except (psycopg.Error, SQLAlchemyError) as error:
                log.warning("alert evaluator lost its database connection: %s",
                            str(error).strip()[:300])
            except Exception:
                log.exception("alert evaluation failed")
            self._stopping.wait(2)

    def _listen(self, connection: psycopg.Connection) -> None:
        self.engine.reload()
        self.engine.tick()
        period = self.settings.alerts.eval_seconds
        next_tick = time.monotonic() + period
        while not self._stopping.is_set():
            # Wake at least every second, so stop() is never kept waiting.
            wait = min(1.0, next_tick - time.monotonic())
            markets, reload = self._notifications(connection, wait)
            if reload:
                self.engine.reload()
            if markets:
                self.engine.evaluate_markets(markets)
            if time.monotonic() >= next_tick:
                self.engine.tick()
                next_tick = time.monotonic() + period

    def _notifications(self, connection: psycopg.Connection,
                       timeout: float) -> tuple[set[str], bool]:
        markets: set[str] = set()
        reload = False
        for wait, limit in ((max(0.0, timeout), 1), (0.0, 1000)):
            for notice in connection.notifies(timeout=wait, stop_after=limit):
                if notice.channel == SNAPSHOT_CHANNEL:
                    markets.add(notice.payload)
                else:
                    reload = True
            if not markets and not reload:
                break
        return markets, reload
