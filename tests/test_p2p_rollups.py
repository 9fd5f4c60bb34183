"""Hourly P2P aggregates: each closed hour equals what its snapshots said, recomputing is
idempotent and takes late snapshots in, and history drawn after the snapshots are cut is the
history drawn before (TimescaleDB and plain PostgreSQL)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from app.config import P2PMarket
from db import p2p_rollups, retention
from db.p2p_history import histories, history
from ingest.runs import start_run

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
START = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)  # two days and a half of snapshots
MARKET = P2PMarket("binance", "USDT", "ARS")
OTHER = P2PMarket("okx", "USDT", "NGN")


@pytest.fixture
def engine(each_server_engine):
    """TimescaleDB and plain PostgreSQL (tests/conftest.py), with rows of this module."""
    engine = each_server_engine
    with start_run(engine, "binance_p2p", "p2p_poll", "USDT/ARS") as run:
        run_id = run.id
    # A snapshot of each side every 20 minutes; prices move with the minute of the day.
    with engine.begin() as connection:
        for market, offset in ((MARKET, 0), (OTHER, 500)):
            connection.execute(text(
                "INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, "
                "       offers, complete, best_price, liquidity) "
                "SELECT :run, :exchange, :asset, :fiat, side, at, 3, true, "
                "       CASE side WHEN 'ask' THEN 1010 ELSE 1000 END + :offset "
                "           + (extract(epoch FROM at)::bigint / 60 % 97), "
                "       100 + extract(epoch FROM at)::bigint / 1200 % 7 "
                "FROM generate_series(CAST(:start AS timestamptz), CAST(:now AS timestamptz), "
                "                     interval '20 minutes') AS at "
                "CROSS JOIN (VALUES ('ask'), ('bid')) AS s (side)"),
                {"run": run_id, "exchange": market.exchange, "asset": market.asset,
                 "fiat": market.fiat, "offset": offset, "start": START, "now": NOW})
    return engine


def _hourly(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT exchange, side, bucket, snapshots, last_at, last_price, min_price, "
            "max_price, avg_liquidity FROM p2p_hourly ORDER BY 1, 2, 3")).all()


def test_each_closed_hour_equals_its_snapshots_and_recomputing_changes_nothing(engine):
    written = p2p_rollups.recompute(engine, START, NOW, now=NOW)
    rows = _hourly(engine)
    hours = int((NOW.replace(minute=0) - START) / timedelta(hours=1))
    assert written == len(rows) == 2 * 2 * hours  # markets x sides x closed hours
    assert max(row.bucket for row in rows) == NOW.replace(minute=0) - timedelta(hours=1)
    with engine.connect() as connection:
        expected = connection.execute(text(
            "SELECT count(*), max(captured_at), min(best_price), max(best_price), "
            "avg(liquidity) FROM p2p_snapshots WHERE exchange = 'binance' AND side = 'ask' "
            "AND captured_at >= '2026-03-09 05:00+00' AND captured_at < '2026-03-09 06:00+00'"
        )).one()
        last = connection.scalar(text(
            "SELECT best_price FROM p2p_snapshots WHERE exchange = 'binance' AND side = 'ask' "
            "AND captured_at = :at"), {"at": expected[1]})
    hour = next(row for row in rows if row.exchange == "binance" and row.side == "ask"
                and row.bucket == datetime(2026, 3, 9, 5, tzinfo=UTC))
    assert (hour.snapshots, hour.last_at, hour.min_price, hour.max_price,
            hour.avg_liquidity) == tuple(expected)
    assert hour.last_price == last and isinstance(hour.last_price, Decimal)
    p2p_rollups.recompute(engine, START, NOW, now=NOW)
    assert _hourly(engine) == rows


def _late_bid(engine, at: datetime) -> None:
    """A complete binance bid snapshot at `at` (best price 1, liquidity 5), stored late."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, captured_at, "
            "offers, complete, best_price, liquidity) SELECT run_id, exchange, asset, fiat, "
            "side, :at, 1, true, 1, 5 FROM p2p_snapshots WHERE exchange = 'binance' "
            "AND side = 'bid' LIMIT 1"), {"at": at})


