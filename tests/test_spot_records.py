"""Binance spot payloads from the captures become exact records; malformed ones say why."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from ingest.spot_records import (
    BookTickerSampler,
    MalformedFrame,
    kline_record_from_row,
    parse_frame,
)
from tests.spot_support import BINANCE

RECEIVED = datetime(2021, 10, 12, 0, 28, 40, 700000, tzinfo=UTC).timestamp()


def frames(name: str) -> list[str]:
    return [line for line in (BINANCE / name).read_text().splitlines() if line.strip()]


def test_a_closing_kline_frame_gives_the_final_candle():
    closing = parse_frame(frames("kline_ws_2_binanceus.json")[3], RECEIVED).records[0]
    assert closing.table == "candles" and closing.event_ms == 1633998301755
    assert closing.row == {
        "exchange": "binance", "symbol": "OMGBUSD", "interval": "1m",
        "open_time": datetime(2021, 10, 12, 0, 24, tzinfo=UTC),
        "open": Decimal("13.72120000"), "high": Decimal("13.80760000"),
        "low": Decimal("13.72120000"), "close": Decimal("13.76640000"),
        "volume": Decimal("536.51000000"),
        "close_time": datetime(2021, 10, 12, 0, 24, 59, 999000, tzinfo=UTC),
        "trades": 14, "quote_volume": Decimal("7387.12073500"),
        "taker_base_volume": Decimal("231.60000000"),
        "taker_quote_volume": Decimal("3187.75743000"), "is_closed": True}


def test_an_empty_candle_is_a_real_candle_with_no_trades():
    empty = parse_frame(frames("kline_ws_3_binancetr.json")[2], RECEIVED).records[0].row
    assert (empty["symbol"], empty["trades"], empty["volume"]) == ("BELBTC", 0, Decimal(0))
    assert empty["open"] == empty["high"] == empty["low"] == empty["close"]


def test_a_book_ticker_is_sampled_into_its_receive_second():
    record = parse_frame(frames("bookticker_1.json")[0], RECEIVED).records[0]
    assert record.row["ts"] == datetime(2021, 10, 12, 0, 28, 40, tzinfo=UTC)
    assert record.key == ("book_tickers", "NKNUSDT", int(record.row["ts"].timestamp()))
    assert record.row["ask_qty"] == Decimal("3199.00000000") and record.event_ms is None


def test_the_sampler_holds_only_book_tickers_of_its_own_symbols_the_last_one_each():
    books = [line.encode() for line in frames("bookticker_1.json")]
    ours = [frame for frame in books if b'"nknusdt@bookTicker"' in frame]
    sampler = BookTickerSampler(["NKNUSDT"])
    sampler.second = 1633998520
    assert len(ours) > 1 and all(sampler.hold(frame) for frame in ours)
    assert not sampler.hold(frames("kline_ws_1.json")[0].encode())  # parsed at once
    assert not sampler.hold(ours[0].replace(b"nknusdt@", b"ethusdt@"))  # not ours
    assert not sampler.hold(b'{"result":null,"id":1}')
    records, malformed = sampler.take()
    assert [record.row for record in records] == [
        parse_frame(ours[-1], 1633998520.5).records[0].row]
    assert malformed == [] and len(sampler) == 0 and sampler.take() == ([], [])


def test_a_held_book_ticker_is_checked_when_its_second_is_over():
    sampler = BookTickerSampler(["NKNUSDT", "LRCBTC"])
    good = frames("bookticker_1.json")[0].encode()
    assert sampler.hold(good.replace(b'"b":"0.35210000"', b'"b":"-1"'))
    assert sampler.hold(good.replace(b"nknusdt@", b"lrcbtc@"))  # its data says NKNUSDT
    records, malformed = sampler.take()
    assert records == []
    assert ["negative" in str(error) for error, _frame in malformed] == [True, False]
    assert "not a book ticker of LRCBTC" in str(malformed[1][0])


def test_a_raw_24h_ticker_is_sampled_into_its_event_second():
    record = parse_frame(frames("ticker24_ws_1.json")[0], RECEIVED).records[0]
    assert record.table == "tickers_24h"
    assert record.row["ts"] == datetime(2024, 3, 22, 16, 13, 11, tzinfo=UTC)
    assert (record.row["last"], record.row["change_pct"], record.row["trades"]) == (
        Decimal("553.80000000"), Decimal("-0.699"), 712097)


@pytest.mark.parametrize("name", ["aggtrade_ws_1.json", "depth_diff_ws_1.json",
                                  "depth_partial_ws_1.json", "miniticker_ws_1.json"])
def test_streams_we_do_not_store_are_ignored_not_rejected(name):
    assert all(parse_frame(frame, RECEIVED).ignored for frame in frames(name))


@pytest.mark.parametrize("frame", [
    '{"e":"serverShutdown","E":1729843200000}',
    '{"stream":"btcusdt@kline_1m","data":{"e":"serverShutdown","E":1729843200000}}',
    '{"event":{"e":"serverShutdown","E":1770123456789}}',
])
def test_server_shutdown_is_recognised_in_every_wrapping(frame):
    assert parse_frame(frame, RECEIVED).server_shutdown


def kline_frame(**changes) -> str:
    frame = orjson.loads(frames("kline_ws_1.json")[0])
    frame["data"]["k"].update(changes)
    return orjson.dumps(frame).decode()


@pytest.mark.parametrize(("frame", "reason"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (kline_frame(o=0.3527), "field 'o' is not a decimal string"),
    (kline_frame(v="-1"), "field 'v' is negative"),
    (kline_frame(c="abc"), "field 'c' is not a number"),
    (kline_frame(h="NaN"), "field 'h' is not finite"),
    (kline_frame(i="7m"), "field 'i' is not a known interval"),
    (kline_frame(x="yes"), "field 'x' is not true or false"),
    (kline_frame(h="0.1"), "candle prices out of order"),
    (kline_frame(t="1633998480000"), "field 't' is not a whole number"),
    ('{"stream":"x@kline_1m","data":{"e":"kline","E":1}}', "field 'k' missing"),
    ('{"u":1,"s":"NKNUSDT","b":"0.3","a":"0.4"}', "field 'B' missing"),
])
def test_malformed_frames_say_what_is_wrong(frame, reason):
    with pytest.raises(MalformedFrame, match=reason):
        parse_frame(frame, RECEIVED)


def test_rest_kline_rows_are_closed_only_once_their_minute_is_over():
    rows = orjson.loads((BINANCE / "klines_rest_1.json").read_bytes())
    last_close = rows[-1][6]
    records = [kline_record_from_row("BTCUSDT", "1m", row, last_close) for row in rows]
    assert len(records) == 60 and [r.row["is_closed"] for r in records[-2:]] == [True, False]
    assert records[0].row["quote_volume"] == Decimal("281893.08800082")


def test_archive_rows_in_milliseconds_and_microseconds_mean_the_same_instants():
    now = 2**62
    ms_row = next(csv.reader((BINANCE / "klines_csv_spot_2023_millisecond_row.csv").open()))
    us_row = next(csv.reader((BINANCE / "klines_csv_spot_2025_microsecond_row.csv").open()))
    assert kline_record_from_row("BTCUSDT", "1m", ms_row, now).row["open_time"] == \
        datetime(2023, 1, 1, tzinfo=UTC)
    in_2025 = kline_record_from_row("BTCUSDT", "1m", us_row, now).row
    assert (in_2025["open_time"], in_2025["close_time"]) == (
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, 59, 999000, tzinfo=UTC))
