"""REST API /api/v1: key-authenticated JSON routes that document themselves.

Routes declare their access with `@access.api_key(scope)` and their request and response
models with `@spec.validate(...)` (spectree, on pydantic v2); /api/v1/openapi.json is
generated from those declarations. A request body that fails validation gets 422 with
one entry per bad field: {"index", "field", "message"} (index: the item of a list body).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, g, jsonify
from pydantic import ValidationError
from spectree import SpecTree

from app import access
from app.api.errors import ApiError, ValidationErrorBody
from app.extensions import csrf

if TYPE_CHECKING:
    from app.api.keys import ApiPrincipal

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as [{"index", "field", "message"}], index set for list items."""
    errors = []
    for item in error.errors():
        location = [part for part in item["loc"] if part not in ("body", "__root__", "root")]
        index = location.pop(0) if location and isinstance(location[0], int) else None
        field = ".".join(str(part) for part in location) or None
        errors.append({"index": index, "field": field, "message": item["msg"]})
    return errors


def _reject_invalid(_request, _response, error, _instance, *_args) -> None:
    if error is not None:
        raise ApiError(422, "validation_failed", "the request does not match the schema",
                       field_errors(error))


spec = SpecTree(
    "flask",
    mode="strict",
    title="p2pdash API",
    version="1",
    description="Market data and ingestion. Send an API key in X-API-Key or "
                "Authorization: Bearer.",
    page_templates={},
    security_schemes=[
        {"name": "ApiKey", "data": {"type": "apiKey", "field_in": "header", "name": "X-API-Key"}},
        {"name": "Bearer", "data": {"type": "http", "scheme": "bearer"}},
    ],
    security=[{"ApiKey": []}, {"Bearer": []}],
    before=_reject_invalid,
    validation_error_model=ValidationErrorBody,
)


def principal() -> ApiPrincipal:
    """The API key (and its user) calling this request; set by the gate."""
    return g.api_principal


@bp.get("/openapi.json")
@access.public
def openapi_document():
    """The OpenAPI 3 document of every declared route."""
    return jsonify(_document())


@functools.cache
def _document() -> dict[str, Any]:
    from app.api.openapi import complete

    return complete(spec.spec)


@bp.route("/<path:_rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@access.public
def not_found(_rest: str):
    """Unknown API paths answer JSON, not the dashboard."""
    raise ApiError(404, "not_found", "no such API route; see /api/v1/openapi.json")


def register(server: Flask) -> None:
    """Mount the API on `server`, without cookie-based CSRF (keys are not cookies)."""
    from app.api import alerts, candles, errors, export, me, p2p  # noqa: F401  (route modules register on bp)

    csrf.exempt(bp)
    errors.register(server)
    server.register_blueprint(bp)
