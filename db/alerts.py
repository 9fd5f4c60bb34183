"""Alerting's data access: rules, states, transitions, contact points, silences, outbox.

The evaluator writes a batch of state changes, their transitions and the outbox rows that
notify about them in one transaction (`save_evaluation`), so a crash loses none and sends
none twice: an outbox row's idempotency_key is unique, and the sender claims rows with
FOR UPDATE SKIP LOCKED, marking each sent in the transaction that holds its lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    Numeric,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from db.alert_model import Rule, RuleState, Subject
from db.schema import (
    alert_events,
    alert_rule_contacts,
    alert_rules,
    alert_states,
    contact_points,
    notification_attempts,
    notification_outbox,
    silences,
    users,
)

RULES_CHANNEL = "p2pdash_rules"
STATE_COLUMNS = ("state", "since", "active_since", "condition_since", "value", "data_at",
                 "run_id", "last_true", "notified", "last_notified_at", "error")


def subject_json(subject: Subject) -> tuple[dict[str, Any], dict[str, Any]]:
    """A subject as the subject and filters JSON columns."""
    from db.alert_model import jsonable_filters, jsonable_subject

    return jsonable_subject(subject), jsonable_filters(subject)


def subject_of(subject: Mapping[str, Any], filters: Mapping[str, Any]) -> Subject:
    """The subject stored in a rule's JSON columns."""
    def number(key: str) -> Decimal | None:
        return Decimal(filters[key]) if filters.get(key) is not None else None
    return Subject(market=subject.get("market"), other=subject.get("other"),
                   symbol=subject.get("symbol"), window_seconds=subject.get("window_seconds"),
                   amount=number("amount"), payment=tuple(filters.get("payment") or ()),
                   merchant_only=bool(filters.get("merchant_only")),
                   min_completion=number("min_completion"))


def rule_of(row: Any, contact_ids: Sequence[int] = ()) -> Rule:
    """A Rule from an alert_rules row (and the ids of its contact points)."""
    return Rule(
        id=row.id, user_id=row.user_id, name=row.name, metric=row.metric,
        subject=subject_of(row.subject, row.filters), condition=row.condition,
        threshold=row.threshold, low=row.low, high=row.high, direction=row.direction,
        window_seconds=row.window_seconds, for_seconds=row.for_seconds,
        keep_firing_for_seconds=row.keep_firing_for_seconds,
        repeat_seconds=row.repeat_seconds, nodata_seconds=row.nodata_seconds,
        nodata_state=row.nodata_state, error_state=row.error_state, labels=dict(row.labels),
        note=row.note, enabled=row.enabled, muted_until=row.muted_until,
        contact_ids=tuple(contact_ids), owner=getattr(row, "owner", "") or "")


def state_of(row: Any) -> RuleState:
    """A RuleState from an alert_states row (or the Normal state of a rule without one)."""
    if row is None or getattr(row, "state", None) is None:
        return RuleState()
    return RuleState(**{column: getattr(row, column) for column in STATE_COLUMNS})


def _rule_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    subject, filters = subject_json(columns["subject"])
    out = {key: value for key, value in columns.items() if key not in ("subject", "filters")}
    return {**out, "subject": subject, "filters": filters}


def _set_contacts(connection: Connection, rule_id: int, contact_ids: Iterable[int]) -> None:
    connection.execute(delete(alert_rule_contacts).where(alert_rule_contacts.c.rule_id == rule_id))
    rows = [{"rule_id": rule_id, "contact_point_id": cid} for cid in dict.fromkeys(contact_ids)]
    if rows:
        connection.execute(insert(alert_rule_contacts), rows)


def notify_rules_changed(connection: Connection) -> None:
    """Tell the evaluator (in the ingest leader, maybe another process) to reload rules."""
    connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": RULES_CHANNEL})


def create_rule(connection: Connection, user_id: int, columns: Mapping[str, Any],
                contact_ids: Sequence[int]) -> int:
    """Store a new rule in Normal state; its id."""
    rule_id = connection.scalar(insert(alert_rules).values(user_id=user_id,
                                                           **_rule_columns(columns))
                                .returning(alert_rules.c.id))
    connection.execute(insert(alert_states).values(rule_id=rule_id))
    _set_contacts(connection, rule_id, contact_ids)
    notify_rules_changed(connection)
    return rule_id


def update_rule(connection: Connection, rule_id: int, columns: Mapping[str, Any],
                contact_ids: Sequence[int]) -> None:
    """Replace a rule's definition (its state stays)."""
    connection.execute(update(alert_rules).where(alert_rules.c.id == rule_id)
                       .values(updated_at=func.now(), **_rule_columns(columns)))
    _set_contacts(connection, rule_id, contact_ids)
    if not columns.get("enabled", True):
        _pause(connection, rule_id)
    notify_rules_changed(connection)


