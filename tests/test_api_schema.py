"""schemathesis over /api/v1/openapi.json: generated requests to every operation, with a key
of every scope, answer no 5xx and nothing the document does not state (status, content type,
body schema).

One app and one database serve the whole module (the cases are many and each is small);
hypothesis's example count per operation is bounded so the suite stays quick.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from app import create_app
from tests.conftest import _new_database, api_key, make_settings

ALL_SCOPES = ("read", "export", "ingest", "alerts")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]
EXAMPLES = 12
# Operations that any valid request with the key answers 2xx: if these saw none, the cases
# never got past the gate, and the run proved nothing.
ALWAYS_OK = ("GET /api/v1/me", "GET /api/v1/alerts", "GET /api/v1/p2p/summary",
             "GET /api/v1/p2p/depth", "GET /api/v1/silences")


@pytest.fixture(scope="module")
def api_app(pg_cluster, tmp_path_factory) -> Iterator[Flask]:
    database = _new_database(pg_cluster, "p2pdash_template")
    url = next(database)
    server = create_app(make_settings(tmp_path_factory.mktemp("schema"), DATABASE_URL=url))
    yield server
    server.extensions["p2pdash"].engine.dispose()
    next(database, None)


@pytest.fixture(scope="module")
def keys(api_app) -> dict[str, str]:
    """A key holding every scope, and one that may only read."""
    return {"all": api_key(api_app, "admin", ALL_SCOPES)[1],
            "read": api_key(api_app, "analyst", ("read",))[1]}


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


def _failure(operation, mode: GenerationMode, key: str, seen: Counter) -> str | None:
    """The first case of `operation` that breaks a check, as text, or None."""

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case) -> None:
        response = case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)
        seen[operation.label, response.status_code // 100] += 1

    try:
        run()
    except Exception as error:  # every failure is reported, with its case
        return f"{operation.label} [{mode.value}]: {str(error)[:1500]}"
    return None


@pytest.mark.parametrize(("mode", "scopes"), [(GenerationMode.POSITIVE, "all"),
                                               (GenerationMode.NEGATIVE, "all"),
                                               (GenerationMode.POSITIVE, "read")])
def test_every_operation_answers_as_documented(api_schema, keys, mode, scopes):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 15
    seen: Counter = Counter()
    failures = [text for operation in operations
                if (text := _failure(operation, mode, keys[scopes], seen))]
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:
        assert all(seen[label, 2] for label in ALWAYS_OK), sorted(seen.items())


def test_every_operation_documents_every_answer(api_app):
    document = api_app.test_client().get("/api/v1/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = set(operation["responses"])
            expected = {"400", "401", "403", "413", "422", "429"} | (
                {"404"} if "{" in path else set())
            assert expected <= answers, (method, path, answers)
            assert answers & {"200", "201", "204"}, (method, path, answers)
    depth = document["paths"]["/api/v1/p2p/depth"]["get"]["responses"]["200"]
    assert "application/json" in depth["content"]
    limit = next(parameter["schema"] for parameter in
                 document["paths"]["/api/v1/candles"]["get"]["parameters"]
                 if parameter["name"] == "limit")
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 5000)
