"""Alerting commands for the API, the pages and the CLI: check, then act, as one user.

Who may do what: trader, analyst and admin own rules and contact points; each sees only
their own rules (admins: all), and the shared contact points admins add. A rule or contact
point another user owns answers NotFound, exactly like one that does not exist, so ids
reveal nothing. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from app import audit
from app.alerts import channels, secrets
from app.alerts.metrics import METRICS
from app.alerts.payload import iso, status_of, text_of, webhook_body
from app.alerts.rules import CONTROL, Catalog, RuleInvalid, parse_rule
from app.config import Settings
from db import alerts as store
from db.alert_model import (
    STATE_LABELS,
    Rule,
    RuleState,
    Sample,
    jsonable_filters,
    jsonable_subject,
)

OWNERS = ("trader", "analyst", "admin")
MAX_RULES_PER_USER = 500


class AlertError(Exception):
    """An alerting request that cannot be done: a status, a code and the bad fields."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


class NotFound(AlertError):
    def __init__(self, what: str) -> None:
        super().__init__(404, f"no such {what}")


@dataclass(frozen=True)
class Actor:
    """The user doing something: id, name and role."""

    user_id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_owner(self) -> None:
        if self.role not in OWNERS:
            raise AlertError(403, f"the {self.role} role may not keep alert rules")


def policy_of(settings: Settings, *, check_reachable: bool = True) -> channels.Policy:
    """Where notifications may go, from the settings."""
    alerts = settings.alerts
    return channels.Policy(alerts.allowed_hosts, alerts.smtp_url, alerts.smtp_from,
                           alerts.send_timeout_seconds, check_reachable)


def external_url(settings: Settings) -> str:
    """The base of links in notifications (P2PDASH_EXTERNAL_URL, else host and port)."""
    return settings.alerts.external_url or f"http://{settings.host}:{settings.port}"


# ---- rules -------------------------------------------------------------------------------

def rule_json(row: store.RuleRow, value: Sample | None = None) -> dict[str, Any]:
    """A rule as the API answers it (the same field names it is created with)."""
    rule, state = row.rule, row.state
    out: dict[str, Any] = {"id": rule.id, "name": rule.name, "owner": rule.owner,
                           "metric": rule.metric, **jsonable_subject(rule.subject),
                           "filters": jsonable_filters(rule.subject),
                           "condition": rule.condition}
    if rule.low is not None or rule.high is not None:
        out.update(low=_text(rule.low), high=_text(rule.high))
    else:
        out["threshold"] = _text(rule.threshold)
    if rule.condition == "change_pct":
        out.update(window_seconds=rule.window_seconds, direction=rule.direction)
    out.update(
        for_seconds=rule.for_seconds, keep_firing_for_seconds=rule.keep_firing_for_seconds,
        repeat_seconds=rule.repeat_seconds, nodata_seconds=rule.nodata_seconds,
        nodata_state=rule.nodata_state, error_state=rule.error_state, labels=rule.labels,
        note=rule.note, notify=list(rule.contact_ids), enabled=rule.enabled,
        muted_until=_iso(rule.muted_until), state=state.state,
        state_label=STATE_LABELS[state.state], state_since=_iso(state.since),
        value=_text(value.value if value else state.value),
        value_at=_iso(value.at if value else state.data_at), run_id=state.run_id,
        evaluated_at=_iso(row.evaluated_at))
    return out


