"""System health: one report for /healthz, the home page and the admin tab."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_login import current_user
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app import access, state
from db import retention
from db.status import database_status
from db.timescale import PLAIN_POSTGRES_WARNING

log = logging.getLogger(__name__)
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
        "ingest": ingest_status(),
        "retention": retention_status() if db.reachable and db.revision else {},
    }


def retention_status() -> dict[str, dict[str, Any]]:
    """Per table retention may cut: its oldest row and how many days are kept (0: all)."""
    current = state.current()
    try:
        oldest = retention.oldest_rows(current.engine)
    except SQLAlchemyError as error:
        log.warning("oldest rows unknown: %s", str(error).splitlines()[0])
        return {}
    keep = current.settings.retention.keep_days
    return {table: {"oldest": when, "keep_days": keep.get(table, 0)}
            for table, when in oldest.items()}


def ingest_status() -> dict[str, Any] | None:
    """This process's ingestion through an outage: leadership, lock, rows held and lost."""
    service = current_app.extensions.get("p2pdash_ingest")
    if service is None:
        return None
    report = service.status()
    return {key: report[key] for key in ("leader", "leader_lock", "writer", "p2p_polls")
            if key in report}


def cache_status() -> dict[str, Any]:
    """Which cache backend serves this process, and whether it answers."""
    settings = state.current().settings
    if not settings.redis_url:
        return {"backend": "process-local", "ok": True, "error": None}
    try:
        Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1).ping()
    except RedisError as error:
        return {"backend": "redis", "ok": False, "error": str(error).splitlines()[0]}
    return {"backend": "redis", "ok": True, "error": None}


@bp.get("/healthz")
@access.public
def healthz():
    """Liveness and readiness: 200 while the database answers, 503 when it does not. Only
    a signed-in admin sees the report behind the verdict (versions, feeds, who pushed data,
    and in an outage where the database is): anyone else gets the status alone."""
    report = system_health()
    code = 503 if report["status"] == "down" else 200
    if not (current_user.is_authenticated and current_user.role == "admin"):
        report = {"status": report["status"]}
    return jsonify(report), code
