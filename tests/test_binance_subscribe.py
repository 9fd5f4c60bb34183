"""Subscribing by message under Binance's limits, against the fake that enforces them."""

from __future__ import annotations

import contextlib
import logging
import math

import orjson
import pytest
import websocket
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from db.embedded import free_port
from db.schema import ingest_errors
from ingest.binance_rest import TradingSymbols
from ingest.binance_ws import (
    KINDS,
    MAX_STREAMS,
    SUBSCRIBE_BATCH,
    SpotStream,
    StreamOptions,
)
from ingest.fake.server import FakeExchange
from ingest.fake.ws import WsLimits
from tests.spot_support import BINANCE, wait_until
from tests.test_binance_ws import CAPTURED_SYMBOLS, CAPTURES, delivered_frames

QUICK = StreamOptions(silence_seconds=5.0, reconnect_base_seconds=0.1,
                      reconnect_max_seconds=0.4, counts_every_seconds=1.0)
URL_LIMIT = 8192  # the request line Binance (and the fake's websockets server) reads


class RecordingWriter:
    """Takes the stream's records without a database behind them, and keeps their tables."""

    database_down = False

    def __init__(self) -> None:
        self.tables: dict[str, set[str]] = {}

    def submit(self, records, run) -> None:
        for record in records:
            self.tables.setdefault(record.table, set()).add(record.row["symbol"])


def connect(fake: FakeExchange, path: str = "/stream") -> websocket.WebSocket:
    return websocket.create_connection(fake.ws_url + path, timeout=5)


def request(ws: websocket.WebSocket, method: str, params=None, request_id=1) -> dict:
    """Send one request and return the answer to it (stream events are skipped)."""
    message = {"method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    ws.send(orjson.dumps(message))
    return next_answer(ws)


def next_answer(ws: websocket.WebSocket) -> dict:
    while True:
        message = orjson.loads(ws.recv())
        if "stream" not in message:
            return message


def test_the_whole_market_subscribes_in_paced_acknowledged_batches(engine):
    """2,000 symbols: the captured ones among them get their recorded frames of each kind.

    A replaying fake, because a simulated one spends ~10 ms on a symbol's first event.
    """
    symbols = CAPTURED_SYMBOLS + [f"S{n:04d}USDT" for n in range(2000 - len(CAPTURED_SYMBOLS))]
    recorded = delivered_frames(CAPTURED_SYMBOLS)
    writer = RecordingWriter()
    options = StreamOptions(silence_seconds=60.0, reconnect_base_seconds=0.1)
    with FakeExchange("replay", frames=[BINANCE / name for name in CAPTURES],
                      ws_ping_interval=1.0) as fake:
        stream = SpotStream(fake.ws_url, symbols, writer, engine, options).start()
        try:
            wait_until(lambda: all(c.stats.subscribed == len(c.streams)
                                   for c in stream.connections), timeout=10,
                       message="every connection subscribed")
            wait_until(lambda: sum(c.stats.frames for c in stream.connections)
                       == len(recorded), timeout=10, message=f"{len(recorded)} frames")
            listened = [session.streams for session in fake.binance.sessions]
        finally:
            stream.stop()
    tables = {"kline_1m": "candles", "bookTicker": "book_tickers", "ticker": "tickers_24h"}
    expected: dict[str, set[str]] = {}
    for frame in recorded:
        symbol, _, kind = frame.stream.partition("@")
        expected.setdefault(tables[kind], set()).add(symbol.upper())
    assert writer.tables == expected and len(expected) == 3  # every kind flowed
    connections = stream.connections
    assert len(connections) == 6
    assert all(len(c.url) < URL_LIMIT and len(c.streams) <= MAX_STREAMS for c in connections)
    assert sorted(name for streams in listened for name in streams) == sorted(
        name for c in connections for name in c.streams)
    assert len({name for streams in listened for name in streams}) == 3 * len(symbols)
    assert max(len(streams) for streams in listened) <= MAX_STREAMS
    answers = [orjson.loads(text) for text in fake.binance.requests_answered]
    batches = sum(math.ceil(len(c.streams) / SUBSCRIBE_BATCH) for c in connections)
    assert len(answers) == batches and all(a["result"] is None for a in answers)
    # The pace kept every connection under 5 messages a second: the fake closed none.
    assert fake.binance.too_many_messages == 0
    assert all(c.stats.sessions == 1 and c.stats.malformed == 0 for c in connections)


def test_the_pace_is_four_messages_a_second_at_most(engine):
    """A fake that allows only 4 a second still takes a full connection's 6 SUBSCRIBEs."""
    symbols = [f"S{n:04d}USDT" for n in range(MAX_STREAMS // 3)]
    with FakeExchange("replay", ws_ping_interval=None,
                      ws_limits=WsLimits(messages_per_second=4)) as fake:
        stream = SpotStream(fake.ws_url, symbols, RecordingWriter(), engine, QUICK).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.subscribed == len(connection.streams),
                       timeout=10, message="a full connection subscribed")
        finally:
            stream.stop()
    assert len(fake.binance.requests_answered) == 6 and fake.binance.too_many_messages == 0
    assert connection.stats.sessions == 1


def test_a_client_sending_six_messages_in_a_second_is_disconnected():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            for n in range(1, 6):
                assert request(ws, "LIST_SUBSCRIPTIONS", request_id=n)["id"] == n
            ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 6}))
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                while True:
                    ws.recv()
        finally:
            ws.close()
        assert fake.binance.too_many_messages == 1


