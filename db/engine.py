"""The SQLAlchemy engine: one pool per process, short timeouts so health checks answer fast."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine for a postgresql+psycopg URL that fails fast when the server is gone."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "application_name": "p2pdash",
                      "options": "-c TimeZone=UTC -c DateStyle=ISO,YMD"},
    )