def _text(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def visible_rules(engine: Engine, actor: Actor) -> list[store.RuleRow]:
    """The actor's rules (an admin's: everyone's)."""
    return store.list_rules(engine, None if actor.is_admin else actor.user_id)


def rule_for(engine: Engine, actor: Actor, rule_id: int) -> store.RuleRow:
    """A rule the actor may see, or NotFound."""
    row = store.get_rule(engine, rule_id) if 0 < rule_id < 2**31 else None
    if row is None or not (actor.is_admin or row.rule.user_id == actor.user_id):
        raise NotFound("alert rule")
    return row


def _draft(settings: Settings, data: Any):
    try:
        return parse_rule(data, Catalog.of(settings))
    except RuleInvalid as invalid:
        raise AlertError(422, "the rule is not valid", invalid.errors) from None


def _notify_targets(engine: Engine, settings: Settings, actor: Actor, rule_name: str,
                    notify: list[int | str]) -> list[int | PreparedContact]:
    """Check a rule's `notify` whole before anything is stored: visible contact point ids,
    and URLs checked as new contact points (stored with the rule, in its transaction)."""
    visible = {c["id"] for c in store.contacts(engine, actor.user_id, everyone=actor.is_admin)}
    out: list[int | PreparedContact] = []
    for number, item in enumerate(notify, start=1):
        if isinstance(item, int):
            if item not in visible:
                raise AlertError(422, "the rule is not valid", [
                    {"field": "notify", "message": f"contact point {item} does not exist"}])
            out.append(item)
        else:
            kind = "webhook" if item.lower().startswith(("http://", "https://")) else "apprise"
            out.append(check_contact(settings, actor, {
                "name": f"{rule_name} #{number}"[:100], "kind": kind, "url": item},
                field_prefix="notify"))
    return out


def _store_targets(connection: Any, settings: Settings, actor: Actor,
                   targets: list[int | PreparedContact]) -> list[int]:
    return [target if isinstance(target, int) else
            _store_contact(connection, settings, actor, target) for target in targets]


def create_rule(engine: Engine, settings: Settings, actor: Actor, data: Any) -> store.RuleRow:
    """Check and store a new rule of the actor's; the stored row."""
    actor.require_owner()
    draft = _draft(settings, data)
    if len(store.list_rules(engine, actor.user_id)) >= MAX_RULES_PER_USER:
        raise AlertError(422, f"at most {MAX_RULES_PER_USER} rules per user")
    targets = _notify_targets(engine, settings, actor, draft.columns["name"], draft.notify)
    with engine.begin() as connection:
        contact_ids = _store_targets(connection, settings, actor, targets)
        rule_id = store.create_rule(connection, actor.user_id, draft.columns, contact_ids)
        audit.record(connection, actor.username, "alert.create", f"rule {rule_id}",
                     {"metric": draft.columns["metric"], "name": draft.columns["name"]})
    return rule_for(engine, actor, rule_id)


def editable_json(row: store.RuleRow) -> dict[str, Any]:
    """A rule's definition (no state fields), the base a PATCH is merged into."""
    keep = {"name", "metric", "market", "other", "symbol", "window_seconds", "filters",
            "condition", "threshold", "low", "high", "direction", "for_seconds",
            "keep_firing_for_seconds", "repeat_seconds", "nodata_seconds", "nodata_state",
            "error_state", "labels", "note", "notify", "enabled", "muted_until"}
    return {key: value for key, value in rule_json(row).items() if key in keep}


def update_rule(engine: Engine, settings: Settings, actor: Actor, rule_id: int,
                patch: Any) -> store.RuleRow:
    """Merge `patch` into a rule and store it when the result is valid."""
    row = rule_for(engine, actor, rule_id)
    if not isinstance(patch, Mapping):
        raise AlertError(422, "the rule is not valid",
                         [{"field": "body", "message": "must be a JSON object"}])
    merged = {**editable_json(row), **patch}
    if {"low", "high"} & set(patch) and "threshold" not in patch:
        merged.pop("threshold", None)
    if "threshold" in patch and not {"low", "high"} & set(patch):
        merged.pop("low", None)
        merged.pop("high", None)
    draft = _draft(settings, merged)
    targets = _notify_targets(engine, settings, actor, draft.columns["name"], draft.notify)
    with engine.begin() as connection:
        contact_ids = _store_targets(connection, settings, actor, targets)
        store.update_rule(connection, rule_id, draft.columns, contact_ids)
        audit.record(connection, actor.username, "alert.update", f"rule {rule_id}",
                     {"fields": sorted(str(key)[:40] for key in patch)[:30]})
    return rule_for(engine, actor, rule_id)


def delete_rule(engine: Engine, actor: Actor, rule_id: int) -> None:
    """Delete a rule the actor may see."""
    rule_for(engine, actor, rule_id)
    with engine.begin() as connection:
        store.delete_rule(connection, rule_id)
        audit.record(connection, actor.username, "alert.delete", f"rule {rule_id}")


def current_values(engine: Engine, rules: list[Rule]) -> dict[int, Sample]:
    """Each rule's metric value now, one query per metric (the pages' live column)."""
    by_metric: dict[str, list[Rule]] = {}
    for rule in rules:
        by_metric.setdefault(rule.metric, []).append(rule)
    now = datetime.now(UTC)
    out: dict[int, Sample] = {}
    with engine.connect() as connection:
        for name, group in by_metric.items():
            found = METRICS[name].current(connection, [rule.subject for rule in group], now)
            out.update({rule.id: found[rule.subject] for rule in group
                        if rule.subject in found})
    return out


# ---- contact points ----------------------------------------------------------------------

def contact_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A contact point as it may be shown: never its URL's secrets or its signing key."""
    return {"id": row["id"], "name": row["name"], "kind": row["kind"],
            "target": row["target"], "signed": row["signed"],
            "shared": row["user_id"] is None, "owner": row.get("owner"),
            "failing": row["failing"], "last_error": row["last_error"],
            "last_attempt_at": _iso(row["last_attempt_at"]),
            "last_ok_at": _iso(row["last_ok_at"])}


def visible_contacts(engine: Engine, actor: Actor) -> list[dict[str, Any]]:
    return [contact_json(row) for row in
            store.contacts(engine, actor.user_id, everyone=actor.is_admin)]


def _contact_for(engine: Engine, actor: Actor, contact_id: int, *, write: bool = False):
    with engine.connect() as connection:
        row = store.contact_secret(connection, contact_id) if 0 < contact_id < 2**31 else None
    if row is None:
        raise NotFound("contact point")
    mine = row.user_id == actor.user_id
    if not (actor.is_admin or mine or (row.user_id is None and not write)):
        raise NotFound("contact point")
    return row


@dataclass(frozen=True)
class PreparedContact:
    """A checked contact point, ready to store: what may be shown and what is sealed."""

    name: str
    kind: str
    target: str
    sealed: dict[str, Any]
    shared: bool


def check_contact(settings: Settings, actor: Actor, data: Any, *,
                  field_prefix: str = "") -> PreparedContact:
    """Check a contact point: its fields, the URL's scheme, the host allow-list and that
    the target answers. Nothing is stored."""
    actor.require_owner()
    if not isinstance(data, Mapping):
        raise AlertError(422, "not valid", [{"field": "body", "message": "must be an object"}])
    name, kind, shared = data.get("name"), data.get("kind"), data.get("shared", False)
    errors = []
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or CONTROL.search(name):
        errors.append({"field": "name", "message": "is required: up to 100 characters"})
    if not isinstance(kind, str) or kind not in channels.CHANNELS:
        errors.append({"field": "kind", "message": "must be one of "
                                                   f"{', '.join(channels.CHANNELS)}"})
    if shared is not False and not (shared is True and actor.is_admin):
        errors.append({"field": "shared", "message": "only admins add shared contact points"})
    secret_value = data.get("secret")
    if secret_value is not None and (not isinstance(secret_value, str) or len(secret_value) > 200
                                     or CONTROL.search(secret_value)):
        errors.append({"field": "secret", "message": "must be text of at most 200 characters"})
    if errors:
        raise AlertError(422, "the contact point is not valid", errors)
    try:
        target, sealed = channels.CHANNELS[kind].check(data, policy_of(settings))
    except channels.ContactInvalid as invalid:
        raise AlertError(422, "the contact point is not valid",
                         [{"field": field_prefix or invalid.field,
                           "message": invalid.message}]) from None
    return PreparedContact(name.strip(), kind, target, sealed, shared is True)


def _store_contact(connection: Any, settings: Settings, actor: Actor,
                   prepared: PreparedContact) -> int:
    contact_id = store.create_contact(
        connection, user_id=None if prepared.shared else actor.user_id, name=prepared.name,
        kind=prepared.kind, target=prepared.target,
        secret=secrets.seal(settings.secret_key, prepared.sealed),
        signed=bool(prepared.sealed.get("secret")))
    audit.record(connection, actor.username, "contact.create", f"contact {contact_id}",
                 {"kind": prepared.kind, "target": prepared.target})
    return contact_id


def create_contact(engine: Engine, settings: Settings, actor: Actor,
                   data: Any) -> dict[str, Any]:
    """Check and store a contact point; it as it may be shown."""
    prepared = check_contact(settings, actor, data)
    with engine.begin() as connection:
        contact_id = _store_contact(connection, settings, actor, prepared)
    return next(c for c in visible_contacts(engine, actor) if c["id"] == contact_id)


def delete_contact(engine: Engine, actor: Actor, contact_id: int) -> None:
    _contact_for(engine, actor, contact_id, write=True)
    with engine.begin() as connection:
        store.delete_contact(connection, contact_id)
        audit.record(connection, actor.username, "contact.delete", f"contact {contact_id}")


def send_to(settings: Settings, contact: Any, message: channels.Message) -> channels.Delivery:
    """Send one message to a contact point row (its secrets unsealed only here)."""
    try:
        sealed = secrets.unseal(settings.secret_key, contact.secret)
        return channels.CHANNELS[contact.kind].send(sealed, message, policy_of(settings))
    except (secrets.SecretUnreadable, channels.ContactInvalid) as error:
        return channels.Delivery(False, None, str(error), permanent=True)


def deliver(engine: Engine, settings: Settings, contact: Any,
            message: channels.Message) -> channels.Delivery:
    """Send one message to a contact point row and record the result on the point."""
    result = send_to(settings, contact, message)
    with engine.begin() as connection:
        store.mark_contact(connection, contact.id, result.ok, result.error)
    return result


def test_message(settings: Settings, rule: Rule, state: RuleState, receiver: str,
                 key: str) -> channels.Message:
    """A notification saying it is a test, shaped like a real one."""
    now = datetime.now(UTC)
    body = webhook_body(rule, state, status_of(state) if state.alerting else "firing",
                        base=external_url(settings), receiver=receiver, now=now)
    body["alerts"][0]["annotations"]["summary"] = "TEST: " + body["alerts"][0][
        "annotations"]["summary"]
    body["commonAnnotations"] = body["alerts"][0]["annotations"]
    title, text = text_of(body)
    return channels.Message(body, title, text, key)


def _sample_rule(actor: Actor) -> Rule:
    from db.alert_model import Subject

    return Rule(id=0, user_id=actor.user_id, name="p2pdash test", metric="p2p.spread_pct",
                subject=Subject(market="binance:USDT/ARS"), condition=">", owner=actor.username,
                threshold=None)


def send_test_contact(engine: Engine, settings: Settings, actor: Actor,
                      contact_id: int) -> channels.Delivery:
    """Send a test notification to a contact point now; the answer."""
    contact = _contact_for(engine, actor, contact_id)
    key = f"test:contact:{contact_id}:{datetime.now(UTC).timestamp()}"
    message = test_message(settings, _sample_rule(actor), RuleState(state="firing"),
                           contact.name, key)
    result = deliver(engine, settings, contact, message)
    _log_test(engine, None, contact_id, key, message=message, result=result)
    return result


def send_test_rule(engine: Engine, settings: Settings, actor: Actor,
                   rule_id: int) -> list[tuple[str, channels.Delivery]]:
    """Send a test of a rule's notification to each of its contact points now."""
    row = rule_for(engine, actor, rule_id)
    if not row.rule.contact_ids:
        raise AlertError(422, "the rule notifies nobody: add a contact point",
                         [{"field": "notify", "message": "is empty"}])
    results = []
    for contact_id in row.rule.contact_ids:
        with engine.connect() as connection:
            contact = store.contact_secret(connection, contact_id)
        if contact is None:  # deleted since the rule was read
            continue
        key = f"test:rule:{rule_id}:{contact_id}:{datetime.now(UTC).timestamp()}"
        message = test_message(settings, row.rule, row.state, contact.name, key)
        result = deliver(engine, settings, contact, message)
        _log_test(engine, rule_id, contact_id, key, message=message, result=result)
        results.append((contact.name, result))
    return results


def _log_test(engine: Engine, rule_id: int | None, contact_id: int, key: str, *,
              message: channels.Message, result: channels.Delivery) -> None:
    from db.schema import notification_outbox

    with engine.begin() as connection:
        outbox_id = connection.scalar(notification_outbox.insert().values(
            rule_id=rule_id, contact_point_id=contact_id, idempotency_key=key, kind="test",
            status="sent" if result.ok else "failed", payload=message.payload, attempts=1,
            last_error=result.error,
            sent_at=datetime.now(UTC) if result.ok else None)
            .returning(notification_outbox.c.id))
        store.record_attempt(connection, outbox_id, ok=result.ok,
                             status_code=result.status_code, response=result.response,
                             duration_ms=result.duration_ms)


# ---- silences ----------------------------------------------------------------------------

MATCH_OPS = ("=", "!=")


def create_silence(engine: Engine, actor: Actor, data: Any) -> dict[str, Any]:
    """Mute one rule until a time, or everything matching labels in a window."""
    from app.alerts.rules import _Checker, _time

    actor.require_owner()
    if not isinstance(data, Mapping):
        raise AlertError(422, "not valid", [{"field": "body", "message": "must be an object"}])
    check = _Checker(data)
    rule_id = data.get("rule_id")
    if rule_id is not None:
        if not isinstance(rule_id, int) or isinstance(rule_id, bool):
            check.fail("rule_id", "must be a rule id")
            rule_id = None
        else:
            try:
                rule_for(engine, actor, rule_id)
            except NotFound:
                check.fail("rule_id", f"rule {rule_id} does not exist")
    matchers = _matchers(check, data.get("matchers"))
    if rule_id is None and not matchers and not check.errors:
        check.fail("matchers", "give a rule_id or at least one matcher")
    starts = _time(check, "starts_at") or datetime.now(UTC)
    ends = _time(check, "ends_at")
    if ends is None and not any(e["field"] == "ends_at" for e in check.errors):
        check.fail("ends_at", "is required (ISO 8601)")
    elif ends is not None and ends <= starts:
        check.fail("ends_at", "must be after starts_at")
    comment = check.text("comment", limit=500)
    if check.errors:
        raise AlertError(422, "the silence is not valid", check.errors)
    with engine.begin() as connection:
        silence_id = store.create_silence(connection, user_id=actor.user_id, rule_id=rule_id,
                                          matchers=matchers, starts_at=starts, ends_at=ends,
                                          comment=comment)
        audit.record(connection, actor.username, "silence.create", f"silence {silence_id}",
                     {"rule_id": rule_id, "matchers": matchers})
    return next(s for s in visible_silences(engine, actor) if s["id"] == silence_id)


def _matchers(check: Any, raw: Any) -> list[dict[str, str]]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or len(raw) > 10:
        check.fail("matchers", "must be a list of up to 10 {name, op, value}")
        return []
    out = []
    for item in raw:
        if not (isinstance(item, Mapping) and isinstance(item.get("name"), str)
                and isinstance(item.get("value"), str) and item.get("op", "=") in MATCH_OPS
                and 0 < len(item["name"]) <= 40 and len(item["value"]) <= 200
                and not CONTROL.search(item["name"] + item["value"])):
            check.fail("matchers", "each is {name, op ('=' or '!='), value}: label texts")
            return []
        out.append({"name": item["name"], "op": item.get("op", "="), "value": item["value"]})
    return out


def silence_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "owner": row.get("owner"), "rule_id": row["rule_id"],
            "matchers": row["matchers"], "starts_at": _iso(row["starts_at"]),
            "ends_at": _iso(row["ends_at"]), "comment": row["comment"]}


