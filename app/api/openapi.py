"""The OpenAPI document: spectree's output from the route declarations, completed here.

Spectree writes each route's models; this module adds what is the same for every route
(the error answers 400, 401, 403, 404, 413, 422 and 429 in the one error shape), the
answers that are files rather than JSON, and the parameter constraints pydantic cannot say
in a query string (an optional parameter is "absent", not "null"). The field constraints
below are the ones the routes' own validators apply, so a generated request that the
document calls valid passes them, and schemathesis can aim at the edges.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from db.candles_api import MAX_LIMIT
from db.intervals import INTERVALS

# ---- parameter constraints, shared by the query models -----------------------------------

ISO_OR_EPOCH_MS = (r"^([0-9]{1,13}|[0-9]{4}-[0-9]{2}-[0-9]{2}"
                   r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
                   r"(Z|[+-][0-9]{2}:?[0-9]{2})?)$")
DECIMAL = r"^[0-9]{1,20}(\.[0-9]{1,18})?$"
POSITIVE_DECIMAL = r"^([1-9][0-9]{0,19}(\.[0-9]{1,18})?|0\.[0-9]{0,17}[1-9])$"
# 2017-01-01 up to the end of 2025: a push from before P2P markets or from the future is a 422.
CAPTURED_AT = (r"^20(1[7-9]|2[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
               r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|\+00:00)$")
CODE = r"^[A-Za-z0-9]{2,10}$"
SYMBOL = r"^[A-Za-z0-9]{2,20}$"
PAYMENTS = r"^[a-z0-9_]{1,40}(,[a-z0-9_]{1,40}){0,19}$"
FRACTION = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
INTERVAL_NAMES = tuple(INTERVALS)
BUCKET_NAMES = tuple(name for name in INTERVALS if name not in ("3d", "1w"))


def time_field(description: str) -> Any:
    """An optional time: ISO 8601 (UTC unless it says) or epoch milliseconds."""
    return Field(None, description=description, max_length=40, pattern=ISO_OR_EPOCH_MS)


def decimal_field(description: str) -> Any:
    """An optional plain decimal, as a string (never through float)."""
    return Field(None, description=description, max_length=40, pattern=DECIMAL)


def limit_field(maximum: int = MAX_LIMIT, default: int | None = None) -> Any:
    """An optional whole number from 1 to `maximum`."""
    return Field(default, ge=1, le=maximum,
                 description=f"1 to {maximum}" + (f", default {default}" if default else ""))


# ---- what every operation may answer -------------------------------------------------------

ERRORS = {
    "400": "a parameter or the body is malformed; details name the field",
    "401": "no API key, or an unknown, revoked or expired one",
    "403": "the key lacks the scope this route needs",
    "404": "no such object",
    "413": "the body is too large",
    "422": "the body does not match the schema; details name each field",
    "429": "too many calls for this key; retry after Retry-After seconds",
}
# (path, method, status) -> {media type: schema}: answers that are files, not JSON.
FILE_ANSWERS: dict[tuple[str, str, str], dict[str, Any]] = {}
# (path, parameter) -> schema: path parameters, which spectree types as any string.
PATH_PARAMETERS: dict[tuple[str, str], dict[str, Any]] = {}
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}


def file_answer(path: str, method: str, media: dict[str, dict[str, Any]],
                status: str = "200") -> None:
    """Declare that `method path` answers `status` with a file of these media types."""
    FILE_ANSWERS[(path, method.lower(), status)] = media


def path_parameter(path: str, name: str, schema: dict[str, Any]) -> None:
    """Declare the schema of a path parameter (an id, a dataset name)."""
    PATH_PARAMETERS[(path, name)] = schema


def _path_parameters(path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        schema = PATH_PARAMETERS.get((path, parameter["name"]))
        if parameter.get("in") == "path" and schema is not None:
            parameter["schema"] = schema


def _schema_key(document: dict[str, Any], model: str) -> str | None:
    """The key spectree gave `model` in components/schemas (it adds a module hash)."""
    schemas = document.get("components", {}).get("schemas", {})
    return next((key for key in schemas if key.split(".")[0] == model and key.count(".") <= 1),
                None)


def _errors(document: dict[str, Any], operation: dict[str, Any], has_path_id: bool) -> None:
    responses = operation.setdefault("responses", {})
    for status, description in ERRORS.items():
        if status == "404" and not has_path_id:
            continue
        model = "ValidationErrorBody" if status == "422" else "ErrorBody"
        key = _schema_key(document, model)
        answer = responses.setdefault(status, {})
        answer["description"] = description
        if key:
            answer["content"] = {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{key}"}}}
        if status == "429":
            answer["headers"] = {"Retry-After": {
                "description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}}


def _absent_not_null(operation: dict[str, Any]) -> None:
    """A query parameter is present or absent; drop pydantic's "or null"."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        options = schema.get("anyOf")
        if options and {"type": "null"} in options:
            kept = [option for option in options if option != {"type": "null"}]
            merged = {key: value for key, value in schema.items() if key != "anyOf"}
            if len(kept) == 1:
                merged.update(kept[0])
            else:
                merged["anyOf"] = kept
            if merged.get("default", 0) is None:
                merged.pop("default")
            parameter["schema"] = merged


def complete(raw: dict[str, Any]) -> dict[str, Any]:
    """The document to serve: `raw` (spectree's) with errors, files and parameters fixed."""
    document = copy.deepcopy(raw)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _errors(document, operation, has_path_id="{" in path)
            _absent_not_null(operation)
            _path_parameters(path, operation)
            for status in ("200", "201"):
                media = FILE_ANSWERS.get((path, method, status), {})
                if media:
                    answer = operation["responses"].setdefault(status, {"description": "a file"})
                    answer.setdefault("content", {}).update(
                        {name: {"schema": schema} for name, schema in media.items()})
    return document
