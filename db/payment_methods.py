"""Payment methods: the exchanges' identifiers and the canonical codes they map to.

Ingestion records every identifier it meets; those without a canonical code are listed for
an admin, who maps them (the mapping is data, so it needs no release, and it applies at
once to offers already stored, because filters resolve codes through this table).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, select, update

from db.schema import payment_methods

CANONICAL = re.compile(r"^[a-z0-9_]{2,40}$")


def unknown_payment_methods(engine: Engine, exchange: str | None = None) -> list[dict[str, Any]]:
    """Identifiers seen but not mapped to a canonical code, newest first."""
    pm = payment_methods.c
    statement = (select(pm.exchange, pm.identifier, pm.name, pm.fiat, pm.first_seen_at)
                 .where(pm.canonical.is_(None)).order_by(pm.first_seen_at.desc(), pm.id.desc()))
    if exchange is not None:
        statement = statement.where(pm.exchange == exchange)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def set_canonical(engine: Engine, exchange: str, identifier: str, canonical: str | None) -> bool:
    """Map an identifier to a canonical code (None unmaps it); False if it is unknown."""
    if canonical is not None and not CANONICAL.match(canonical):
        raise ValueError(f"canonical: {canonical!r} is not a code like bank_transfer")
    pm = payment_methods.c
    with engine.begin() as connection:
        result = connection.execute(update(payment_methods)
                                    .where(pm.exchange == exchange, pm.identifier == identifier)
                                    .values(canonical=canonical))
    return result.rowcount == 1


def canonical_codes(engine: Engine) -> list[str]:
    """Every canonical code in use, for filter choices."""
    pm = payment_methods.c
    with engine.connect() as connection:
        return list(connection.scalars(select(pm.canonical).where(pm.canonical.isnot(None))
                                       .distinct().order_by(pm.canonical)))