PAUSE = text("""
WITH old AS (SELECT state FROM alert_states WHERE rule_id = :rule AND state <> 'normal'
             FOR UPDATE),
paused AS (
    UPDATE alert_states SET state = 'normal', since = now(), active_since = NULL,
           condition_since = NULL, notified = false, last_true = false
    WHERE rule_id = :rule AND state <> 'normal' RETURNING rule_id)
INSERT INTO alert_events (rule_id, from_state, to_state, message)
SELECT :rule, old.state, 'normal', 'paused: the rule was disabled' FROM old
""")


def _pause(connection: Connection, rule_id: int) -> None:
    """A disabled rule is no longer alerting; its history says why."""
    connection.execute(PAUSE, {"rule": rule_id})


def delete_rule(connection: Connection, rule_id: int) -> None:
    """Delete a rule with its state, history and queued notifications."""
    connection.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
    notify_rules_changed(connection)


def _contacts_by_rule(connection: Connection, rule_ids: Sequence[int] | None
                      ) -> dict[int, list[int]]:
    statement = select(alert_rule_contacts.c.rule_id, alert_rule_contacts.c.contact_point_id)
    if rule_ids is not None:
        statement = statement.where(alert_rule_contacts.c.rule_id.in_(rule_ids))
    out: dict[int, list[int]] = {}
    for rule_id, contact_id in connection.execute(statement.order_by(
            alert_rule_contacts.c.rule_id, alert_rule_contacts.c.contact_point_id)):
        out.setdefault(rule_id, []).append(contact_id)
    return out


def _rules_query(user_id: int | None):
    statement = (select(alert_rules, users.c.username.label("owner"),
                        *[alert_states.c[column] for column in STATE_COLUMNS],
                        alert_states.c.evaluated_at)
                 .join(users, users.c.id == alert_rules.c.user_id)
                 .outerjoin(alert_states, alert_states.c.rule_id == alert_rules.c.id))
    if user_id is not None:
        statement = statement.where(alert_rules.c.user_id == user_id)
    return statement.order_by(alert_rules.c.id)


@dataclass(frozen=True)
class RuleRow:
    """A rule with its live state, as the pages and the API list them."""

    rule: Rule
    state: RuleState
    evaluated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def list_rules(engine: Engine, user_id: int | None = None,
               rule_ids: Sequence[int] | None = None) -> list[RuleRow]:
    """Rules with their states: one user's (None: everyone's), or the given ids."""
    statement = _rules_query(user_id)
    if rule_ids is not None:
        statement = statement.where(alert_rules.c.id.in_(list(rule_ids)))
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
        contacts = _contacts_by_rule(connection, [row.id for row in rows])
    return [RuleRow(rule_of(row, contacts.get(row.id, ())), state_of(row), row.evaluated_at,
                    row.created_at, row.updated_at) for row in rows]


def get_rule(engine: Engine, rule_id: int) -> RuleRow | None:
    """One rule with its state, or None."""
    found = list_rules(engine, rule_ids=[rule_id])
    return found[0] if found else None


def enabled_rules(connection: Connection) -> list[tuple[Rule, RuleState]]:
    """Every enabled rule with its stored state: what the evaluator loads."""
    rows = connection.execute(_rules_query(None).where(alert_rules.c.enabled)).all()
    contacts = _contacts_by_rule(connection, None)
    return [(rule_of(row, contacts.get(row.id, ())), state_of(row)) for row in rows]


def firing_count(engine: Engine, user_id: int | None) -> int:
    """How many of a user's rules (None: all) are alerting now."""
    statement = (select(func.count()).select_from(alert_states)
                 .join(alert_rules, alert_rules.c.id == alert_states.c.rule_id)
                 .where(alert_states.c.state.in_(("firing", "recovering", "nodata", "error")),
                        alert_rules.c.enabled))
    if user_id is not None:
        statement = statement.where(alert_rules.c.user_id == user_id)
    with engine.connect() as connection:
        return connection.scalar(statement) or 0


# ---- evaluation results ------------------------------------------------------------------

@dataclass
class Transition:
    """A state change to store, with the value that caused it."""

    rule_id: int
    at: datetime
    from_state: str
    to_state: str
    value: Decimal | None
    threshold: str
    data_at: datetime | None
    run_id: int | None
    silenced: bool
    message: str


