"""The REST API foundation: key auth, scopes, errors, throttling, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel
from sqlalchemy import text

from app import access, create_app
from app.api import bp, field_errors, spec
from app.api.keys import KEY_PREFIX, hash_key
from app.auth import commands
from app.auth.errors import AccountError
from tests.conftest import add_user, api_key, make_settings


def _key(app, username: str = "analyst", role: str = "analyst", scopes=("read",),
         **options) -> tuple[dict, str]:
    return api_key(app, role, tuple(scopes), username, **options)


def test_me_answers_for_a_key_in_x_api_key(app, client):
    _row, key = _key(app, scopes=("read", "export"))
    response = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.get_json() == {"username": "analyst", "role": "analyst",
                                   "scopes": ["read", "export"]}


def test_me_answers_for_a_bearer_key(app, client):
    _row, key = _key(app)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200 and response.get_json()["username"] == "analyst"


@pytest.mark.parametrize("headers", [
    {}, {"X-API-Key": "p2pd_00000000_nope"}, {"X-API-Key": "garbage"},
    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
])
def test_missing_or_unknown_keys_get_401_json(app, client, headers):
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_with_a_wrong_secret_but_a_real_prefix_gets_401(app, client):
    row, key = _key(app)
    forged = f"{row['prefix']}_{'A' * 43}"
    assert forged != key
    assert client.get("/api/v1/me", headers={"X-API-Key": forged}).status_code == 401


def test_revoked_key_gets_401(app, client):
    row, key = _key(app)
    commands.revoke_key(app.extensions["p2pdash"].engine, "test", row["id"])
    response = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "API key revoked"


def test_expired_key_gets_401(app, client):
    row, key = _key(app, expires_days=1)
    with app.extensions["p2pdash"].engine.begin() as connection:
        connection.execute(text("UPDATE api_keys SET expires_at = now() - interval '1 second' "
                                "WHERE id = :id"), {"id": row["id"]})
    response = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "API key expired"


def test_a_disabled_users_keys_get_401(app, client):
    _row, key = _key(app)
    commands.set_active(app.extensions["p2pdash"].engine, "test", "analyst", False)
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 401


def test_a_demoted_users_key_loses_the_scopes_of_the_old_role(app, client):
    _row, key = _key(app, scopes=("read", "export"))
    commands.set_role(app.extensions["p2pdash"].engine, "test", "analyst", "trader")
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).get_json()["scopes"] == []


def test_keys_are_stored_as_sha256_with_a_short_prefix(app):
    row, key = _key(app)
    assert key.startswith(f"{KEY_PREFIX}_") and len(key) >= 50
    assert row["prefix"] == key[: len(row["prefix"])] and len(row["prefix"]) == 13
    with app.extensions["p2pdash"].engine.connect() as connection:
        stored = connection.scalar(text("SELECT key_hash FROM api_keys WHERE id = :id"),
                                   {"id": row["id"]})
    assert stored == hash_key(key) and key not in stored


def test_last_used_at_is_kept_but_not_written_on_every_call(app, client):
    row, key = _key(app)
    engine = app.extensions["p2pdash"].engine

    def last_used():
        with engine.connect() as connection:
            return connection.scalar(text("SELECT last_used_at FROM api_keys WHERE id = :id"),
                                     {"id": row["id"]})

    assert last_used() is None
    client.get("/api/v1/me", headers={"X-API-Key": key})
    first = last_used()
    assert first is not None
    client.get("/api/v1/me", headers={"X-API-Key": key})
    assert last_used() == first


def test_scopes_wider_than_the_role_are_refused(app):
    add_user(app, "trader")
    with pytest.raises(AccountError, match="may not hold read"):
        commands.create_key(app.extensions["p2pdash"].engine, "test", "trader", "k", ["read"])
    add_user(app, "analyst")
    with pytest.raises(AccountError, match="may not hold ingest"):
        commands.create_key(app.extensions["p2pdash"].engine, "test", "analyst", "k",
                            ["read", "ingest"])


def test_session_cookies_do_not_open_the_api(client_as):
    admin = client_as("admin")
    assert admin.get("/api/v1/me").status_code == 401


def test_unknown_api_paths_answer_json_404(client):
    response = client.get("/api/v1/nothing/here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_openapi_document_is_generated_from_the_routes(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    me = document["paths"]["/api/v1/me"]["get"]
    assert "200" in me["responses"] and "401" in me["responses"]
    assert document["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert "/api/v1/openapi.json" not in document["paths"]


def test_api_calls_are_throttled_per_key(database_url, tmp_path):
    server = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                      P2PDASH_API_RATE_PER_MINUTE="3"))
    _row, key = _key(server)
    _other_row, other = _key(server, "analyst2", "analyst")
    client = server.test_client()
    statuses = [client.get("/api/v1/me", headers={"X-API-Key": key}).status_code
                for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert client.get("/api/v1/me", headers={"X-API-Key": other}).status_code == 200
    server.extensions["p2pdash"].engine.dispose()


class Item(BaseModel):
    """One pushed item, for the validation test."""

    symbol: str
    price: float


class Batch(BaseModel):
    """A list body, as an ingest push sends."""

    items: list[Item]


def test_bad_items_of_a_batch_get_422_naming_index_and_field(settings):
    server = create_app(settings)

    @access.api_key("ingest")
    @spec.validate(json=Batch, tags=["test"])
    def push(json: Batch):
        """Accept a batch."""
        return {"accepted": len(json.items)}

    server.add_url_rule("/api/v1/test-push", "api.test_push", push, methods=["POST"])
    _row, key = _key(server, "admin", "admin", scopes=("ingest",))
    client = server.test_client()
    good = {"items": [{"symbol": "BTCUSDT", "price": 1.5}]}
    assert client.post("/api/v1/test-push", json=good, headers={"X-API-Key": key}) \
        .get_json() == {"accepted": 1}
    bad = {"items": [{"symbol": "BTCUSDT", "price": 1}, {"symbol": 5}, {"price": "x"}]}
    response = client.post("/api/v1/test-push", json=bad, headers={"X-API-Key": key})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    fields = {(d["field"], d["message"].split(",")[0]) for d in error["details"]}
    assert ("items.1.symbol", "Input should be a valid string") in fields
    assert ("items.1.price", "Field required") in fields
    server.extensions["p2pdash"].engine.dispose()


def test_field_errors_give_the_index_of_a_bad_item_in_a_list_body():
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError) as caught:
        TypeAdapter(list[Item]).validate_python([{"symbol": "A", "price": 1}, {"symbol": "B"}])
    assert field_errors(caught.value) == [{"index": 1, "field": "price",
                                           "message": "Field required"}]


def test_expiry_is_stored(app):
    row, _key_text = _key(app, expires_days=7)
    assert abs(row["expires_at"] - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    assert bp.url_prefix == "/api/v1"
