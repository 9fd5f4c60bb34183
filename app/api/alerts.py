"""Alerting routes: rules, their history and tests, contact points and silences.

Reads take a key with the read or the alerts scope; changes need alerts. Bodies are read
here (at most 64 KiB of JSON) and checked by app/alerts (the service and the rule parser),
which name every bad field; the pydantic models below only document them in
/api/v1/openapi.json. Another user's rule, contact point or silence answers 404, exactly
like one that does not exist. Secrets (signing keys, URL tokens) are never answered.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

from flask import jsonify, request
from pydantic import BaseModel, Field, create_model
from spectree import Response
from sqlalchemy import Engine

from app import access, state
from app.alerts import service
from app.alerts.channels import CHANNELS, Delivery
from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS
from app.alerts.rules import CONTROL
from app.api import bp, openapi, principal, spec
from app.api.errors import ApiError, error_response
from db import alerts as store
from db.alert_model import DEFAULT_REPEAT_SECONDS, DIRECTIONS, ERROR_MODES, NODATA_MODES

MAX_BODY_BYTES = 64 * 1024
MAX_ID = 2**31 - 1
MAX_EVENTS = 1000
READ_SCOPES = ("read", "alerts")  # a key holding either may read
# Integers longer than this become infinity, which every validator refuses by field name
# (Python would otherwise refuse to parse a 5000-digit integer, failing the whole body).
MAX_INT_DIGITS = 100
MAX_URL = 2000
# A failed send's text can quote its URL ("... with url: /hook/TOKEN?key=..."), whose path
# and query may be the secret; answers show a URL's scheme and host only.
URL_TAIL = re.compile(r"(?i)(\burl: |[a-z][a-z0-9+.-]*://[^/?#\s'\"]+)[/?#][^\s'\")]*")
ERROR_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found",
               422: "validation_failed"}


class Filters(BaseModel):
    """Which offers count (P2P metrics only)."""

    amount: str | None = Field(None, description="fiat amount an offer must accept")
    payment: list[str] = Field(default_factory=list, description="canonical payment codes")
    merchant_only: bool = False
    min_completion: str | None = Field(None, description="0 to 1, e.g. 0.95")


class RuleBody(BaseModel):
    """An alert rule: a metric of a subject, a condition, and who gets notified."""

    name: str = Field(description="up to 100 characters")
    metric: Literal[tuple(sorted(METRICS))]  # type: ignore[valid-type]
    market: str | None = Field(None, description="a polled P2P market: binance:USDT/ARS")
    other: str | None = Field(None, description="the second market of a cross spread")
    symbol: str | None = Field(None, description="a streamed spot symbol: BTCUSDT")
    window_seconds: int | None = Field(None, description="spot.change_pct and change_pct")
    filters: Filters | None = None
    condition: Literal[tuple(sorted(CONDITIONS))]  # type: ignore[valid-type]
    threshold: str | None = Field(None, description="a decimal (not for inside/outside)")
    low: str | None = Field(None, description="the band's low end (inside/outside)")
    high: str | None = Field(None, description="the band's high end (inside/outside)")
    direction: Literal[DIRECTIONS] | None = None  # type: ignore[valid-type]
    for_seconds: int = Field(0, description="how long the condition must hold first")
    keep_firing_for_seconds: int = 0
    repeat_seconds: int = DEFAULT_REPEAT_SECONDS
    nodata_seconds: int | None = None
    nodata_state: Literal[NODATA_MODES] = "nodata"  # type: ignore[valid-type]
    error_state: Literal[ERROR_MODES] = "error"  # type: ignore[valid-type]
    labels: dict[str, str] = Field(default_factory=dict)
    note: str | None = None
    notify: list[int | str] = Field(default_factory=list,
                                    description="contact point ids or Apprise URLs")
    enabled: bool = True
    muted_until: str | None = Field(None, description="ISO 8601")


RulePatch = create_model(
    "RulePatch", __doc__="Only the fields to change; the rest are kept.",
    **{name: (info.annotation | None, None) for name, info in RuleBody.model_fields.items()})


class AlertRule(RuleBody):
    """A stored rule with its state and the metric's value now."""

    id: int
    owner: str
    state: str
    state_label: str
    state_since: str | None
    value: str | None
    value_at: str | None
    run_id: int | None
    evaluated_at: str | None


