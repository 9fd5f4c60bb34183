"""API errors: one JSON shape, {"error": {"code", "message", "details"}}, for every failure."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

PREFIX = "/api/"


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a sentence, and details (fields at fault)."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The shape of every API error, for the OpenAPI document."""

    error: ErrorDetail


class FieldError(BaseModel):
    """One bad field: `index` is the item of a list body (None for a single object)."""

    index: int | None
    field: str | None
    message: str


class ValidationDetail(ErrorDetail):
    """A 422: one entry per bad field."""

    details: list[FieldError]


class ValidationErrorBody(BaseModel):
    """The shape of a 422 answer."""

    error: ValidationDetail


class ApiError(Exception):
    """An error an API route answers with; `details` names the fields at fault."""

    def __init__(self, status: int, code: str, message: str,
                 details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None):
    """A JSON error response."""
    body = {"error": {"code": code, "message": message,
                      "details": details if details is not None else {}}}
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _from_api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def _from_http_error(error: HTTPException):
    if not request.path.startswith(PREFIX):
        return error
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


def register(server: Flask) -> None:
    """Answer API errors (and HTTP errors on /api/ paths) as JSON."""
    server.register_error_handler(ApiError, _from_api_error)
    server.register_error_handler(HTTPException, _from_http_error)