def test_a_late_snapshot_is_taken_in_when_its_hour_is_recomputed(engine):
    p2p_rollups.refresh(engine, recent=timedelta(days=2), now=NOW)  # first time: everything
    late = datetime(2026, 3, 10, 9, 59, tzinfo=UTC)
    _late_bid(engine, late)
    p2p_rollups.refresh(engine, recent=timedelta(hours=6), now=NOW)
    hour = next(row for row in _hourly(engine) if row.exchange == "binance"
                and row.side == "bid" and row.bucket == datetime(2026, 3, 10, 9, tzinfo=UTC))
    assert (hour.snapshots, hour.last_at, hour.last_price, hour.min_price) == \
        (4, late, Decimal(1), Decimal(1))


@pytest.mark.parametrize("width", [timedelta(hours=1), timedelta(hours=6), timedelta(days=1)])
def test_history_after_the_snapshots_are_cut_is_the_history_before(engine, width):
    window = {"start": START, "end": NOW.replace(minute=0), "width": width}
    before = history(engine, "binance", "USDT", "ARS", **window)
    both_before = histories(engine, [MARKET, OTHER], **window)
    p2p_rollups.refresh(engine, recent=timedelta(days=2), now=NOW)
    cut, = retention.apply(engine, {"p2p_snapshots": 1}, now=NOW)
    assert cut.rows > 0
    with engine.connect() as connection:
        left = connection.scalar(text("SELECT min(captured_at) FROM p2p_snapshots"))
    assert left >= NOW - timedelta(days=1) - timedelta(hours=1)
    assert history(engine, "binance", "USDT", "ARS", **window) == before
    assert histories(engine, [MARKET, OTHER], **window) == both_before
    assert len(before) == math.ceil((window["end"] - START) / width)  # every bucket drawn


def test_snapshots_are_not_cut_before_they_are_rolled_up(engine):
    assert retention.apply(engine, {"p2p_snapshots": 1}, now=NOW) == []
    p2p_rollups.recompute(engine, START, START + timedelta(hours=5), now=NOW)
    cut, = retention.apply(engine, {"p2p_snapshots": 1}, now=NOW)
    assert cut.cutoff == START + timedelta(hours=5)  # only what the rollup holds
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT min(captured_at) FROM p2p_snapshots")) == \
            START + timedelta(hours=5)


def _from_snapshots_only(engine, window: dict) -> list[dict]:
    """History with the hourly rows set aside: what the snapshots alone say."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE hourly_aside AS SELECT * FROM p2p_hourly"))
        connection.execute(text("DELETE FROM p2p_hourly"))
    try:
        return history(engine, "binance", "USDT", "ARS", **window)
    finally:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO p2p_hourly SELECT * FROM hourly_aside"))
            connection.execute(text("DROP TABLE hourly_aside"))


@pytest.mark.parametrize("width", [timedelta(hours=1), timedelta(hours=6), timedelta(days=1)])
def test_history_reads_the_hours_no_longer_recomputed_from_the_aggregates(engine, width):
    window = {"start": START + timedelta(minutes=30), "end": NOW.replace(minute=0),
              "width": width}
    p2p_rollups.refresh(engine, now=NOW)
    # A late snapshot inside the recompute window, pushed after the last refresh: the
    # last of its hour, of its 6h bucket and of its day.
    late = datetime(2026, 3, 10, 11, 59, tzinfo=UTC)
    _late_bid(engine, late)
    expected = _from_snapshots_only(engine, window)
    assert history(engine, "binance", "USDT", "ARS", **window) == expected
    assert any(row["captured_at"] == late for row in expected)
    # Hours before the recompute window are final in the aggregates: history no longer
    # reads their snapshots, so taking some away (not the oldest) changes nothing.
    final = NOW.replace(minute=0) - p2p_rollups.RECOMPUTED
    with engine.begin() as connection:
        gone = connection.execute(text(
            "DELETE FROM p2p_snapshots WHERE captured_at >= :start AND captured_at < :end"),
            {"start": START + timedelta(hours=4), "end": final}).rowcount
    assert gone > 0
    assert history(engine, "binance", "USDT", "ARS", **window) == expected