class AlertEvent(BaseModel):
    """One state transition of a rule."""

    id: int
    rule_id: int
    rule_name: str
    metric: str
    at: str
    from_state: str
    to_state: str
    value: str | None
    threshold: str | None
    data_at: str | None
    run_id: int | None
    silenced: bool
    message: str | None


class EventsQuery(BaseModel):
    """Which transitions: the newest `limit` since a time."""

    since: str | None = Field(None, description="ISO 8601")
    limit: int = Field(200, ge=1, le=MAX_EVENTS)


class TestResult(BaseModel):
    """What one contact point answered to a test notification."""

    contact: str
    ok: bool
    status_code: int | None
    response: str


class ContactBody(BaseModel):
    """A place notifications go: a webhook, an Apprise URL or an e-mail address."""

    name: str
    kind: Literal[tuple(CHANNELS)]  # type: ignore[valid-type]
    url: str | None = Field(None, description="webhook and apprise; checked reachable")
    to: str | None = Field(None, description="email: the address")
    secret: str | None = Field(None, description="webhook: HMAC-SHA256 signing key")
    shared: bool = Field(False, description="admins only: usable by every user")


class ContactPoint(BaseModel):
    """A stored contact point; its URL masked, its secret never shown."""

    id: int
    name: str
    kind: str
    target: str
    signed: bool
    shared: bool
    owner: str | None
    failing: bool
    last_error: str | None
    last_attempt_at: str | None
    last_ok_at: str | None


class Matcher(BaseModel):
    """A label test: name = value, or name != value."""

    name: str
    op: Literal["=", "!="] = "="
    value: str


class SilenceBody(BaseModel):
    """Mute one rule, or every rule whose labels match, until `ends_at`."""

    rule_id: int | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    starts_at: str | None = Field(None, description="ISO 8601; default now")
    ends_at: str = Field(description="ISO 8601")
    comment: str | None = None


class Silence(SilenceBody):
    """A stored silence."""

    id: int
    owner: str | None


@bp.errorhandler(service.AlertError)
def _from_alert_error(error: service.AlertError):
    """Answer an alerting error as the API's error JSON, naming the bad fields."""
    details = [{"index": None, "field": item.get("field"), "message": item.get("message")}
               for item in error.errors]
    return error_response(error.status, ERROR_CODES.get(error.status, "alert_error"),
                          error.message, details if details or error.status == 422 else None)


def _actor() -> service.Actor:
    """The key's user as the alerting service's actor."""
    caller = principal()
    return service.Actor(caller.user_id, caller.username, caller.role)


def _field_error(status: int, field: str, message: str) -> ApiError:
    """An error naming one field."""
    return ApiError(status, ERROR_CODES[status], f"{field}: {message}",
                    [{"index": None, "field": field, "message": message}])


def _bounded_int(text: str) -> int | float:
    """A JSON integer; an absurdly long one as infinity (refused later, by field)."""
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


def _no_constant(text: str) -> NoReturn:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{text} is not JSON")