@dataclass
class Outgoing:
    """A notification to queue: one per contact point of the rule."""

    rule_id: int
    contact_point_id: int
    idempotency_key: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    transition: int | None = None  # index into the batch's transitions


@dataclass
class Evaluation:
    """What one evaluation pass changed: states, transitions, notifications, and the rules
    whose queued firing may be withdrawn (they resolved inside the group wait)."""

    states: dict[int, RuleState] = field(default_factory=dict)
    evaluated: list[int] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    withdraw: dict[int, str] = field(default_factory=dict)  # rule id -> group-wait key prefix


def withdraw_firing(connection: Connection, rule_id: int, key_prefix: str,
                    now: datetime) -> int:
    """Cancel a first firing still inside its group wait; how many rows were cancelled.

    A row the sender holds is locked: this waits for its transaction, then sees it sent."""
    result = connection.execute(
        update(notification_outbox)
        .where(notification_outbox.c.rule_id == rule_id,
               notification_outbox.c.idempotency_key.startswith(key_prefix, autoescape=True),
               notification_outbox.c.status == "pending", notification_outbox.c.due_at > now)
        .values(status="cancelled", last_error="withdrawn: resolved within the group wait"))
    return result.rowcount


# Thousands of states in one statement of arrays (a VALUES list would run out of the
# protocol's 65,535 parameters at about 5,000 rules).
UPSERT_STATES = text("""
INSERT INTO alert_states (rule_id, state, since, active_since, condition_since, value, data_at,
                          run_id, last_true, notified, last_notified_at, error, evaluated_at)
SELECT s.*, :now FROM unnest(:rule_id, :state, :since, :active_since, :condition_since,
                             :value, :data_at, :run_id, :last_true, :notified,
                             :last_notified_at, :error) AS s
ON CONFLICT (rule_id) DO UPDATE SET
    state = excluded.state, since = excluded.since, active_since = excluded.active_since,
    condition_since = excluded.condition_since, value = excluded.value,
    data_at = excluded.data_at, run_id = excluded.run_id, last_true = excluded.last_true,
    notified = excluded.notified, last_notified_at = excluded.last_notified_at,
    error = excluded.error, evaluated_at = excluded.evaluated_at
""").bindparams(
    bindparam("rule_id", type_=ARRAY(Integer)), bindparam("state", type_=ARRAY(Text)),
    bindparam("since", type_=ARRAY(DateTime(timezone=True))),
    bindparam("active_since", type_=ARRAY(DateTime(timezone=True))),
    bindparam("condition_since", type_=ARRAY(DateTime(timezone=True))),
    bindparam("value", type_=ARRAY(Numeric)),
    bindparam("data_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("run_id", type_=ARRAY(BigInteger)), bindparam("last_true", type_=ARRAY(Boolean)),
    bindparam("notified", type_=ARRAY(Boolean)),
    bindparam("last_notified_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("error", type_=ARRAY(Text)), bindparam("now", type_=DateTime(timezone=True)))


def save_evaluation(connection: Connection, batch: Evaluation, now: datetime) -> None:
    """Store a pass's state changes, transitions and notifications (one transaction)."""
    if batch.states:
        params = {column: [getattr(state, column) for state in batch.states.values()]
                  for column in STATE_COLUMNS}
        connection.execute(UPSERT_STATES, {**params, "rule_id": list(batch.states), "now": now})
    event_ids: list[int] = []
    if batch.transitions:
        event_ids = list(connection.scalars(
            insert(alert_events).returning(alert_events.c.id, sort_by_parameter_order=True),
            [vars(transition) for transition in batch.transitions]))
    if batch.outgoing:
        rows = [{"rule_id": item.rule_id, "contact_point_id": item.contact_point_id,
                 "idempotency_key": item.idempotency_key, "kind": item.kind,
                 "payload": item.payload, "due_at": item.due_at,
                 "event_id": event_ids[item.transition] if item.transition is not None
                 else None} for item in batch.outgoing]
        connection.execute(pg_insert(notification_outbox)
                           .on_conflict_do_nothing(index_elements=["idempotency_key"]), rows)


# ---- history -----------------------------------------------------------------------------

def events(engine: Engine, *, rule_id: int | None = None, user_id: int | None = None,
           since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Transitions, newest first: of a rule, of a user's rules, or of all."""
    e, r = alert_events.c, alert_rules.c
    statement = (select(e.id, e.rule_id, r.name.label("rule_name"), r.metric, r.subject,
                        e.at, e.from_state, e.to_state, e.value, e.threshold, e.data_at,
                        e.run_id, e.silenced, e.message)
                 .join(alert_rules, alert_rules.c.id == e.rule_id))
    if rule_id is not None:
        statement = statement.where(e.rule_id == rule_id)
    if user_id is not None:
        statement = statement.where(r.user_id == user_id)
    if since is not None:
        statement = statement.where(e.at >= since)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(
            statement.order_by(e.at.desc(), e.id.desc()).limit(limit)).mappings()]


def periods(engine: Engine, rule_ids: Sequence[int], start: datetime,
            end: datetime) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """Alerting periods of each rule overlapping [start, end): (from, to or None if still
    alerting), from the stored transitions (the charts shade them)."""
    if not rule_ids:
        return {}
    e = alert_events.c
    alerting = ("firing", "recovering", "nodata", "error")
    statement = (select(e.rule_id, e.at, e.from_state, e.to_state)
                 .where(e.rule_id.in_(list(rule_ids)), e.at < end)
                 .order_by(e.rule_id, e.at, e.id))
    out: dict[int, list[tuple[datetime, datetime | None]]] = {}
    with engine.connect() as connection:
        for rule_id, at, from_state, to_state in connection.execute(statement):
            spans = out.setdefault(rule_id, [])
            if to_state in alerting and from_state not in alerting:
                spans.append((at, None))
            elif to_state not in alerting and from_state in alerting and spans \
                    and spans[-1][1] is None:
                spans[-1] = (spans[-1][0], at)
    return {rule_id: [(a, b) for a, b in spans if b is None or b >= start]
            for rule_id, spans in out.items()}


# ---- contact points ----------------------------------------------------------------------

def create_contact(connection: Connection, *, user_id: int | None, name: str, kind: str,
                   target: str, secret: bytes, signed: bool) -> int:
    """Store a contact point (its URL and secret sealed); its id."""
    return connection.scalar(insert(contact_points).values(
        user_id=user_id, name=name, kind=kind, target=target, secret=secret, signed=signed)
        .returning(contact_points.c.id))


def contacts(engine: Engine, user_id: int | None, *, shared: bool = True,
             everyone: bool = False) -> list[dict[str, Any]]:
    """Contact points a user may use: their own and the shared ones (admins: all)."""
    c = contact_points.c
    statement = select(c.id, c.user_id, c.name, c.kind, c.target, c.signed, c.created_at,
                       c.failing, c.last_error, c.last_attempt_at, c.last_ok_at,
                       users.c.username.label("owner")).outerjoin(users, users.c.id == c.user_id)
    if not everyone:
        visible = c.user_id == user_id
        statement = statement.where(or_(visible, c.user_id.is_(None)) if shared else visible)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement.order_by(c.id)).mappings()]


def contact_secret(connection: Connection, contact_id: int) -> Any:
    """The row of one contact point, secret included (for sending)."""
    return connection.execute(select(contact_points)
                              .where(contact_points.c.id == contact_id)).first()


def delete_contact(connection: Connection, contact_id: int) -> None:
    connection.execute(delete(contact_points).where(contact_points.c.id == contact_id))


def mark_contact(connection: Connection, contact_id: int, ok: bool, error: str | None) -> None:
    """Record a delivery's outcome on its contact point (failing until one succeeds)."""
    values: dict[str, Any] = {"last_attempt_at": func.now(), "failing": not ok}
    if ok:
        values.update(last_ok_at=func.now(), last_error=None)
    else:
        values["last_error"] = (error or "failed")[:500]
    connection.execute(update(contact_points).where(contact_points.c.id == contact_id)
                       .values(**values))


# ---- silences ----------------------------------------------------------------------------

def create_silence(connection: Connection, *, user_id: int, rule_id: int | None,
                   matchers: list[dict[str, str]], starts_at: datetime, ends_at: datetime,
                   comment: str | None) -> int:
    sid = connection.scalar(insert(silences).values(
        user_id=user_id, rule_id=rule_id, matchers=matchers, starts_at=starts_at,
        ends_at=ends_at, comment=comment).returning(silences.c.id))
    notify_rules_changed(connection)
    return sid


def list_silences(engine: Engine, user_id: int | None, *, current_only: bool = False
                  ) -> list[dict[str, Any]]:
    s = silences.c
    statement = select(silences, users.c.username.label("owner")).join(
        users, users.c.id == s.user_id)
    if user_id is not None:
        statement = statement.where(s.user_id == user_id)
    if current_only:
        statement = statement.where(s.ends_at > func.now())
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(
            statement.order_by(s.ends_at.desc())).mappings()]