def test_pings_count_against_the_message_limit():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            for _ in range(6):
                ws.ping()
            wait_until(lambda: fake.binance.too_many_messages == 1, timeout=5,
                       message="a close for six pings")
        finally:
            ws.close()


def test_a_subscription_past_1024_streams_is_refused_and_not_made():
    names = [f"s{n}usdt@bookTicker" for n in range(MAX_STREAMS + 1)]
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            refused = request(ws, "SUBSCRIBE", names, request_id=7)
            assert request(ws, "SUBSCRIBE", names[:MAX_STREAMS], 8) == {"result": None,
                                                                          "id": 8}
            one_more = request(ws, "SUBSCRIBE", names[MAX_STREAMS:], 9)
            listed = request(ws, "LIST_SUBSCRIPTIONS", request_id=10)["result"]
        finally:
            ws.close()
    assert (refused["code"], refused["id"]) == (2, 7)
    assert refused["msg"].startswith("Invalid request:") and "1024" in refused["msg"]
    assert one_more["code"] == 2 and listed == names[:MAX_STREAMS]


@pytest.mark.parametrize(("message", "code"), [
    (b"{not json", 3),
    (b'{"method": "PUBLISH", "params": [], "id": 1}', 2),
    (b'{"params": ["btcusdt@ticker"], "id": 1}', 2),
    (b'{"method": "SUBSCRIBE", "params": "btcusdt@ticker", "id": 1}', 1),
    (b'{"method": "SUBSCRIBE", "params": ["btcusdt@ticker"], "id": 1.5}', 2),
    (b'{"method": "GET_PROPERTY", "params": ["compressed"], "id": 1}', 0),
    (b'{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}', 1),
])
def test_bad_requests_are_answered_as_binance_does(message, code):
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            ws.send(message)
            answer = next_answer(ws)
        finally:
            ws.close()
    assert answer["code"] == code and isinstance(answer["msg"], str)


def test_unsubscribe_and_list_subscriptions():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            request(ws, "SUBSCRIBE", ["btcusdt@ticker", "btcusdt@bookTicker"], 1)
            assert request(ws, "UNSUBSCRIBE", ["btcusdt@ticker"], 2) == {"result": None,
                                                                           "id": 2}
            assert request(ws, "LIST_SUBSCRIPTIONS", request_id=3)["result"] == [
                "btcusdt@bookTicker"]
        finally:
            ws.close()


def test_refused_streams_are_left_out_logged_with_the_run_and_the_rest_stream(engine):
    writer = RecordingWriter()
    # Four streams a connection: of BTCUSDT's and ETHUSDT's six, two must be refused.
    with FakeExchange("simulate", symbols=["BTCUSDT", "ETHUSDT"],
                      ws_limits=WsLimits(max_streams=4)) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT", "ETHUSDT"], writer, engine,
                            QUICK).start()
        connection = stream.connections[0]
        try:
            # ETHUSDT's candles may stream while its last two streams are still being
            # asked for: wait for the subscribing to end (two refusals) too.
            wait_until(lambda: writer.tables.get("candles") == {"BTCUSDT", "ETHUSDT"}
                       and "book_tickers" in writer.tables
                       and len(connection.stats.refused) == 2, message="the rest streaming")
            refused, subscribed = list(connection.stats.refused), connection.stats.subscribed
            sessions = connection.stats.sessions
        finally:
            stream.stop()
    assert refused == ["ethusdt@bookTicker", "ethusdt@ticker"] and subscribed == 4
    assert sessions == 1, "a partial refusal is not a failed attempt"
    assert writer.tables["book_tickers"] == {"BTCUSDT"}
    with engine.connect() as connection_:
        logged = list(connection_.scalars(select(ingest_errors.c.message)))
    assert [m.split(":")[0] for m in logged] == [
        "stream ethusdt@bookTicker left out", "stream ethusdt@ticker left out"]
    assert all("code 2: Invalid request: a connection listens to at most 4" in m
               for m in logged)


