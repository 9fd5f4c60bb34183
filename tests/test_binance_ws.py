"""The real stream thread against the fake Binance: exact rows, and no holes after any loss."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from sqlalchemy import select

from app import metrics
from db.embedded import free_port
from db.schema import book_tickers, candles, candles_all, ingest_errors, runs, tickers_24h
from ingest.binance_rest import BinanceRest, RestPolicy
from ingest.binance_ws import SpotStream, StreamOptions, connection_groups
from ingest.fake.market import SimClock
from ingest.fake.replay import load_frames
from ingest.fake.server import FakeExchange
from ingest.fake.streams import Cadence
from ingest.gaps import GapRepairer
from ingest.writer import Writer
from tests.spot_support import BINANCE, wait_until

CAPTURES = ["kline_ws_1.json", "kline_ws_2_binanceus.json", "kline_ws_3_binancetr.json",
            "bookticker_1.json", "ticker24_ws_1.json", "cryptofeed_BINANCE.ws.1.0.raw.txt"]
CAPTURED_SYMBOLS = ["NKNUSDT", "LRCBTC", "BLZETH", "RUNEEUR", "OMGBUSD", "XEMUSDT", "LTCBRL",
                    "BELBTC", "ELFBUSD", "BNBUSDT"]
QUICK = StreamOptions(silence_seconds=1.0, reconnect_base_seconds=0.05,
                      reconnect_max_seconds=0.2, counts_every_seconds=0.2)
T0 = datetime(2021, 10, 12, 0, 28, 40, tzinfo=UTC).timestamp()


@pytest.fixture
def writer(engine):
    writer = Writer(engine, flush_seconds=0.05).start()
    yield writer
    writer.stop()


class SteppingClock:
    """Receive times a quarter second apart, so per-second sampling is predictable."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return T0 + (self.calls - 1) * 0.25


def rows(engine, table, *columns):
    with engine.connect() as connection:
        return connection.execute(select(*(table.c[c] for c in columns))).all()


def delivered_frames(symbols):
    wanted = {f"{s.lower()}@{k}" for s in symbols for k in ("kline_1m", "bookTicker", "ticker")}
    return [f for name in CAPTURES for f in load_frames(BINANCE / name) if f.stream in wanted]


def expected_rows(frames):
    """What the captures should leave in the tables, worked out from the raw JSON."""
    candle_rows, book_rows, ticker_rows = {}, {}, {}
    for n, frame in enumerate(frames):
        data = orjson.loads(frame.text)["data"]
        if data.get("e") == "kline":
            k = data["k"]
            candle_rows[(k["s"], k["t"])] = (Decimal(k["c"]), k["n"], k["x"])
        elif data.get("e") == "24hrTicker":
            ticker_rows[(data["s"], data["E"] // 1000)] = Decimal(data["c"])
        else:
            second = int(T0 + n * 0.25)
            book_rows[(data["s"], second)] = (Decimal(data["b"]), Decimal(data["A"]))
    return candle_rows, book_rows, ticker_rows


def test_captured_frames_give_exactly_the_expected_rows(engine, writer):
    frames = delivered_frames(CAPTURED_SYMBOLS)
    with FakeExchange("replay", frames=[BINANCE / name for name in CAPTURES]) as fake:
        options = StreamOptions(silence_seconds=60, reconnect_base_seconds=0.05)
        stream = SpotStream(fake.ws_url, CAPTURED_SYMBOLS, writer, engine, options,
                            clock=SteppingClock()).start()
        try:
            wait_until(lambda: stream.connections[0].stats.frames == len(frames),
                       message=f"{len(frames)} frames")
        finally:
            stream.stop()  # releases the book tickers of the last second
    assert writer.wait_idle(20)
    candle_rows, book_rows, ticker_rows = expected_rows(frames)
    stored_candles = {(s, int(t.timestamp() * 1000)): (c, n, x) for s, t, c, n, x in
                      rows(engine, candles_all, "symbol", "open_time", "close", "trades",
                           "is_closed")}
    assert stored_candles == candle_rows and len(stored_candles) == 12
    assert stored_candles[("OMGBUSD", 1633998240000)] == (Decimal("13.7664"), 14, True)
    assert stored_candles[("BELBTC", 1681153980000)] == (Decimal("0.00002369"), 0, True)
    stored_books = {(s, int(ts.timestamp())): (b, a) for s, ts, b, a in
                    rows(engine, book_tickers, "symbol", "ts", "bid", "ask_qty")}
    assert stored_books == book_rows
    assert dict(((s, int(ts.timestamp())), last) for s, ts, last in
                rows(engine, tickers_24h, "symbol", "ts", "last")) == ticker_rows
    assert writer.stats.batches < len(frames) / 10  # batched, never a write per message


def bad_kline_frame() -> str:
    """A captured kline frame whose open time is text."""
    frame = orjson.loads((BINANCE / "kline_ws_1.json").read_text().splitlines()[0])
    frame["data"]["k"]["t"] = "soon"
    return orjson.dumps(frame).decode()


def test_a_malformed_frame_is_counted_logged_with_its_run_and_skipped(engine, writer):
    malformed = metrics.WS_MALFORMED.labels("binance")
    before = malformed._value.get()
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, QUICK).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.frames > 0, message="first frames")
            fake.binance.send_frames(["{not json", bad_kline_frame()])
            wait_until(lambda: connection.stats.malformed == 2, message="malformed frames")
            after = connection.stats.frames
            wait_until(lambda: connection.stats.frames > after + 2, message="frames after")
        finally:
            stream.stop()
    assert writer.wait_idle(5), "the writer committed the session's last rows"
    assert connection.stats.sessions == 1
    assert malformed._value.get() - before == 2  # p2pdash_ws_frames_malformed_total
    with engine.connect() as connection_:
        run = connection_.execute(select(runs)).mappings().one()
        messages = list(connection_.scalars(select(ingest_errors.c.message)
                                            .where(ingest_errors.c.run_id == run["id"])))
    assert (run["kind"], run["status"], run["rejected"]) == ("ws_session", "partial", 2)
    assert run["received"] >= after and run["inserted"] > 0
    assert messages[0].startswith("malformed frame skipped: not JSON")
    assert "field 't' is not a whole number" in messages[1]