def visible_silences(engine: Engine, actor: Actor) -> list[dict[str, Any]]:
    return [silence_json(row) for row in
            store.list_silences(engine, None if actor.is_admin else actor.user_id)]


def delete_silence(engine: Engine, actor: Actor, silence_id: int) -> None:
    if not any(s["id"] == silence_id for s in visible_silences(engine, actor)):
        raise NotFound("silence")
    with engine.begin() as connection:
        store.delete_silence(connection, silence_id)
        audit.record(connection, actor.username, "silence.delete", f"silence {silence_id}")


def silenced(rule: Rule, silences: list[Mapping[str, Any]], now: datetime) -> bool:
    """Whether the rule is muted (muted_until) or matched by a silence in force."""
    if rule.muted_until is not None and rule.muted_until > now:
        return True
    if not silences:
        return False
    labels = rule.all_labels()
    for silence in silences:
        if silence["rule_id"] is not None and silence["rule_id"] != rule.id:
            continue
        if silence["rule_id"] is None and not silence["matchers"]:
            continue
        if all((labels.get(m["name"]) == m["value"]) == (m.get("op", "=") == "=")
               for m in silence["matchers"]):
            return True
    return False


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A transition as the API answers it."""
    return {"id": row["id"], "rule_id": row["rule_id"], "rule_name": row["rule_name"],
            "metric": row["metric"], "at": _iso(row["at"]), "from_state": row["from_state"],
            "to_state": row["to_state"], "value": _text(row["value"]),
            "threshold": row["threshold"], "data_at": _iso(row["data_at"]),
            "run_id": row["run_id"], "silenced": row["silenced"], "message": row["message"]}
