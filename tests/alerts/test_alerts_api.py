"""The alerting API: rules, events, tests, contact points and silences over API keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.auth.errors import AccountError
from db import alerts as store
from db.embedded import free_port
from db.schema import alert_rules, contact_points
from tests.alerts.api_support import alert_settings, loopback_hook, spread_rule
from tests.conftest import add_user, api_key

SECRET = "s3cr3t-value"
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def settings(database_url, tmp_path):
    return alert_settings(tmp_path, database_url)


@pytest.fixture
def hook():
    with loopback_hook() as receiver:
        yield receiver


def key_headers(app, role: str, scopes: tuple[str, ...], username: str | None = None):
    """X-API-Key headers of a fresh key of the user named `username` (or after `role`)."""
    return {"X-API-Key": api_key(app, role, scopes, username)[1]}


@pytest.fixture
def trader(app):
    return key_headers(app, "trader", ("alerts",))


@pytest.fixture
def other_trader(app):
    return key_headers(app, "trader", ("alerts",), "trader2")


@pytest.fixture
def admin(app):
    return key_headers(app, "admin", ("read", "alerts"))


def create(client, headers, **changes):
    """POST a rule; the response."""
    return client.post("/api/v1/alerts", json=spread_rule(**changes), headers=headers)


def fields_of(response) -> set[str]:
    """The fields a 4xx answer names."""
    return {detail["field"] for detail in response.get_json()["error"]["details"]}


def rule_count(app) -> int:
    with app.extensions["p2pdash"].engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(alert_rules))


def test_create_answers_201_with_id_and_state(client, trader):
    response = create(client, trader)
    assert response.status_code == 201, response.get_json()
    rule = response.get_json()
    assert isinstance(rule["id"], int) and rule["state"] == "normal"
    assert (rule["metric"], rule["market"], rule["threshold"]) == (
        "p2p.spread_pct", "binance:USDT/ARS", "2.5")
    listed = client.get("/api/v1/alerts", headers=trader).get_json()
    assert [item["id"] for item in listed] == [rule["id"]]
    assert "value" in listed[0] and listed[0]["owner"] == "trader"


BAD_RULES = [
    ({"metric": "p2p.moon_phase"}, "metric"),
    ({"market": "bybit:USDT/ARS"}, "market"),
    ({"threshold": "lots"}, "threshold"),
    ({"threshold": [1]}, "threshold"),
    ({"threshold": None, "condition": "inside", "low": "5", "high": "1"}, "low"),
    ({"for_seconds": 30}, "for_seconds"),
    ({"for_seconds": "soon"}, "for_seconds"),
    ({"name": 5}, "name"),
    ({"name": "spread\x00wide"}, "name"),
    ({"enabled": "yes"}, "enabled"),
    ({"colour": "red"}, "colour"),
    ({"filters": {"amount": "-1"}}, "filters.amount"),
    ({"labels": {"severity": "apocalyptic"}}, "labels.severity"),
    ({"notify": [2**40]}, "notify"),
    ({"notify": ["ftp://127.0.0.1/hook"]}, "notify"),
    ({"muted_until": "tomorrow"}, "muted_until"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_RULES)
def test_a_bad_rule_gets_422_naming_the_field_and_nothing_is_saved(app, client, trader,
                                                                    changes, field):
    response = create(client, trader, **changes)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "validation_failed"
    assert field in fields_of(response)
    assert all(detail["index"] is None for detail in response.get_json()["error"]["details"])
    assert client.get("/api/v1/alerts", headers=trader).get_json() == []
    assert rule_count(app) == 0


@pytest.mark.parametrize("case", [
    ('"threshold": 1e400', 422, "threshold"), ('"threshold": ' + "9" * 5000, 422, "threshold"),
    ('"threshold": -' + "9" * 5000, 422, "threshold"), ('"threshold": 1' + "0" * 30, 422,
                                                        "threshold"),
    ('"for_seconds": ' + "9" * 5000, 422, "for_seconds"), ('"threshold": NaN', 400, "body"),
    ('"threshold": Infinity', 400, "body"),
], ids=["1e400", "5000-digits", "minus-5000-digits", "1e30-integer", "for-5000-digits", "NaN",
        "Infinity"])
def test_huge_numbers_are_refused_naming_the_field(app, client, trader, case):
    raw, status, field = case
    body = json.dumps(spread_rule(threshold=None, for_seconds=None))[:-1] + ", " + raw + "}"
    response = client.post("/api/v1/alerts", data=body, headers=trader,
                           content_type="application/json")
    assert response.status_code == status, response.get_json()
    assert field in fields_of(response)
    assert rule_count(app) == 0


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400), (b"", 400), (b'{"name": "a\x00b"}', 400), (b"\xff\xfe\x00", 400),
    (b"[" * 60000, 400), (b"[]", 422), (b'"text"', 422), (b"null", 422),
], ids=["text", "empty", "raw-nul", "not-utf8", "deep-nesting", "array", "string", "null"])
def test_a_body_that_is_no_json_object_gets_a_4xx_naming_the_body(app, client, trader,
                                                                  body, status):
    response = client.post("/api/v1/alerts", data=body, headers=trader,
                           content_type="application/json")
    assert response.status_code == status, response.get_json()
    assert fields_of(response) == {"body"}
    assert rule_count(app) == 0


def test_a_body_over_64_kib_gets_413(client, trader):
    body = json.dumps(spread_rule(note="x" * 70000))
    response = client.post("/api/v1/alerts", data=body, headers=trader,
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("rule_id", ["2147483648", "99999999999999999999", "0", "abc", "-1",
                                     "\uff11\uff12"])
def test_impossible_ids_get_404_naming_the_id(client, trader, rule_id):
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/alerts/{rule_id}", headers=trader,
                                           json={"threshold": "1"})
        assert response.status_code == 404, (method, response.get_json())
        assert fields_of(response) == {"id"}


def test_another_users_rule_is_404_and_admins_see_all(client, trader, other_trader, admin):
    mine = create(client, trader).get_json()["id"]
    theirs = create(client, other_trader, name="theirs").get_json()["id"]
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/alerts/{theirs}", headers=trader,
                                           json={"threshold": "1"})
        assert response.status_code == 404, method
        assert response.get_json()["error"]["code"] == "not_found"
    assert [r["id"] for r in client.get("/api/v1/alerts", headers=trader).get_json()] == [mine]
    everyone = client.get("/api/v1/alerts", headers=admin).get_json()
    assert {(r["id"], r["owner"]) for r in everyone} == {(mine, "trader"),
                                                         (theirs, "trader2")}
    assert client.get(f"/api/v1/alerts/{theirs}", headers=admin).get_json()["name"] == "theirs"
    assert client.get(f"/api/v1/alerts/{theirs}", headers=other_trader).status_code == 200


def test_a_read_key_lists_but_cannot_write(app, client):
    read = key_headers(app, "analyst", ("read",))
    assert client.get("/api/v1/alerts", headers=read).status_code == 200
    refused = create(client, read)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_scope"
    for path in ("/api/v1/contact-points", "/api/v1/silences"):
        assert client.post(path, json={}, headers=read).status_code == 403
    assert rule_count(app) == 0


def test_a_key_without_read_or_alerts_cannot_even_list(app, client):
    export = key_headers(app, "analyst", ("export",))
    for path in ("/api/v1/alerts", "/api/v1/alerts/events", "/api/v1/contact-points",
                 "/api/v1/silences"):
        response = client.get(path, headers=export)
        assert response.status_code == 403, path
        assert response.get_json()["error"]["details"]["granted"] == ["export"]


def test_a_kiosk_cannot_hold_the_alerting_scopes(app):
    add_user(app, "kiosk")
    for scopes in (("alerts",), ("read",)):
        with pytest.raises(AccountError, match="may not hold"):
            api_key(app, "kiosk", scopes)


def test_patch_merges_the_given_fields_and_keeps_the_rest(client, trader, hook):
    created = create(client, trader, notify=[hook.url], note="watch it").get_json()
    response = client.patch(f"/api/v1/alerts/{created['id']}", json={"threshold": "3.75"},
                            headers=trader)
    assert response.status_code == 200, response.get_json()
    patched = response.get_json()
    assert patched["threshold"] == "3.75"
    kept = ("name", "metric", "market", "condition", "for_seconds", "labels", "note", "notify")
    assert {key: patched[key] for key in kept} == {key: created[key] for key in kept}


def test_a_bad_patch_gets_422_and_changes_nothing(client, trader):
    created = create(client, trader).get_json()
    for patch, field in (({"threshold": "x"}, "threshold"), ({"for_seconds": 5}, "for_seconds"),
                         ([1, 2], "body")):
        response = client.patch(f"/api/v1/alerts/{created['id']}", json=patch, headers=trader)
        assert response.status_code == 422 and field in fields_of(response)
    again = client.get(f"/api/v1/alerts/{created['id']}", headers=trader).get_json()
    assert (again["threshold"], again["for_seconds"]) == ("2.5", 120)


def test_delete_answers_204_then_the_rule_is_gone(client, trader):
    rule_id = create(client, trader).get_json()["id"]
    response = client.delete(f"/api/v1/alerts/{rule_id}", headers=trader)
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(f"/api/v1/alerts/{rule_id}", headers=trader).status_code == 404


def save_transition(app, rule_id: int, at: datetime, to_state: str = "firing") -> None:
    """Store one transition of a rule, as the evaluator does."""
    batch = store.Evaluation(transitions=[store.Transition(
        rule_id=rule_id, at=at, from_state="pending", to_state=to_state,
        value=Decimal("3.1"), threshold="2.5", data_at=at, run_id=None, silenced=False,
        message="spread above 2.5")])
    with app.extensions["p2pdash"].engine.begin() as connection:
        store.save_evaluation(connection, batch, at)


def test_events_answer_the_rules_transitions(app, client, trader, other_trader, admin):
    mine = create(client, trader).get_json()["id"]
    theirs = create(client, other_trader).get_json()["id"]
    now = datetime.now(UTC).replace(microsecond=0)
    save_transition(app, mine, now - timedelta(hours=2))
    save_transition(app, mine, now, "normal")
    save_transition(app, theirs, now)
    events = client.get(f"/api/v1/alerts/{mine}/events", headers=trader).get_json()
    assert [(e["rule_id"], e["to_state"]) for e in events] == [(mine, "normal"), (mine, "firing")]
    assert events[1]["value"] == "3.1" and events[1]["message"] == "spread above 2.5"
    assert client.get(f"/api/v1/alerts/{theirs}/events", headers=trader).status_code == 404
    since = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    recent = client.get(f"/api/v1/alerts/events?since={since}", headers=trader).get_json()
    assert [(e["rule_id"], e["to_state"]) for e in recent] == [(mine, "normal")]
    everything = client.get("/api/v1/alerts/events?limit=2", headers=admin).get_json()
    assert len(everything) == 2 and {e["rule_id"] for e in everything} == {mine, theirs}


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
    ("limit=" + "9" * 50, "limit"), ("since=yesterday", "since"), ("since=1999-01-01", "since"),
    ("since=%00", "since"), ("since=" + "2" * 5000, "since"),
], ids=["limit-0", "limit-1001", "limit-word", "limit-50-digits", "since-word", "since-1999",
        "since-nul", "since-5000-digits"])
def test_bad_event_queries_get_422_naming_the_parameter(client, trader, query, field):
    for path in ("/api/v1/alerts/events", f"/api/v1/alerts/{create(client, trader).json['id']}"
                                          "/events"):
        response = client.get(f"{path}?{query}", headers=trader)
        assert response.status_code == 422, response.get_json()
        assert fields_of(response) == {field}


def test_contact_points_are_checked_on_save(app, client, trader):
    closed = f"http://127.0.0.1:{free_port()}/hook"
    for body, field in (({"name": "x", "kind": "webhook", "url": "ftp://127.0.0.1/"}, "url"),
                        ({"name": "x", "kind": "webhook", "url": closed}, "url"),
                        ({"name": "x", "kind": "carrier-pigeon", "url": closed}, "kind"),
                        ({"name": "", "kind": "webhook", "url": closed}, "name"),
                        ({"name": "x", "kind": "email", "to": "nobody"}, "to"),
                        ({"name": "x", "kind": "webhook", "url": closed, "shared": True},
                         "shared")):
        response = client.post("/api/v1/contact-points", json=body, headers=trader)
        assert response.status_code == 422, (body, response.get_json())
        assert field in fields_of(response)
    assert create(client, trader, notify=[closed]).status_code == 422
    with app.extensions["p2pdash"].engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(contact_points)) == 0
    assert client.get("/api/v1/contact-points", headers=trader).get_json() == []


@pytest.mark.parametrize("case", [
    ({"kind": ["webhook"]}, "kind"), ({"url": "http://[::1"}, "url"),
    ({"url": "http://" + "a" * 70 + ".example/hook"}, "url"), ({"url": "{hook}/a\x00b"}, "url"),
    ({"url": "{hook}/" + "x" * 2000}, "url"), ({"url": ["{hook}"]}, "url"),
], ids=["kind-list", "bad-ipv6", "long-label", "nul", "too-long", "url-list"])
def test_contact_point_urls_that_cannot_be_used_get_422(app, client, trader, hook, case):
    changes, field = case
    url = changes.get("url")
    if isinstance(url, str):
        changes = {"url": url.replace("{hook}", hook.url)}
    contact = {"name": "x", "kind": "webhook", "url": hook.url, **changes}
    response = client.post("/api/v1/contact-points", json=contact, headers=trader)
    assert response.status_code == 422, response.get_json()
    assert fields_of(response) == {field}
    if isinstance(url, str):
        rule = create(client, trader, notify=[contact["url"]])
        assert rule.status_code == 422 and fields_of(rule) == {"notify"}
    assert client.get("/api/v1/contact-points", headers=trader).get_json() == []
    assert rule_count(app) == 0


def test_a_contact_point_is_created_tested_and_deleted(client, trader, other_trader, hook):
    response = client.post("/api/v1/contact-points", headers=trader, json={
        "name": "my hook", "kind": "webhook", "url": hook.url, "secret": SECRET})
    assert response.status_code == 201, response.get_json()
    contact = response.get_json()
    assert contact["signed"] is True and contact["shared"] is False
    tested = client.post(f"/api/v1/contact-points/{contact['id']}/test", headers=trader)
    assert tested.get_json() == {"contact": "my hook", "ok": True, "status_code": 200,
                                 "response": "received"}
    assert [body["version"] for body in hook.bodies()] == ["4"]
    assert hook.posts[0][1]["X-P2pdash-Signature"].startswith("sha256=")
    path = f"/api/v1/contact-points/{contact['id']}"
    assert client.delete(path, headers=other_trader).status_code == 404
    assert client.delete(path, headers=trader).status_code == 204
    assert client.get("/api/v1/contact-points", headers=trader).get_json() == []


def test_secrets_are_never_answered(client, trader, admin, hook):
    url = f"{hook.url}/{TOKEN}"
    answers = [client.post("/api/v1/contact-points", headers=trader, json={
        "name": "signed", "kind": "webhook", "url": url, "secret": SECRET})]
    contact_id = answers[0].get_json()["id"]
    answers.append(create(client, trader, notify=[contact_id, f"{url}?key={TOKEN}"]))
    rule_id = answers[-1].get_json()["id"]
    answers.append(client.post(f"/api/v1/alerts/{rule_id}/test", headers=trader))
    hook.status = 500
    answers.append(client.post(f"/api/v1/contact-points/{contact_id}/test", headers=trader))
    with loopback_hook() as gone:  # saved while reachable, then its port closes
        gone_id = client.post("/api/v1/contact-points", headers=trader, json={
            "name": "gone", "kind": "webhook", "url": f"{gone.url}/{TOKEN}?key={TOKEN}"}
                              ).get_json()["id"]
    failed = client.post(f"/api/v1/contact-points/{gone_id}/test", headers=trader)
    assert failed.get_json()["ok"] is False and "ConnectionError" in failed.get_json()["response"]
    answers.append(failed)
    for headers in (trader, admin):
        for path in ("/api/v1/contact-points", "/api/v1/alerts", f"/api/v1/alerts/{rule_id}",
                     "/api/v1/alerts/events", "/api/v1/silences", "/api/v1/openapi.json"):
            answers.append(client.get(path, headers=headers))
    assert len(hook.posts) == 3
    listed = client.get("/api/v1/contact-points", headers=trader).get_json()
    assert [c["failing"] for c in listed] == [True, False, True]
    assert "ConnectionError" in listed[2]["last_error"]
    for answer in answers:
        text = answer.get_data(as_text=True)
        assert answer.status_code < 400, text
        assert SECRET not in text and TOKEN not in text


def test_a_rule_test_reaches_each_contact_point(client, trader, hook):
    rule_id = create(client, trader, notify=[hook.url]).get_json()["id"]
    response = client.post(f"/api/v1/alerts/{rule_id}/test", headers=trader)
    assert response.status_code == 200
    assert response.get_json() == [{"contact": "ARS spread wide #1", "ok": True,
                                    "status_code": 200, "response": "received"}]
    body = hook.bodies()[0]
    assert body["version"] == "4" and body["alerts"][0]["labels"]["alertname"] == \
        "ARS spread wide"
    silent = create(client, trader, name="silent").get_json()["id"]
    refused = client.post(f"/api/v1/alerts/{silent}/test", headers=trader)
    assert refused.status_code == 422 and fields_of(refused) == {"notify"}


def test_silences_are_created_listed_and_deleted(client, trader, other_trader):
    rule_id = create(client, trader).get_json()["id"]
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post("/api/v1/silences", headers=trader, json={
        "rule_id": rule_id, "ends_at": ends, "comment": "maintenance"})
    assert response.status_code == 201, response.get_json()
    silence = response.get_json()
    assert (silence["rule_id"], silence["comment"]) == (rule_id, "maintenance")
    by_label = client.post("/api/v1/silences", headers=trader, json={
        "matchers": [{"name": "severity", "op": "=", "value": "warning"}], "ends_at": ends})
    assert by_label.status_code == 201
    listed = client.get("/api/v1/silences", headers=trader).get_json()
    assert {s["id"] for s in listed} == {silence["id"], by_label.get_json()["id"]}
    assert client.get("/api/v1/silences", headers=other_trader).get_json() == []
    path = f"/api/v1/silences/{silence['id']}"
    assert client.delete(path, headers=other_trader).status_code == 404
    assert client.delete(path, headers=trader).status_code == 204
    assert len(client.get("/api/v1/silences", headers=trader).get_json()) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"rule_id": 2**40, "ends_at": "2999-01-01T00:00:00Z"}, "rule_id"),
    ({"rule_id": "1", "ends_at": "2999-01-01T00:00:00Z"}, "rule_id"),
    ({"matchers": [{"name": "severity", "value": "warning"}]}, "ends_at"),
    ({"matchers": [{"name": "a", "op": "~", "value": "b"}], "ends_at": "2999-01-01"},
     "matchers"),
    ({"matchers": [{"name": "a", "value": "b"}], "ends_at": "2001-01-01"}, "ends_at"),
    ({"ends_at": "2999-01-01T00:00:00Z"}, "matchers"),
])
def test_a_bad_silence_gets_422_naming_the_field(client, trader, body, field):
    response = client.post("/api/v1/silences", json=body, headers=trader)
    assert response.status_code == 422, response.get_json()
    assert field in fields_of(response)
    assert client.get("/api/v1/silences", headers=trader).get_json() == []


def test_the_openapi_document_lists_the_alerting_routes(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    expected = {
        "/api/v1/alerts": {"get", "post"}, "/api/v1/alerts/{rule_id}": {"get", "patch", "delete"},
        "/api/v1/alerts/{rule_id}/events": {"get"}, "/api/v1/alerts/events": {"get"},
        "/api/v1/alerts/{rule_id}/test": {"post"}, "/api/v1/contact-points": {"get", "post"},
        "/api/v1/contact-points/{contact_id}": {"delete"},
        "/api/v1/contact-points/{contact_id}/test": {"post"},
        "/api/v1/silences": {"get", "post"}, "/api/v1/silences/{silence_id}": {"delete"},
    }
    assert {path: set(paths.get(path, {})) for path in expected} == expected
    body = paths["/api/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]
    schema_name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][schema_name]["properties"]
    assert {"name", "metric", "market", "filters", "threshold", "for_seconds", "notify",
            "muted_until"} <= set(properties)
    assert "204" in paths["/api/v1/alerts/{rule_id}"]["delete"]["responses"]
