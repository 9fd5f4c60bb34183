"""The engine's sessions: UTC whatever the server's own time zone, and no JIT."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import text

from db.engine import make_engine


def test_sessions_run_in_utc_and_return_utc_datetimes(database_url):
    engine = make_engine(database_url)
    name = engine.url.database
    with engine.connect() as connection:
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET TimeZone = 'America/Caracas'"))
        connection.commit()
    engine.dispose()
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SHOW TimeZone")) == "UTC"
            moment = connection.scalar(text("SELECT TIMESTAMPTZ '2024-05-01 12:00:00+00'"))
            day = connection.scalar(text("SELECT date_trunc('day', "
                                         "TIMESTAMPTZ '2024-05-01 02:00:00+00')"))
        assert moment.tzinfo is UTC, "timezone.utc: cheap to hash and compare"
        assert (day.day, day.hour) == (1, 0), "days cut at UTC midnight"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"ALTER DATABASE \"{name}\" RESET TimeZone"))
            connection.commit()
        engine.dispose()


def test_sessions_run_without_jit(engine):
    """JIT compiled the overview's lateral sparkline query for 1.2 s of a 6 ms run."""
    with engine.connect() as connection:
        assert connection.scalar(text("SHOW jit")) == "off"
        plan = connection.scalar(text(
            "EXPLAIN (FORMAT JSON) SELECT sum(a * b) FROM generate_series(1, 100000) a "
            "CROSS JOIN generate_series(1, 100000) b"))
    assert plan[0]["Plan"]["Total Cost"] > 100_000, "a plan above jit_above_cost's default"
    assert "JIT" not in plan[0]
