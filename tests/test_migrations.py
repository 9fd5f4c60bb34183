"""Migrations: the whole data model, hypertables on TimescaleDB, plain tables without it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import inspect, text

from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.schema import HYPERTABLES, metadata, views

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
    for table in (*metadata.sorted_tables, *views.sorted_tables):
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


CANDLE_COLUMNS = ("exchange, symbol, interval, open_time, open, high, low, close, volume, "
                  "close_time, trades, quote_volume, taker_base_volume, taker_quote_volume, "
                  "is_closed")


def _insert_candles(connection, first: str, last: str, every: str, closed: str) -> None:
    connection.execute(text(
        f"INSERT INTO candles ({CANDLE_COLUMNS}) SELECT 'binance', 'BTCUSDT', '1m', t, 1, 1, 1, "
        f"1, 1, t + interval '59.999 s', 1, 1, 1, 1, {closed} FROM generate_series("
        f"CAST('{first}' AS timestamptz), CAST('{last}' AS timestamptz), "
        f"CAST('{every}' AS interval)) AS t"))


def test_0011_moves_the_open_candle_apart_and_gives_candle_pages_back_their_room(engine):
    upgrade(engine, "0010")
    with engine.begin() as connection:
        _insert_candles(connection, "2026-01-01", "2026-03-01", "1 day", "true")
        # A minute long ago whose close never came, and the two newest minutes, still open.
        _insert_candles(connection, "2026-03-02", "2026-03-02", "1 minute", "false")
        connection.execute(text(
            f"INSERT INTO candles ({CANDLE_COLUMNS}) SELECT 'binance', 'BTCUSDT', '1m', "
            "date_trunc('minute', now()) - m * interval '1 minute', 2, 2, 2, 2, 2, "
            "date_trunc('minute', now()), 2, 2, 2, 2, false FROM generate_series(0, 1) AS m"))
    upgrade(engine)
    with engine.connect() as connection:
        options = connection.execute(text(
            "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_inherits i "
            "ON i.inhrelid = c.oid WHERE i.inhparent = 'candles'::regclass "
            "UNION ALL SELECT relname, reloptions FROM pg_class WHERE relname = 'candles'"
        )).all()
        live = connection.execute(text(
            "SELECT relpersistence, reloptions FROM pg_class WHERE relname = 'candles_live'")
        ).one()
        moved = connection.execute(text("SELECT open_time, close FROM candles_live")).all()
        open_stored = connection.scalars(text(
            "SELECT open_time FROM candles WHERE NOT is_closed ORDER BY open_time")).all()
        everything = connection.scalar(text("SELECT count(*) FROM candles_all"))
    assert len(options) > 2, "candles is chunked, and its chunks inherit from it"
    assert all(row.reloptions is None for row in options), options
    assert (live.relpersistence, live.reloptions) == ("u", ["fillfactor=50"])
    assert len(moved) == 1 and moved[0].close == 2, "the newest open candle, moved"
    assert [t.isoformat() for t in open_stored][:1] == ["2026-03-02T00:00:00+00:00"]
    assert len(open_stored) == 2, "the old unclosed minute and the minute before the newest"
    assert everything == 60 + 1 + 2, "the view shows every candle once"


def test_0011_downgrade_puts_the_open_candles_back(engine):
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(
            f"INSERT INTO candles_live ({CANDLE_COLUMNS}) VALUES ('binance', 'BTCUSDT', '1m', "
            "'2026-03-02', 1, 1, 1, 1, 1, '2026-03-02 00:00:59.999', 1, 1, 1, 1, false)"))
    downgrade(engine, "0010")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM candles WHERE NOT is_closed")) == 1