def delete_silence(connection: Connection, silence_id: int) -> None:
    connection.execute(delete(silences).where(silences.c.id == silence_id))
    notify_rules_changed(connection)


def active_silences(connection: Connection, now: datetime) -> list[dict[str, Any]]:
    """Silences in force at `now`."""
    s = silences.c
    return [dict(row) for row in connection.execute(
        select(s.id, s.user_id, s.rule_id, s.matchers, s.starts_at, s.ends_at)
        .where(s.starts_at <= now, s.ends_at > now)).mappings()]


# ---- outbox and delivery log -------------------------------------------------------------

def claim_due(connection: Connection, now: datetime, limit: int = 1) -> list[Any]:
    """Lock up to `limit` due pending notifications (skipping rows other senders hold)."""
    o = notification_outbox.c
    earlier = notification_outbox.alias("earlier")
    # A rule's notifications to one contact point go out in order: a resolved never
    # overtakes its firing (still being sent, or waiting for a retry).
    before = (select(earlier.c.id).where(
        earlier.c.status == "pending", earlier.c.rule_id == o.rule_id,
        earlier.c.contact_point_id == o.contact_point_id, earlier.c.id < o.id).exists())
    return connection.execute(
        select(notification_outbox).where(o.status == "pending", o.due_at <= now, ~before)
        .order_by(o.due_at, o.id).limit(limit).with_for_update(skip_locked=True)).all()


