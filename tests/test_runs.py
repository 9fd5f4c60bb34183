"""Ingestion runs: counts, statuses and the error log, in the real database."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from db.schema import ingest_errors, runs
from ingest.runs import start_run


def row(engine, run_id):
    with engine.connect() as connection:
        return connection.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


def test_a_clean_run_is_ok_with_its_counts(engine):
    with start_run(engine, "binance_p2p", "p2p_poll", "binance:USDT/ARS") as run:
        assert row(engine, run.id)["status"] == "running"
        run.add(received=10, inserted=8, duplicates=2)
    stored = row(engine, run.id)
    assert stored["status"] == "ok" and stored["finished_at"] is not None
    assert (stored["received"], stored["inserted"], stored["duplicates"]) == (10, 8, 2)


def test_rows_written_after_a_run_finished_are_added_to_its_row(engine, caplog):
    """A stream's last rows are committed by the writer after its session closed."""
    with start_run(engine, "binance", "ws_session") as run:
        run.add(received=5, inserted=2)
    with caplog.at_level(logging.WARNING, logger="ingest.runs"):
        run.add(inserted=3, duplicates=1)
        run.add(inserted=0, duplicates=0)  # a batch that added nothing: nothing to write
    assert not caplog.records, caplog.text
    stored = row(engine, run.id)
    assert (stored["status"], stored["received"], stored["inserted"],
            stored["duplicates"]) == ("ok", 5, 5, 1)


def test_a_rejected_item_makes_the_run_partial_and_is_logged(engine):
    with start_run(engine, "okx_p2p", "p2p_poll") as run:
        run.add(received=2, inserted=1, rejected=1)
        run.error("price 'abc' is not a number", payload='{"price": "abc"}' + "x" * 5000)
    assert row(engine, run.id)["status"] == "partial"
    with engine.connect() as connection:
        error = connection.execute(select(ingest_errors)).mappings().one()
    assert error["run_id"] == run.id and "abc" in error["message"]
    assert len(error["payload"]) == 2000


def test_an_exception_fails_the_run_with_its_reason(engine):
    with pytest.raises(TimeoutError), start_run(engine, "bybit_p2p", "p2p_poll") as run:
        raise TimeoutError("no answer in 10 s")
    stored = row(engine, run.id)
    assert stored["status"] == "failed"
    assert stored["error"] == "TimeoutError: no answer in 10 s"
