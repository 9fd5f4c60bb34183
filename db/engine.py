"""The SQLAlchemy engine: one pool per process, short timeouts so health checks answer fast.

Sessions run with PostgreSQL's JIT off. The planner prices a lateral query over many
hypertable chunks (a sparkline of every symbol, a month of candles) above `jit_above_cost`,
and compiling it then took 1.2 s of a query that runs in 6 ms (EXPLAIN ANALYZE of the
overview's day closes on bench/views.py's full dataset). The app's queries are short index
reads: JIT never pays for itself there, and on a cold screen wall it stalled every view.
"""

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
                      "options": "-c TimeZone=UTC -c DateStyle=ISO,YMD -c jit=off"},
    )