def record_attempt(connection: Connection, outbox_id: int, *, ok: bool, status_code: int | None,
                   response: str, duration_ms: int) -> None:
    record_attempts(connection, [{"outbox_id": outbox_id, "ok": ok, "status_code": status_code,
                                  "response": response, "duration_ms": duration_ms}])


def record_attempts(connection: Connection, attempts: Sequence[Mapping[str, Any]]) -> None:
    """Log delivery attempts: outbox_id, ok, status_code, response, duration_ms each."""
    if attempts:
        connection.execute(insert(notification_attempts),
                           [{**item, "response": item["response"][:500]} for item in attempts])


def finish_outbox(connection: Connection, outbox_id: int, *, status: str,
                  error: str | None = None, retry_at: datetime | None = None) -> None:
    """Mark a notification sent or failed, or put it back for a retry at `retry_at`."""
    values: dict[str, Any] = {"attempts": notification_outbox.c.attempts + 1,
                              "last_error": error[:500] if error else None}
    if status == "sent":
        values.update(status="sent", sent_at=func.now())
    elif retry_at is not None:
        values.update(status="pending", due_at=retry_at)
    else:
        values["status"] = "failed"
    connection.execute(update(notification_outbox)
                       .where(notification_outbox.c.id == outbox_id).values(**values))


def next_due(connection: Connection) -> datetime | None:
    """When the next pending notification falls due."""
    o = notification_outbox.c
    return connection.scalar(select(func.min(o.due_at)).where(o.status == "pending"))


def deliveries(engine: Engine, *, user_id: int | None = None, rule_id: int | None = None,
               contact_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The delivery log, newest first: each queued notification and its last answer."""
    o, r, c = notification_outbox.c, alert_rules.c, contact_points.c
    last = (select(notification_attempts.c.status_code, notification_attempts.c.response,
                   notification_attempts.c.at)
            .where(notification_attempts.c.outbox_id == o.id)
            .order_by(notification_attempts.c.at.desc()).limit(1).lateral())
    statement = (select(o.id, o.rule_id, r.name.label("rule_name"), o.contact_point_id,
                        c.name.label("contact_name"), c.kind.label("contact_kind"), o.kind,
                        o.status, o.created_at, o.due_at, o.sent_at, o.attempts, o.last_error,
                        last.c.status_code, last.c.response,
                        last.c.at.label("last_attempt_at"))
                 .outerjoin(alert_rules, alert_rules.c.id == o.rule_id)
                 .join(contact_points, contact_points.c.id == o.contact_point_id)
                 .outerjoin(last, and_(True)))
    if user_id is not None:
        statement = statement.where(or_(r.user_id == user_id, c.user_id == user_id))
    if rule_id is not None:
        statement = statement.where(o.rule_id == rule_id)
    if contact_id is not None:
        statement = statement.where(o.contact_point_id == contact_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(
            statement.order_by(o.created_at.desc(), o.id.desc()).limit(limit)).mappings()]


def outbox_counts(engine: Engine, since: timedelta = timedelta(hours=24)) -> dict[str, int]:
    """Notifications by status over the last day."""
    o = notification_outbox.c
    with engine.connect() as connection:
        rows = connection.execute(select(o.status, func.count())
                                  .where(o.created_at >= func.now() - since)
                                  .group_by(o.status))
        return dict(rows.all())