class SetClock:
    """Receive times a test sets."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class BookRecorder(Writer):
    """The writer, noting the (second, bid) of every book ticker it is handed."""

    books: list

    def submit(self, records, run=None):
        records = list(records)
        self.books += [(record.key[2], record.row["bid"]) for record in records
                       if record.table == "book_tickers"]
        super().submit(records, run)


def book_ticker(bid: str) -> str:
    return orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 1, "s": "BTCUSDT", "b": bid, "B": "1.5", "a": "70001.00", "A": "2"}}).decode()


def test_a_busy_symbols_book_tickers_become_one_row_a_second_its_last(engine):
    writer = BookRecorder(engine, flush_seconds=0.05).start()
    writer.books = []
    clock = SetClock(T0 + 0.2)
    options = StreamOptions(silence_seconds=30, reconnect_base_seconds=0.05)
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, options,
                            clock=clock).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.subscribed == 3 and connection.stats.frames,
                       message="the first frames")
            fake.binance.silence_connections()  # from here on only the frames sent below
            for second, bids in ((10, ["70000.10", "70000.20", "70000.30"]),
                                 (11, ["70000.40", "a lot"]), (12, ["70000.50"])):
                clock.at = T0 + second + 0.2
                frames = connection.stats.frames
                fake.binance.send_frames([book_ticker(bid) for bid in bids])
                wait_until(lambda frames=frames, bids=bids:
                           connection.stats.frames == frames + len(bids),
                           message="the frames of the second")
        finally:
            stream.stop()  # releases the samples of the last second
    assert writer.wait_idle(20)
    writer.stop()
    after = [(second - int(T0), bid) for second, bid in writer.books if second >= T0 + 10]
    # One record a second, converted from the second's last frame; a malformed last one is
    # counted, logged and skipped (the frame it replaced was dropped unexamined).
    assert after == [(10, Decimal("70000.30")), (12, Decimal("70000.50"))]
    assert connection.stats.malformed == 1
    stored = {int(ts.timestamp()) - int(T0): bid
              for ts, bid in rows(engine, book_tickers, "ts", "bid") if ts.timestamp() >= T0 + 10}
    assert stored == {10: Decimal("70000.30"), 12: Decimal("70000.50")}


def test_the_stream_answers_pings(engine, writer):
    with FakeExchange("simulate", symbols=["BTCUSDT"], ws_ping_interval=None) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, QUICK).start()
        try:
            wait_until(lambda: fake.binance.open_connections == 1, message="a connection")
            assert fake.binance.ping_connections(timeout=5) == [True]
        finally:
            stream.stop()


@pytest.mark.parametrize(("scenario", "reason"), [
    ("drop_connections", "connection lost"),
    ("silence_connections", "no data for 1 s"),
    ("send_server_shutdown", "serverShutdown"),
])
def test_every_kind_of_loss_leads_to_a_reconnect(engine, writer, scenario, reason):
    # Pings every 0.4 s: their pongs count against the fake's 5 messages a second.
    with FakeExchange("simulate", symbols=["BTCUSDT"], ws_ping_interval=0.4) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, QUICK).start()
        connection = stream.connections[0]
        try:
            wait_until(lambda: connection.stats.frames > 0, message="first frames")
            getattr(fake.binance, scenario)()
            wait_until(lambda: fake.binance.connects == 2 and connection.stats.sessions == 2,
                       message="a second connection")
            assert connection.stats.last_end.startswith(reason)
        finally:
            stream.stop()


def test_the_stream_never_gives_up_on_a_server_that_is_not_there(engine, writer):
    options = StreamOptions(reconnect_base_seconds=0.01, reconnect_max_seconds=0.05,
                            connect_timeout=0.5)
    stream = SpotStream(f"ws://127.0.0.1:{free_port()}", ["BTCUSDT"], writer, engine,
                        options).start()
    connection = stream.connections[0]
    try:
        wait_until(lambda: connection.stats.attempts >= 10, message="ten attempts")
        assert connection.is_alive() and connection.stats.sessions == 0
        assert connection.stats.last_end.startswith("cannot connect")
    finally:
        stream.stop()


def test_the_stream_renews_its_connection_before_the_cut(engine, writer):
    options = StreamOptions(session_max_seconds=0.5, reconnect_base_seconds=5.0)
    with FakeExchange("simulate", symbols=["BTCUSDT"]) as fake:
        stream = SpotStream(fake.ws_url, ["BTCUSDT"], writer, engine, options).start()
        try:
            wait_until(lambda: fake.binance.connects >= 3, message="renewed connections")
            assert stream.connections[0].stats.last_end == "renewing before the 24 h cut"
        finally:
            stream.stop()


def test_more_streams_than_one_connection_takes_are_spread_over_several(engine, writer):
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    assert connection_groups(symbols, 1024) == [tuple(symbols)]
    with FakeExchange("simulate", symbols=symbols, max_streams=6) as fake:
        stream = SpotStream(fake.ws_url, symbols, writer, engine, QUICK, max_streams=6).start()
        try:
            wait_until(lambda: fake.binance.open_connections == 2, message="two connections")
            wait_until(lambda: {s for (s,) in rows(engine, book_tickers, "symbol")}
                       == set(symbols), message="book tickers of every symbol")
        finally:
            stream.stop()
    assert [c.symbols for c in stream.connections] == [tuple(symbols[:2]), tuple(symbols[2:])]


def closed_minutes(engine, symbol: str) -> list[int]:
    with engine.connect() as connection:
        times = connection.scalars(select(candles.c.open_time).where(
            candles.c.symbol == symbol, candles.c.interval == "1m", candles.c.is_closed))
        return [int(t.timestamp()) // 60 for t in times]


def complete_through(engine, symbol: str, last_minute: int) -> bool:
    """Closed 1m candles with no hole and no duplicate from the first one to `last_minute`."""
    minutes = closed_minutes(engine, symbol)
    return (bool(minutes) and len(minutes) == len(set(minutes))
            and set(range(min(minutes), last_minute + 1)) <= set(minutes))


@pytest.mark.slow
def test_losses_and_restarts_leave_a_complete_1m_series_after_gap_repair(engine, writer):
    """One simulated minute per second: every loss spans minutes that only REST can give."""
    clock = SimClock(speed=60.0)
    symbols = ["BTCUSDT", "ETHUSDT"]
    with FakeExchange("simulate", symbols=symbols, clock=clock, ws_ping_interval=0.4,
                      cadence=Cadence(book_ticker_hz=2, kline_hz=1)) as fake:
        repairer = GapRepairer(engine, lambda: BinanceRest(
            fake.rest_url, RestPolicy(backoff_base=0.05), clock=clock), 15).start()

        def start():
            return SpotStream(fake.ws_url, symbols, writer, engine, QUICK, clock=clock,
                              on_connect=repairer.request).start()

        def settled():
            last = clock.ms() // 60_000 - 2  # give the latest closing frame time to land
            return repairer.wait_idle(0.1) and all(complete_through(engine, s, last)
                                                   for s in symbols)

        started_at = clock.ms() // 60_000
        stream = start()
        try:
            wait_until(settled, timeout=30, message="a complete series after start")
            for scenario in ("drop_connections", "silence_connections",
                             "send_server_shutdown"):
                connects = fake.binance.connects
                getattr(fake.binance, scenario)()
                wait_until(lambda c=connects: fake.binance.connects > c, message=scenario)
                wait_until(settled, timeout=30, message=f"a complete series after {scenario}")
            stream.stop()
            stopped_at = clock.ms() // 60_000
            wait_until(lambda: clock.ms() // 60_000 >= stopped_at + 3, message="3 minutes")
            stream = start()
            wait_until(settled, timeout=30, message="a complete series after a restart")
        finally:
            stream.stop()
            repairer.stop()
    assert repairer.repairs >= 5 and repairer.failures == 0
    with engine.connect() as connection:
        repaired = connection.scalar(select(runs.c.id).where(runs.c.kind == "gap_repair",
                                                             runs.c.inserted > 0).limit(1))
    assert repaired is not None
    assert all(complete_through(engine, s, stopped_at + 2) for s in symbols)
    # The first repair reached back over the whole 15-minute horizon.
    assert min(closed_minutes(engine, "BTCUSDT")) <= started_at - 14