def _json_body() -> Any:
    """The request's JSON body: 413 over MAX_BODY_BYTES, 400 when it is not JSON."""
    too_large = ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    try:
        return json.loads(data, parse_int=_bounded_int, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _field_error(400, "body", "must be a JSON object (UTF-8)") from None


def _url_problem(value: Any) -> str | None:
    """Why a URL text cannot be used (too long, control characters, unparsable), or None.

    The contact point checks in app/alerts let an unparsable URL ("http://[::1") or an
    over-long host name through as a crash, and a control character through unchecked;
    this refuses them first. Other types are the service's to name.
    """
    if not isinstance(value, str):
        return None
    if len(value) > MAX_URL or CONTROL.search(value):
        return f"must be a URL of at most {MAX_URL} characters, without control characters"
    try:
        host = urlsplit(value.strip()).hostname
        if host:
            host.encode("idna")
    except ValueError:  # UnicodeError (a host label over 63 characters) is a ValueError
        return "is not a URL that can be parsed"
    return None


def _rule_body() -> Any:
    """The JSON body of a rule, its notify URLs checked for what the service crashes on."""
    body = _json_body()
    notify = body.get("notify") if isinstance(body, dict) else None
    for item in notify if isinstance(notify, list) else ():
        problem = _url_problem(item)
        if problem:
            raise _field_error(422, "notify", problem)
    return body


def _contact_body() -> Any:
    """The JSON body of a contact point, its kind and URL checked for what the service
    crashes on (a kind that is no text, an unparsable URL)."""
    body = _json_body()
    if not isinstance(body, dict):
        return body
    if not isinstance(body.get("kind", ""), str):
        raise _field_error(422, "kind", f"must be one of {', '.join(CHANNELS)}")
    problem = _url_problem(body.get("url"))
    if problem:
        raise _field_error(422, "url", problem)
    return body


def _id(raw: str) -> int:
    """A path id as a number; one that cannot exist answers 404 naming it."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= MAX_ID:
        return int(raw)
    raise _field_error(404, "id", f"must be a whole number from 1 to {MAX_ID}")


def _since(raw: str | None) -> datetime | None:
    """The `since` parameter as a time, or 422 naming it."""
    if raw in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(raw.strip()) if len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or not 2000 <= moment.year <= 2999:
        raise _field_error(422, "since", "must be an ISO 8601 time like 2026-01-31T18:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _limit(raw: str | None) -> int:
    """The `limit` parameter (default 200), or 422 naming it."""
    if raw in (None, ""):
        return 200
    if raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_EVENTS:
        return int(raw)
    raise _field_error(422, "limit", f"must be a whole number from 1 to {MAX_EVENTS}")


def _rules_json(engine: Engine, rows: list[store.RuleRow]) -> list[dict[str, Any]]:
    """Rules as the API answers them, each with its metric's value now."""
    values = service.current_values(engine, [row.rule for row in rows])
    return [service.rule_json(row, values.get(row.rule.id)) for row in rows]


def _events_json(**where: Any) -> list[dict[str, Any]]:
    """Transitions matching `where` (rule_id or user_id), since and limit from the query."""
    since, limit = _since(request.args.get("since")), _limit(request.args.get("limit"))
    rows = store.events(state.current().engine, since=since, limit=limit, **where)
    return [service.event_json(row) for row in rows]


def without_urls(text: str | None) -> str | None:
    """`text` with every URL it quotes cut to its scheme and host (paths hold secrets)."""
    return None if text is None else URL_TAIL.sub(r"\1…", text)


def _contact_json(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact point as answered: its last error without the URL it may quote."""
    return {**contact, "last_error": without_urls(contact["last_error"])}


def _delivery_json(contact: str, result: Delivery) -> dict[str, Any]:
    """A test notification's outcome."""
    return {"contact": contact, "ok": result.ok, "status_code": result.status_code,
            "response": without_urls(result.response)}


def _documented(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                **responses: Any) -> Any:
    """Document a route in the OpenAPI document (app/api/openapi.py adds the error answers);
    the route checks its input itself."""
    return spec.validate(json=body, query=query, resp=Response(**responses), tags=["alerts"],
                         skip_validation=True)


for _path, _name in (("/api/v1/alerts/{rule_id}", "rule_id"),
                     ("/api/v1/alerts/{rule_id}/events", "rule_id"),
                     ("/api/v1/alerts/{rule_id}/test", "rule_id"),
                     ("/api/v1/contact-points/{contact_id}", "contact_id"),
                     ("/api/v1/contact-points/{contact_id}/test", "contact_id"),
                     ("/api/v1/silences/{silence_id}", "silence_id")):
    openapi.path_parameter(_path, _name, openapi.ID)


# ---- rules -------------------------------------------------------------------------------

@bp.get("/alerts")
@access.api_key(*READ_SCOPES)
@_documented(HTTP_200=list[AlertRule])
def list_alerts():
    """Every rule the key's user may see (admins: everyone's), with its value now."""
    engine = state.current().engine
    return jsonify(_rules_json(engine, service.visible_rules(engine, _actor())))


@bp.post("/alerts")
@access.api_key("alerts")
@_documented(body=RuleBody, HTTP_201=AlertRule)
def create_alert():
    """Create a rule; nothing is saved unless every field is valid."""
    current = state.current()
    row = service.create_rule(current.engine, current.settings, _actor(), _rule_body())
    return jsonify(_rules_json(current.engine, [row])[0]), 201


@bp.get("/alerts/<rule_id>")
@access.api_key(*READ_SCOPES)
@_documented(HTTP_200=AlertRule)
def get_alert(rule_id: str):
    """One rule with its state and value now."""
    engine = state.current().engine
    row = service.rule_for(engine, _actor(), _id(rule_id))
    return jsonify(_rules_json(engine, [row])[0])


@bp.patch("/alerts/<rule_id>")
@access.api_key("alerts")
@_documented(body=RulePatch, HTTP_200=AlertRule)
def update_alert(rule_id: str):
    """Change the given fields of a rule; the others are kept."""
    current = state.current()
    number = _id(rule_id)
    row = service.update_rule(current.engine, current.settings, _actor(), number,
                              _rule_body())
    return jsonify(_rules_json(current.engine, [row])[0])


@bp.delete("/alerts/<rule_id>")
@access.api_key("alerts")
@_documented(HTTP_204=None)
def delete_alert(rule_id: str):
    """Delete a rule with its state and history."""
    service.delete_rule(state.current().engine, _actor(), _id(rule_id))
    return "", 204


@bp.get("/alerts/<rule_id>/events")
@access.api_key(*READ_SCOPES)
@_documented(query=EventsQuery, HTTP_200=list[AlertEvent])
def alert_events(rule_id: str):
    """A rule's state transitions, newest first."""
    row = service.rule_for(state.current().engine, _actor(), _id(rule_id))
    return jsonify(_events_json(rule_id=row.rule.id))


@bp.get("/alerts/events")
@access.api_key(*READ_SCOPES)
@_documented(query=EventsQuery, HTTP_200=list[AlertEvent])
def all_alert_events():
    """Transitions of every rule the key's user may see (admins: all), newest first."""
    actor = _actor()
    return jsonify(_events_json(user_id=None if actor.is_admin else actor.user_id))


@bp.post("/alerts/<rule_id>/test")
@access.api_key("alerts")
@_documented(HTTP_200=list[TestResult])
def test_alert(rule_id: str):
    """Send a test of the rule's notification to each of its contact points now."""
    current = state.current()
    results = service.send_test_rule(current.engine, current.settings, _actor(), _id(rule_id))
    return jsonify([_delivery_json(name, result) for name, result in results])


# ---- contact points ----------------------------------------------------------------------

@bp.get("/contact-points")
@access.api_key(*READ_SCOPES)
@_documented(HTTP_200=list[ContactPoint])
def list_contact_points():
    """The key's user's contact points and the shared ones (admins: all)."""
    contacts = service.visible_contacts(state.current().engine, _actor())
    return jsonify([_contact_json(contact) for contact in contacts])


@bp.post("/contact-points")
@access.api_key("alerts")
@_documented(body=ContactBody, HTTP_201=ContactPoint)
def create_contact_point():
    """Add a contact point, checked (scheme, allow-list, reachable) before it is saved."""
    current = state.current()
    contact = service.create_contact(current.engine, current.settings, _actor(),
                                     _contact_body())
    return jsonify(_contact_json(contact)), 201


@bp.delete("/contact-points/<contact_id>")
@access.api_key("alerts")
@_documented(HTTP_204=None)
def delete_contact_point(contact_id: str):
    """Delete a contact point of the key's user (admins: any)."""
    service.delete_contact(state.current().engine, _actor(), _id(contact_id))
    return "", 204


@bp.post("/contact-points/<contact_id>/test")
@access.api_key("alerts")
@_documented(HTTP_200=TestResult)
def test_contact_point(contact_id: str):
    """Send a test notification to a contact point now."""
    current, actor, number = state.current(), _actor(), _id(contact_id)
    result = service.send_test_contact(current.engine, current.settings, actor, number)
    name = next((contact["name"] for contact in service.visible_contacts(current.engine, actor)
                 if contact["id"] == number), "")
    return jsonify(_delivery_json(name, result))


# ---- silences ----------------------------------------------------------------------------

@bp.get("/silences")
@access.api_key(*READ_SCOPES)
@_documented(HTTP_200=list[Silence])
def list_silences():
    """The key's user's silences (admins: all), latest ending first."""
    return jsonify(service.visible_silences(state.current().engine, _actor()))


@bp.post("/silences")
@access.api_key("alerts")
@_documented(body=SilenceBody, HTTP_201=Silence)
def create_silence():
    """Mute one rule, or the rules whose labels match, for a while."""
    silence = service.create_silence(state.current().engine, _actor(), _json_body())
    return jsonify(silence), 201


@bp.delete("/silences/<silence_id>")
@access.api_key("alerts")
@_documented(HTTP_204=None)
def delete_silence(silence_id: str):
    """End a silence now by deleting it."""
    service.delete_silence(state.current().engine, _actor(), _id(silence_id))
    return "", 204
