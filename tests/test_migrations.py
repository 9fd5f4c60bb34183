"""Migrations: the whole data model, hypertables on TimescaleDB, plain tables without it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import inspect, text

from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.schema import HYPERTABLES, metadata

RELATIONAL = {"runs", "ingest_errors", "p2p_snapshots", "payment_methods", "users", "api_keys",
              "alert_rules", "alert_events", "audit_log", "alert_states",
              "contact_points", "silences", "notification_outbox", "notification_attempts"}


@pytest.fixture
def engine(empty_database_url):
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def hypertables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(text(
            "SELECT hypertable_name FROM timescaledb_information.hypertables")))


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_of_an_empty_database_creates_hypertables_and_tables(engine):
    upgrade(engine)
    assert hypertables(engine) == set(HYPERTABLES)
    assert tables(engine) >= RELATIONAL | set(HYPERTABLES)
    assert current_revision(engine) == head_revision()


def test_chunk_intervals_follow_the_data_rates(engine):
    upgrade(engine)
    with engine.connect() as connection:
        rows = dict(connection.execute(text(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions")).all())
    assert rows["p2p_offers"].days == 1
    assert rows["candles"].days == 7


def test_downgrade_and_upgrade_again(engine):
    upgrade(engine)
    downgrade(engine, "base")
    assert tables(engine) == {"alembic_version"}
    upgrade(engine)
    assert hypertables(engine) == set(HYPERTABLES)


def test_upgrade_twice_changes_nothing(engine):
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_schema_module_matches_the_migrated_database(engine):
    upgrade(engine)
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name


def test_plain_postgres_gets_plain_tables_and_a_loud_warning(plain_database_url, caplog):
    engine = make_engine(plain_database_url)
    with caplog.at_level(logging.WARNING, logger="db.timescale"):
        upgrade(engine)
    assert tables(engine) >= RELATIONAL | set(HYPERTABLES)
    with engine.connect() as connection:
        assert connection.scalar(text(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")) == 0
    assert any("TimescaleDB is not available" in message for message in caplog.messages)
    assert any("shared_preload_libraries" in message for message in caplog.messages)
    engine.dispose()


def test_candle_pages_keep_room_for_updates_in_every_chunk(engine):
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO candles (exchange, symbol, interval, open_time, open, high, low, "
            "close, volume, close_time, trades, quote_volume, taker_base_volume, "
            "taker_quote_volume, is_closed) SELECT 'binance', 'BTCUSDT', '1m', t, 1, 1, 1, "
            "1, 1, t + interval '59.999 s', 1, 1, 1, 1, true FROM generate_series("
            "timestamptz '2026-01-01', timestamptz '2026-03-01', interval '1 day') AS t"))
        options = connection.execute(text(
            "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_inherits i "
            "ON i.inhrelid = c.oid WHERE i.inhparent = 'candles'::regclass "
            "UNION ALL SELECT relname, reloptions FROM pg_class WHERE relname = 'candles'"
        )).all()
    assert len(options) > 2, "candles is chunked, and its chunks inherit from it"
    assert all(row.reloptions == ["fillfactor=70"] for row in options), options