def test_a_symbol_binance_does_not_list_is_left_out_with_the_run_and_the_rest_stream(engine):
    writer = RecordingWriter()
    repaired = []
    with FakeExchange("simulate", symbols=["BTCUSDT", "ETHUSDT"]) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT", "BTCUSTD", "ETHUSDT"], writer, engine,
                            QUICK, listing=TradingSymbols(fake.rest_url),
                            on_connect=repaired.append).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: writer.tables.get("candles") == {"BTCUSDT", "ETHUSDT"}
                       and connection.stats.subscribed == 6, message="the rest streaming")
            sessions = connection.stats.sessions
        finally:
            stream.stop()
    assert connection.stats.refused == [f"btcustd@{kind}" for kind in KINDS]
    assert sessions == 1, "a symbol left out is not a failed attempt"
    assert repaired == [("BTCUSDT", "ETHUSDT")]  # the gap repairer asks for listed ones only
    with engine.connect() as connection_:
        logged = list(connection_.scalars(select(ingest_errors.c.message)))
    assert logged == ["symbol BTCUSTD left out: Binance does not list it as trading "
                      "(exchangeInfo)"]


def test_the_streams_are_subscribed_unchecked_when_binance_cannot_say_what_it_lists(
        engine, caplog):
    listing = TradingSymbols(f"http://127.0.0.1:{free_port()}")
    assert listing() is None and "subscribed unchecked" in caplog.text
    writer = RecordingWriter()
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, QUICK,
                            listing=listing).start()
        try:
            wait_until(lambda: stream.connections[0].stats.subscribed == 3,
                       message="subscribed")
        finally:
            stream.stop()


def test_a_connection_whose_every_stream_is_refused_retries_with_backoff(engine, caplog):
    caplog.set_level(logging.INFO, logger="ingest")
    writer = RecordingWriter()
    with FakeExchange("simulate", symbols=["BTCUSDT"], ws_limits=WsLimits(max_streams=0)
                      ) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, QUICK).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.attempts >= 3, message="three attempts")
        finally:
            stream.stop()
    assert connection.stats.subscribed == 0 and connection.stats.frames == 0
    ends = [r.args for r in caplog.records if r.msg.startswith("spot stream ended")]
    assert len(ends) >= 2
    assert all(reason == "subscription failed: every stream was refused"
               for reason, _ in ends)
    with engine.connect() as connection_:
        logged = list(connection_.scalars(select(ingest_errors.c.message)))
    assert any(m.startswith("stream btcusdt@kline_1m left out: SUBSCRIBE") for m in logged)
    assert any(m == "subscription failed: every stream was refused" for m in logged)
    # Failed attempts back off, and further each time (0.1 s * 2^n, with jitter).
    delays = [delay for _, delay in ends]
    assert 0.1 <= delays[0] <= 0.2 <= delays[1] <= 0.4


def test_a_stream_name_binance_does_not_offer_is_refused_and_a_symbol_it_lacks_is_not():
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        ws = connect(fake)
        try:
            bad = request(ws, "SUBSCRIBE", ["btcusdt@bookTicker", "btcusdt@nonsense"], 1)
            unknown = request(ws, "SUBSCRIBE", ["nosuchcoinusdt@bookTicker"], 2)
            listed = request(ws, "LIST_SUBSCRIPTIONS", request_id=3)["result"]
        finally:
            ws.close()
    assert bad == {"code": 2, "msg": "Invalid request: invalid stream", "id": 1}
    assert unknown == {"result": None, "id": 2} and listed == ["nosuchcoinusdt@bookTicker"]


def read_without_answering(session) -> None:
    with contextlib.suppress(ConnectionClosed):
        for _ in session.connection:
            pass


def test_a_missing_answer_is_a_failed_attempt(engine, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ingest.binance_ws")
    writer = RecordingWriter()
    options = StreamOptions(subscribe_timeout=0.3, reconnect_base_seconds=0.05,
                            reconnect_max_seconds=0.1)
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        monkeypatch.setattr(fake.binance, "_answer_requests", read_without_answering)
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, options).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.attempts >= 2, message="a second attempt")
        finally:
            stream.stop()
    ends = [r.args[0] for r in caplog.records if r.msg.startswith("spot stream ended")]
    assert ends and all(reason == "subscription failed: no answer to SUBSCRIBE 1 within "
                                  "0.3 s" for reason in ends)
    assert connection.stats.sessions >= 2 and fake.binance.connects >= 2


def test_a_url_over_8_kb_is_refused_with_414():
    names = [f"s{n:04d}usdt@bookTicker" for n in range(600)]
    path = "/stream?streams=" + "/".join(names)
    assert len(path) > URL_LIMIT
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake, \
            pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(fake, path)
    assert refused.value.status_code == 414


def test_connection_attempts_over_the_limit_are_refused_with_429():
    limits = WsLimits(connection_attempts=3, attempts_window_seconds=60)
    with FakeExchange("simulate", symbols=["BTCUSDT"], ws_limits=limits) as fake:
        for _ in range(3):
            connect(fake).close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(fake)
    assert refused.value.status_code == 429 and fake.binance.refused_attempts == 1
