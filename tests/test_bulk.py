"""Bulk merge into hypertables: idempotent, last row wins within a batch, counts are right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import select

from db.bulk import copy_merge, copy_rows, merge_newest
from db.schema import book_tickers, candles, candles_live, p2p_offers, runs

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ticker(bid: str, second: int = 0) -> dict:
    return {"exchange": "binance", "symbol": "BTCUSDT", "ts": T0.replace(second=second),
            "bid": Decimal(bid), "bid_qty": Decimal("1"), "ask": Decimal(bid) + 1,
            "ask_qty": Decimal("2")}


def merge_tickers(engine, rows, update=("bid", "bid_qty", "ask", "ask_qty")):
    with engine.begin() as connection:
        return copy_merge(connection, book_tickers, rows,
                          key=("exchange", "symbol", "ts"), update=update)


def stored_bids(engine) -> list[Decimal]:
    with engine.connect() as connection:
        return list(connection.scalars(select(book_tickers.c.bid).order_by(book_tickers.c.ts)))


def test_insert_then_update_then_nothing_new(engine):
    assert merge_tickers(engine, [ticker("100", 0), ticker("101", 1)]).inserted == 2
    result = merge_tickers(engine, [ticker("102", 1), ticker("103", 2)])
    assert (result.inserted, result.updated, result.skipped) == (1, 1, 0)
    assert stored_bids(engine) == [Decimal("100"), Decimal("102"), Decimal("103")]


def test_last_row_for_a_key_wins_within_a_batch(engine):
    result = merge_tickers(engine, [ticker("100"), ticker("105"), ticker("104")])
    assert (result.inserted, result.skipped) == (1, 2)
    assert stored_bids(engine) == [Decimal("104")]


def test_do_nothing_merge_counts_duplicates_and_keeps_arrays(engine):
    with engine.begin() as connection:
        run_id = connection.scalar(runs.insert().values(source="t", kind="p2p_push")
                                   .returning(runs.c.id))
    offer = {"captured_at": T0, "run_id": run_id, "exchange": "okx", "asset": "USDT",
             "fiat": "ARS", "side": "ask", "offer_id": "42", "price": Decimal("1234.5"),
             "payment_methods": ["bank", "mercadopago"]}
    for expected_inserted in (1, 0):
        with engine.begin() as connection:
            result = copy_merge(connection, p2p_offers, [offer],
                                key=("exchange", "offer_id", "captured_at"))
        assert result.inserted == expected_inserted
    with engine.connect() as connection:
        assert connection.scalar(select(p2p_offers.c.payment_methods)) == ["bank", "mercadopago"]


def test_a_failed_batch_rolls_back_whole(engine):
    bad = {**ticker("100", 3), "bid": None}
    with pytest.raises(Exception, match="null value"), engine.begin() as connection:
        copy_merge(connection, book_tickers, [ticker("99", 2), bad],
                   key=("exchange", "symbol", "ts"))
    assert stored_bids(engine) == []


def test_only_if_keeps_rows_that_fail_the_condition(engine):
    merge_tickers(engine, [ticker("100", 0), ticker("101", 1)])
    with engine.begin() as connection:
        result = copy_merge(connection, book_tickers, [ticker("200", 0), ticker("201", 1)],
                            key=("exchange", "symbol", "ts"), update=("bid",),
                            only_if="book_tickers.bid < 101", unique_keys=True)
    assert (result.updated, result.skipped) == (1, 1)
    assert stored_bids(engine) == [Decimal("200"), Decimal("101")]


def test_two_merges_in_one_transaction_do_not_see_each_others_rows(engine):
    with engine.begin() as connection:
        first = copy_merge(connection, book_tickers, [ticker("100", 0)],
                           key=("exchange", "symbol", "ts"))
        second = copy_merge(connection, book_tickers, [ticker("101", 1)],
                            key=("exchange", "symbol", "ts"))
    assert (first.inserted, second.inserted, second.skipped) == (1, 1, 0)


@pytest.mark.parametrize("binary", [False, True])
def test_copy_rows_appends_and_refuses_a_key_that_is_there(engine, binary):
    with engine.begin() as connection:
        assert copy_rows(connection, book_tickers, [ticker("100", 0), ticker("101", 1)],
                         binary=binary) == 2
    with pytest.raises(psycopg.errors.UniqueViolation), engine.begin() as connection:
        copy_rows(connection, book_tickers, [ticker("102", 2), ticker("103", 1)],
                  binary=binary)
    assert stored_bids(engine) == [Decimal("100"), Decimal("101")]


def test_a_binary_merge_is_the_text_merge(engine):
    assert merge_tickers(engine, [ticker("100", 0)]).inserted == 1
    with engine.begin() as connection:
        result = copy_merge(connection, book_tickers, [ticker("105", 0), ticker("106", 1)],
                            key=("exchange", "symbol", "ts"), update=("bid",), binary=True)
    assert (result.inserted, result.updated) == (1, 1)
    assert stored_bids(engine) == [Decimal("105"), Decimal("106")]


def candle(symbol: str, minute: int, close: str, interval: str = "1m") -> dict:
    opened = T0 + timedelta(minutes=minute)
    price = Decimal(close)
    return {"exchange": "binance", "symbol": symbol, "interval": interval,
            "open_time": opened, "open": price, "high": price, "low": price, "close": price,
            "volume": Decimal("1"), "close_time": opened + timedelta(seconds=59.999),
            "trades": 1, "quote_volume": price, "taker_base_volume": Decimal("0"),
            "taker_quote_volume": Decimal("0"), "is_closed": False}


def merge_live(engine, rows, unique=True):
    with engine.begin() as connection:
        return merge_newest(connection, candles_live, rows, series=("exchange", "symbol",
                            "interval"), time="open_time", retire_into=candles, unique=unique)


def stored(engine, table) -> dict:
    with engine.connect() as connection:
        return {(row.symbol, row.interval): (int((row.open_time - T0).total_seconds() // 60),
                                             str(row.close))
                for row in connection.execute(select(table))}


def test_merge_newest_updates_replaces_retires_and_skips_older(engine):
    result, retired = merge_live(engine, [candle("BTCUSDT", 0, "1"), candle("ETHUSDT", 0, "2"),
                                          candle("XRPUSDT", 5, "3")])
    assert (result.inserted, result.updated, result.skipped, retired) == (3, 0, 0, 0)
    result, retired = merge_live(engine, [
        candle("BTCUSDT", 0, "1.5"),  # same minute: updated in place
        candle("ETHUSDT", 1, "2.5"),  # the next minute: replaces it, the old row retired
        candle("XRPUSDT", 4, "9"),  # older than the stored one: skipped
        candle("BTCUSDT", 0, "7", interval="5m")])  # a new series
    assert (result.inserted, result.updated, result.skipped, retired) == (1, 2, 1, 1)
    assert stored(engine, candles_live) == {
        ("BTCUSDT", "1m"): (0, "1.5"), ("ETHUSDT", "1m"): (1, "2.5"),
        ("XRPUSDT", "1m"): (5, "3"), ("BTCUSDT", "5m"): (0, "7")}
    assert stored(engine, candles) == {("ETHUSDT", "1m"): (0, "2")}


def test_merge_newest_keeps_the_latest_of_a_series_sent_twice(engine):
    result, _ = merge_live(engine, [candle("BTCUSDT", 1, "2"), candle("BTCUSDT", 0, "1"),
                                    candle("BTCUSDT", 1, "3")], unique=False)
    assert (result.inserted, result.updated, result.skipped) == (1, 0, 2)
    assert stored(engine, candles_live) == {("BTCUSDT", "1m"): (1, "3")}
