"""The audit log: every admin action and every login attempt, with who, what and when."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Connection, Engine, insert, select

from db.schema import audit_log

log = logging.getLogger(__name__)


def client_ip() -> str | None:
    """The caller's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr if has_request_context() else None


def record(bind: Engine | Connection, actor: str | None, action: str, target: str | None = None,
           details: Mapping[str, Any] | None = None) -> None:
    """Append one entry; `bind` may be a connection inside the action's own transaction."""
    values = {"actor": actor, "action": action, "target": target, "ip": client_ip(),
              "details": dict(details or {})}
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            connection.execute(insert(audit_log).values(**values))
    else:
        bind.execute(insert(audit_log).values(**values))
    log.info("audit %s", action, extra={"actor": actor, "target": target})


def entries(engine: Engine, *, actor: str | None = None, action: str | None = None,
            since: datetime | None = None, until: datetime | None = None,
            limit: int = 200) -> list[dict[str, Any]]:
    """The newest entries matching the filters (actor and action match a prefix)."""
    query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor.ilike(_prefix(actor)))
    if action:
        query = query.where(audit_log.c.action.ilike(_prefix(action)))
    if since:
        query = query.where(audit_log.c.at >= since)
    if until:
        query = query.where(audit_log.c.at <= until)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def actions(engine: Engine) -> list[str]:
    """Every action name seen so far, for the admin filter."""
    with engine.connect() as connection:
        query = select(audit_log.c.action).distinct().order_by(audit_log.c.action)
        return list(connection.scalars(query))


def _prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
