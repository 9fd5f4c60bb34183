"""System health: one report for /healthz, the home page and the admin tab."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from app import access, state
from db.status import database_status
from db.timescale import PLAIN_POSTGRES_WARNING

bp = Blueprint("health", __name__)


def system_health() -> dict[str, Any]:
    """Database, extension and feed status, with an overall verdict."""
    db = database_status(state.current().engine)
    warnings = []
    if not db.reachable:
        status = "down"
    elif db.timescaledb is None:
        status = "degraded"
        warnings.append(PLAIN_POSTGRES_WARNING)
    else:
        status = "ok"
    if db.reachable and db.revision is None:
        status = "degraded"
        warnings.append("the database has no schema yet: run 'p2pdash db upgrade'")
    return {
        "status": status,
        "database": "ok" if db.reachable else f"unreachable: {db.error}",
        "timescaledb": db.timescaledb,
        "feeds": db.feeds,
        "version": state.app_version(),
        "server_version": db.server_version,
        "schema_revision": db.revision,
        "warnings": warnings,
    }


@bp.get("/healthz")
@access.public
def healthz():
    """Liveness and readiness: 200 while the database answers, 503 when it does not."""
    report = system_health()
    return jsonify(report), 503 if report["status"] == "down" else 200
