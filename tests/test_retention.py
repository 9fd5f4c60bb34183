"""Retention: exactly the chunks older than the cutoff go (TimescaleDB), exactly the rows
older than it (plain PostgreSQL), nothing newer; the leader's run says what went."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.config import ConfigError, load_settings
from db import retention
from ingest.retention import run_retention

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
HOURS = 24 * 6  # six days of hourly book tickers, across seven one-day chunks


def _filled(engine):
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty) "
            "SELECT 'binance', 'BTCUSDT', :now - make_interval(hours => n), 1, 1, 2, 1 "
            "FROM generate_series(0, :hours - 1) AS n"), {"now": NOW, "hours": HOURS})
    return engine


@pytest.fixture
def engine(each_server_engine):
    """TimescaleDB and plain PostgreSQL (tests/conftest.py), with rows of this module."""
    return _filled(each_server_engine)


@pytest.fixture
def chunked(database_url):
    """TimescaleDB alone, with the same rows: chunks are its own."""
    from db.engine import make_engine

    engine = make_engine(database_url)
    yield _filled(engine)
    engine.dispose()


def _times(engine) -> list[datetime]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT ts FROM book_tickers ORDER BY ts")))


def test_retention_cuts_at_the_cutoff_and_keeps_everything_newer(engine):
    before = _times(engine)
    cutoff = NOW - timedelta(days=2)
    dropped, = retention.apply(engine, {"book_tickers": 2}, now=NOW)
    after = _times(engine)
    assert dropped.cutoff == cutoff
    assert [ts for ts in before if ts >= cutoff] == [ts for ts in after if ts >= cutoff], \
        "nothing at or after the cutoff is touched"
    with engine.connect() as connection:
        chunked = retention.is_hypertable(connection, "book_tickers")
    if chunked:
        # Whole days go: the chunk holding the cutoff stays, with its older hours.
        day = cutoff.replace(hour=0, minute=0)
        assert [ts for ts in before if ts >= day] == after and after[0] < cutoff
        assert [chunk["to"] for chunk in dropped.chunks] == [
            (day - timedelta(days=n)).isoformat() for n in (3, 2, 1, 0)]
        assert dropped.rows == sum(1 for ts in before if ts < day)
    else:
        assert after[0] >= cutoff and dropped.rows == len(before) - len(after)
        assert dropped.chunks == []
    assert retention.oldest_rows(engine)["book_tickers"] == after[0].isoformat()


def test_a_table_kept_for_ever_is_not_touched(engine):
    assert retention.apply(engine, {"book_tickers": 0}, now=NOW) == []
    assert len(_times(engine)) == HOURS


def test_the_retention_run_records_what_each_table_lost(engine):
    run_retention(engine, {"book_tickers": 1, "tickers_24h": 1})
    with engine.connect() as connection:
        run = connection.execute(text(
            "SELECT status, params FROM runs WHERE kind = 'retention'")).one()
    assert run.status == "ok"
    assert run.params["keep_days"] == {"book_tickers": 1, "tickers_24h": 1}
    lost = {item["table"]: item["rows"] for item in run.params["dropped"]}
    assert lost["tickers_24h"] == 0 and lost["book_tickers"] == HOURS - len(_times(engine))


def test_candles_kept_shorter_than_gap_repair_is_refused_naming_both():
    base = {"SECRET_KEY": "x" * 40, "P2PDASH_ENV": "test"}
    with pytest.raises(ConfigError, match=r"^RETENTION_CANDLES_DAYS: .*SPOT_GAP_HORIZON_MINUTES"):
        load_settings(environ={**base, "RETENTION_CANDLES_DAYS": "3",
                               "SPOT_GAP_HORIZON_MINUTES": "5000"}, env_file=None)
    assert load_settings(environ={**base, "RETENTION_CANDLES_DAYS": "5"},
                         env_file=None).retention.keep_days["candles"] == 5


def test_p2p_history_older_than_the_adverts_retention_still_draws(engine):
    """Snapshots keep each book's aggregates (best price, liquidity, offers) and are not cut
    with the raw adverts, so unfiltered history outlives the adverts' retention."""
    from db.p2p_history import history
    from ingest.runs import start_run

    old = NOW - timedelta(days=200)
    with start_run(engine, "binance_p2p", "p2p_poll", "USDT/ARS") as run:
        run_id = run.id
    with engine.begin() as connection:
        for hour in range(3):
            for side, price in (("ask", 1010 + hour), ("bid", 1000 + hour)):
                at = old + timedelta(hours=hour, minutes=10)
                connection.execute(text(
                    "INSERT INTO p2p_snapshots (run_id, exchange, asset, fiat, side, "
                    "captured_at, offers, complete, best_price, liquidity) VALUES (:run, "
                    "'binance', 'USDT', 'ARS', :side, :at, 1, true, :price, 50)"),
                    {"run": run_id, "side": side, "at": at, "price": price})
                connection.execute(text(
                    "INSERT INTO p2p_offers (captured_at, run_id, exchange, asset, fiat, side, "
                    "offer_id, price, available) VALUES (:at, :run, 'binance', 'USDT', 'ARS', "
                    ":side, :side, :price, 50)"),
                    {"run": run_id, "side": side, "at": at, "price": price})
    window = {"start": old, "end": old + timedelta(hours=3), "width": timedelta(hours=1)}
    before = history(engine, "binance", "USDT", "ARS", **window)
    retention.apply(engine, {"p2p_offers": 180}, now=NOW)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM p2p_offers")) == 0
    after = history(engine, "binance", "USDT", "ARS", **window)
    assert len(after) == 3 and after == before
    assert [row["best_ask"] for row in after] == [1010, 1011, 1012]


def test_a_chunk_too_big_to_count_is_estimated_from_its_size(chunked, monkeypatch):
    monkeypatch.setattr(retention, "COUNT_BYTES", 0)  # every chunk is "too big"
    with chunked.begin() as connection:
        connection.execute(text(  # a fuller day, never analysed
            "INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty) "
            "SELECT 'binance', 'ETHUSDT', :day + make_interval(secs => n * 10), 1, 1, 2, 1 "
            "FROM generate_series(0, 8639) AS n"), {"day": NOW - timedelta(days=5, hours=12)})
    dropped, = retention.apply(chunked, {"book_tickers": 2}, now=NOW)
    gone = HOURS + 8640 - len(_times(chunked))
    assert 0.7 * gone < dropped.rows < 1.3 * gone, (dropped.rows, gone)


def test_a_chunk_read_by_a_long_query_is_left_for_the_next_run(chunked, monkeypatch):
    monkeypatch.setattr(retention, "LOCK_TIMEOUT", "200ms")
    before = _times(chunked)
    with chunked.connect() as reader:  # a dashboard query still reading the oldest day
        reader.execute(text("SELECT count(*) FROM book_tickers WHERE ts < :t"),
                       {"t": NOW - timedelta(days=4)})
        dropped, = retention.apply(chunked, {"book_tickers": 2}, now=NOW)
        assert dropped.postponed and dropped.chunks == [] and dropped.rows == 0
        assert _times(chunked) == before
    dropped, = retention.apply(chunked, {"book_tickers": 2}, now=NOW)
    assert not dropped.postponed and dropped.rows > 0 and len(_times(chunked)) < len(before)
