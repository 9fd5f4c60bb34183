"""Exports read back exactly: CSV and Excel text with pandas, Parquet with pyarrow, Binance's
layout against the real archive rows; bad requests named; roles and the audit log."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from app.config import P2PMarket
from db.export import ExportInvalid, parse_request
from db.export_stream import stream
from ingest.p2p_normalise import Offer, PaymentMethod
from ingest.p2p_store import Snapshot, store_snapshot
from ingest.runs import Run
from tests.conftest import api_key
from tests.test_candles import csv_rows, store

JANUARY = {"start": "2022-01-01", "end": "2022-02-01"}


def body(engine, name: str, role: str = "analyst", **args) -> bytes:
    return b"".join(stream(engine, parse_request(name, args, role=role)))


@pytest.fixture
def engine(app):
    return app.extensions["p2pdash"].engine


@pytest.fixture
def hours(engine):
    store(engine, "BTCUSDT", "1h", csv_rows("BTCUSDT-1h-2022-01.csv"))


def test_candles_in_binance_layout_equal_the_real_archive_rows(engine, hours):
    archive = csv_rows("BTCUSDT-1h-2022-01.csv")
    exported = list(csv.reader(io.StringIO(body(
        engine, "candles", symbol="BTCUSDT", interval="1h", format="binance",
        **JANUARY).decode())))
    assert exported == archive
    days = list(csv.reader(io.StringIO(body(
        engine, "candles", symbol="BTCUSDT", interval="1d", format="binance",
        **JANUARY).decode())))
    expected = [row for row in csv_rows("BTCUSDT-1d-2020-2025.csv")
                if row[0].startswith("2022-01-")]
    assert len(days) == 31
    for ours, theirs in zip(days, expected, strict=True):
        day = datetime.fromisoformat(theirs[0]).replace(tzinfo=UTC)
        assert ours[0] == str(int(day.timestamp() * 1000))
        assert ours[1:11] == theirs[1:11]


def test_csv_holds_exact_decimals_and_utc_times(engine, hours):
    data = body(engine, "candles", symbol="BTCUSDT", interval="4h", **JANUARY)
    frame = pd.read_csv(io.BytesIO(data), dtype=str)
    assert list(frame.columns)[:3] == ["open_time", "open", "high"]
    assert len(frame) == 31 * 6
    assert frame["open_time"][0] == "2022-01-01T00:00:00Z"
    assert frame["close_time"][0] == "2022-01-01T03:59:59.999Z"
    four = [row for row in csv_rows("BTCUSDT-1h-2022-01.csv")][:4]
    assert Decimal(frame["open"][0]) == Decimal(four[0][1])
    assert Decimal(frame["volume"][0]) == sum(Decimal(row[5]) for row in four)
    assert frame["is_closed"][0] == "true"


def offers(engine) -> datetime:
    at = datetime(2026, 2, 1, 4, 0, 0, 123400, tzinfo=UTC)
    run = Run(engine, "binance_p2p", "p2p_poll", "binance:USDT/ARS", {})
    book = [Offer(f"ad-{n}", Decimal(price), Decimal("12.3456789"), Decimal("1000"),
                  Decimal("500000"), f"u{n}", name, n == 1, 7, Decimal("0.987"),
                  (PaymentMethod(method, "Mercado Pago" if method != "BANK" else None),), n)
            for n, (price, name, method) in enumerate(
                [("1010.50", "Ana, \"la\" trader", "MercadoPagoNew"),
                 ("1011.000000000001", "Bo\nb", "BANK")], start=1)]
    store_snapshot(engine, run, Snapshot(P2PMarket("binance", "USDT", "ARS"), "ask", at, book))
    run.finish()
    return at


def test_p2p_offers_in_every_format_read_back_equal(engine):
    at = offers(engine)
    args = {"market": "binance:USDT/ARS", "start": "2026-02-01", "end": "2026-02-02"}
    frame = pd.read_csv(io.BytesIO(body(engine, "p2p_offers", **args)), dtype=str,
                        keep_default_na=False)
    assert list(frame["price"]) == ["1010.50", "1011.000000000001"]
    assert frame["captured_at"][0] == "2026-02-01T04:00:00.1234Z"
    assert frame["advertiser_name"][1] == "Bo\nb"
    assert frame["payment_methods"][0] == "mercadopago"
    assert frame["is_merchant"].tolist() == ["true", "false"]
    table = pq.read_table(io.BytesIO(body(engine, "p2p_offers", format="parquet", **args)))
    rows = table.to_pylist()
    assert rows[1]["price"] == Decimal("1011.000000000001")
    assert rows[0]["available"] == Decimal("12.3456789")
    assert rows[0]["captured_at"] == at
    assert rows[0]["is_merchant"] is True
    filtered = pd.read_csv(io.BytesIO(body(engine, "p2p_offers", payment="mercadopago",
                                           amount="200000", **args)), dtype=str)
    assert list(filtered["offer_id"]) == ["ad-1"]


def test_excel_text_is_utf16_with_a_bom_tabs_and_crlf(engine):
    offers(engine)
    data = body(engine, "p2p_offers", format="excel", market="binance:USDT/ARS",
                start="2026-02-01", end="2026-02-02")
    assert data.startswith(codecs.BOM_UTF16_LE)
    content = data[2:].decode("utf-16-le")
    header = content.split("\r\n", 1)[0]
    assert header.startswith("captured_at\texchange\tasset") and "," not in header
    assert "1010.50" in content and "\r\n" in content and "\n" not in content.replace("\r\n", "")
    frame = pd.read_csv(io.BytesIO(data), sep="\t", encoding="utf-16", dtype=str)
    assert frame["price"].tolist() == ["1010.50", "1011.000000000001"]


@pytest.mark.parametrize(("name", "args", "field"), [
    ("nope", {}, "dataset"),
    ("candles", {}, "symbol"),
    ("candles", {"symbol": "BTCUSDT", "interval": "7m"}, "interval"),
    ("candles", {"symbol": "BTCUSDT", "start": "2026-02-02", "end": "2026-02-01"}, "start"),
    ("candles", {"symbol": "BTCUSDT", "start": "³"}, "start"),
    ("candles", {"symbol": "BTCUSDT", "end": "0001-01-01"}, "end"),
    ("candles", {"symbol": "BTCUSDT", "start": "99999999999999999999"}, "start"),
    ("p2p_offers", {"market": "binance:USDT"}, "market"),
    ("p2p_offers", {"market": "binance:USDT/ARS", "amount": "1E+999999999"}, "amount"),
    ("p2p_offers", {"market": "binance:USDT/ARS", "payment": "a\x00b"}, "payment"),
    ("book_tickers", {"symbol": "BTCUSDT", "format": "binance"}, "format"),
    ("runs", {}, "dataset"),
])
def test_a_bad_request_names_its_field(name, args, field):
    with pytest.raises(ExportInvalid) as raised:
        parse_request(name, args, role="analyst")
    assert raised.value.field == field


def test_the_api_streams_a_file_and_audits_it(app, hours):
    _row, key = api_key(app, "analyst", ("export",))
    client = app.test_client()
    answer = client.get("/api/v1/export/candles?symbol=BTCUSDT&interval=1h&start=2022-01-01"
                        "&end=2022-01-02", headers={"X-API-Key": key})
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == \
        'attachment; filename="candles_BTCUSDT_1h_2022-01-01_2022-01-02.csv"'
    assert len(answer.get_data(as_text=True).strip().splitlines()) == 25
    with app.extensions["p2pdash"].engine.connect() as connection:
        entry = connection.execute(text(
            "SELECT actor, details FROM audit_log WHERE action = 'export'")).one()
    assert entry.actor == "analyst"
    assert entry.details["rows"] == 24 and entry.details["complete"] is True


def test_the_api_names_a_bad_field_and_refuses_other_scopes(app):
    _row, key = api_key(app, "analyst", ("export",))
    client = app.test_client()
    answer = client.get("/api/v1/export/candles?symbol=BTCUSDT&interval=7m",
                        headers={"X-API-Key": key})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["details"][0]["field"] == "interval"
    _row, read_only = api_key(app, "analyst", ("read",), username="reader")
    refused = client.get("/api/v1/export/candles?symbol=BTCUSDT",
                         headers={"X-API-Key": read_only})
    assert refused.status_code == 403
    with app.extensions["p2pdash"].engine.connect() as connection:
        assert connection.scalar(text(
            "SELECT count(*) FROM audit_log WHERE action = 'export'")) == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_stream_broken_by_the_database_is_not_a_complete_file(engine, fmt):
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO book_tickers SELECT 'binance', 'BTCUSDT', t, 1, 1, 2, 2 FROM "
            "generate_series(TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2026-01-01' + "
            "interval '400000 seconds', interval '1 second') AS t"))
    request = parse_request("book_tickers", {"symbol": "BTCUSDT", "start": "2026-01-01",
                                             "end": "2026-01-10", "format": fmt},
                            role="analyst")
    chunks = stream(engine, request)
    received = [next(chunks)]
    with engine.begin() as connection:
        killed = connection.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'COPY (%' AND pid <> pg_backend_pid()"))
    assert killed == 1
    with pytest.raises(Exception):  # noqa: B017 (whichever error psycopg raises)
        received.extend(chunks)
    if fmt == "parquet":
        with pytest.raises(Exception, match=r"magic bytes|footer|Parquet"):
            pq.read_table(io.BytesIO(b"".join(received)))
        return
    lines = b"".join(received).count(b"\n")
    assert lines < 400_002, "the file is cut short, and the stream raised instead of ending"


def test_signed_in_analysts_download_and_traders_are_refused(app, hours, client_as):
    url = "/export/candles?symbol=BTCUSDT&interval=1d&start=2022-01-01&end=2022-02-01"
    answer = client_as("analyst").get(url)
    assert answer.status_code == 200
    assert len(answer.get_data(as_text=True).strip().splitlines()) == 32
    assert client_as("trader").get(url).status_code == 403
    assert client_as("analyst").get(url + "&format=xml").status_code == 400


def test_p2p_history_and_depth_equal_what_the_pages_draw(engine):
    from db.p2p import depth
    from db.p2p_history import history
    from db.p2p_query import OfferFilter

    at = offers(engine)
    args = {"market": "binance:USDT/ARS", "start": "2026-02-01", "end": "2026-02-02",
            "payment": "mercadopago"}
    frame = pd.read_csv(io.BytesIO(body(engine, "p2p_history", bucket="1h", **args)),
                        dtype=str, keep_default_na=False)
    expected = history(engine, "binance", "USDT", "ARS", start=datetime(2026, 2, 1, tzinfo=UTC),
                       end=datetime(2026, 2, 2, tzinfo=UTC), width=timedelta(hours=1),
                       filters=OfferFilter(payment=("mercadopago",)))
    assert len(frame) == len(expected) == 1
    assert Decimal(frame["best_ask"][0]) == expected[0]["best_ask"] == Decimal("1010.50")
    assert frame["bucket"][0] == "2026-02-01T04:00:00Z"
    book = pd.read_csv(io.BytesIO(body(engine, "p2p_depth", market="binance:USDT/ARS",
                                       at="2026-02-01T05:00:00Z")), dtype=str)
    levels = depth(engine, "binance", "USDT", "ARS", at=at)["asks"]
    assert [Decimal(v) for v in book["cum_available"]] == [level["cum_available"]
                                                           for level in levels]
    parquet = pq.read_table(io.BytesIO(body(engine, "p2p_history", bucket="1h", format="parquet",
                                            **args))).to_pylist()
    assert parquet[0]["best_ask"] == Decimal("1010.50")


def test_alert_events_export_holds_only_the_users_own(app, engine, settings):
    from app.alerts import service
    from tests.alerts.conftest import actor_for

    rules = {}
    for name in ("alice", "bob"):
        actor = actor_for(app, "analyst", name)
        rules[name] = service.create_rule(engine, settings, actor, {
            "name": f"{name}'s", "metric": "spot.last", "symbol": "BTCUSDT",
            "condition": ">", "threshold": "1"}).rule.id
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO alert_events (rule_id, at, from_state, to_state, value) "
            "SELECT id, now(), 'normal', 'firing', 2 FROM alert_rules"))
    request = parse_request("alert_events", {}, role="analyst",
                            user_id=service.rule_for(engine, service.Actor(
                                0, "x", "admin"), rules["alice"]).rule.user_id)
    frame = pd.read_csv(io.BytesIO(b"".join(stream(engine, request))), dtype=str)
    assert frame["rule_name"].tolist() == ["alice's"]
    everyone = pd.read_csv(io.BytesIO(body(engine, "alert_events", role="admin")), dtype=str)
    assert sorted(everyone["owner"]) == ["alice", "bob"]


def test_a_role_may_be_limited_to_a_range(tmp_path, database_url):
    from app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, DATABASE_URL=database_url,
                                   P2PDASH_EXPORT_MAX_DAYS="analyst=7"))
    _row, key = api_key(app, "analyst", ("export",))
    client = app.test_client()
    answer = client.get("/api/v1/export/book_tickers?symbol=BTCUSDT&start=2026-01-01"
                        "&end=2026-02-01", headers={"X-API-Key": key})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["details"][0]["field"] == "start"
    assert "7 days" in answer.get_json()["error"]["details"][0]["message"]
    fine = client.get("/api/v1/export/book_tickers?symbol=BTCUSDT&start=2026-01-01"
                      "&end=2026-01-05", headers={"X-API-Key": key})
    assert fine.status_code == 200
    app.extensions["p2pdash"].engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_client_that_hangs_up_ends_the_query(app, engine, fmt):
    import socket
    import threading
    import time

    from werkzeug.serving import make_server

    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO book_tickers SELECT 'binance', 'BTCUSDT', t, 1, 1, 2, 2 FROM "
            "generate_series(TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2026-01-01' + "
            "interval '1000000 seconds', interval '1 second') AS t"))
    _row, key = api_key(app, "analyst", ("export",))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = socket.create_connection(("127.0.0.1", server.server_port))
        client.sendall((f"GET /api/v1/export/book_tickers?symbol=BTCUSDT&start=2026-01-01"
                        f"&end=2026-02-01&format={fmt} HTTP/1.1\r\nHost: x\r\n"
                        f"X-API-Key: {key}\r\n\r\n")
                       .encode())
        head = client.recv(65536)
        assert b"200" in head.split(b"\r\n", 1)[0]
        assert b"Transfer-Encoding: chunked" in head or b"Content-Length" not in head
        time.sleep(0.5)
        assert copies(engine) == 1, "the export is streaming"
        client.close()  # the client hangs up mid-file
        deadline = time.monotonic() + 15
        while copies(engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert copies(engine) == 0, "the query ended with the connection"
    finally:
        server.shutdown()


def copies(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (%' "
            "AND state = 'active' AND pid <> pg_backend_pid()"))


def test_the_export_route_is_in_the_openapi_document(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    path = next(p for p in document["paths"] if p.startswith("/api/v1/export/"))
    names = {item["name"] for item in document["paths"][path]["get"]["parameters"]}
    assert {"symbol", "market", "format", "start", "end"} <= names


@pytest.mark.parametrize("fmt", ["csv", "excel", "parquet"])
def test_the_audit_counts_rows_not_line_ends(app, engine, fmt):
    offers(engine)  # one advertiser's name holds a newline
    _row, key = api_key(app, "analyst", ("export",))
    answer = app.test_client().get(
        f"/api/v1/export/p2p_offers?market=binance:USDT/ARS&start=2026-02-01&end=2026-02-02"
        f"&format={fmt}", headers={"X-API-Key": key})
    assert answer.status_code == 200 and answer.get_data()
    with engine.connect() as connection:
        details = connection.execute(text(
            "SELECT details FROM audit_log WHERE action = 'export'")).scalar_one()
    assert details["rows"] == 2 and details["format"] == fmt and details["complete"] is True


def test_aggregated_candles_keep_the_bucket_that_holds_an_unaligned_start(engine, hours):
    data = body(engine, "candles", symbol="BTCUSDT", interval="4h",
                start="2022-01-01T02:00:00Z", end="2022-01-01T12:00:00Z")
    frame = pd.read_csv(io.BytesIO(data), dtype=str)
    assert frame["open_time"].tolist() == ["2022-01-01T00:00:00Z", "2022-01-01T04:00:00Z",
                                           "2022-01-01T08:00:00Z"]
    four = csv_rows("BTCUSDT-1h-2022-01.csv")[:4]
    assert Decimal(frame["volume"][0]) == sum(Decimal(row[5]) for row in four), \
        "the first bucket is whole, not cut at the start"


def test_parquet_keeps_nulls_and_empty_texts_apart(engine):
    at = datetime(2026, 2, 1, 5, tzinfo=UTC)
    run = Run(engine, "binance_p2p", "p2p_poll", "binance:USDT/ARS", {})
    book = [Offer("ad-9", Decimal("1000"), Decimal("1"), None, None, "u9", "", False, None,
                  None, (), 1)]
    store_snapshot(engine, run, Snapshot(P2PMarket("binance", "USDT", "ARS"), "bid", at, book))
    run.finish()
    table = pq.read_table(io.BytesIO(body(
        engine, "p2p_offers", format="parquet", market="binance:USDT/ARS",
        start="2026-02-01", end="2026-02-02")))
    row = table.to_pylist()[0]
    assert row["advertiser_name"] == "" and row["min_fiat"] is None
    assert row["month_orders"] is None and row["month_finish_rate"] is None
    assert row["payment_methods"] is None


def test_an_estimate_counts_the_rows_and_sizes_the_file(engine, hours, monkeypatch):
    from db import export_stream
    from db.export_stream import estimate

    def tickers(seconds: int) -> None:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO book_tickers SELECT 'binance', 'BTCUSDT', t, 1.25, 1, 2.5, 2 FROM "
                "generate_series(TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2026-01-01' + "
                f"interval '{seconds - 1} seconds', interval '1 second') AS t "
                "ON CONFLICT DO NOTHING"))

    def request(name: str, fmt: str = "csv", **args):
        return parse_request(name, {"format": fmt, **args}, role="analyst")

    tickers(5000)
    samples = {"symbol": "BTCUSDT", "start": "2026-01-01", "end": "2026-01-02"}
    found = estimate(engine, request("book_tickers", **samples))
    size = len(body(engine, "book_tickers", **samples))
    assert found.rows == 5000 and found.exact
    assert 0.95 * size < found.bytes < 1.05 * size, "sampled bytes per row"
    assert estimate(engine, request("book_tickers", "excel", **samples)).bytes > 1.9 * size
    four = estimate(engine, request("candles", symbol="BTCUSDT", interval="4h", **JANUARY))
    assert four.rows == 31 * 6 and not four.exact, "at most one row per bucket"
    real = len(body(engine, "candles", symbol="BTCUSDT", interval="4h", **JANUARY))
    assert 0.5 * real < four.bytes < 2 * real
    monkeypatch.setattr(export_stream, "COUNT_TIMEOUT_MS", 1)
    tickers(300_000)  # enough rows for a count to outlast 1 ms
    with engine.begin() as connection:
        connection.execute(text("ANALYZE book_tickers"))  # what autovacuum does in time
    guess = estimate(engine, request("book_tickers", symbol="BTCUSDT", start="2026-01-01",
                                     end="2026-01-10"))
    assert not guess.exact and 100_000 < guess.rows < 1_000_000


def test_the_export_page_shows_rows_and_size_before_the_download(app, engine, hours):
    from callbacks.export_page import byte_size, estimate_text

    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO book_tickers SELECT 'binance', 'BTCUSDT', t, 1.25, 1, 2.5, 2 FROM "
            "generate_series(TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2026-01-01 00:16:39', "
            "interval '1 second') AS t"))
    with app.test_request_context():
        exact = estimate_text("book_tickers", "?symbol=BTCUSDT&start=2026-01-01"
                              "&end=2026-01-02&format=csv", "analyst", None)
        bound = estimate_text("candles", "?symbol=BTCUSDT&interval=1d&start=2022-01-01"
                              "&end=2022-02-01&format=parquet", "analyst", None)
        empty = estimate_text("book_tickers", "?symbol=ETHUSDT&start=2026-01-01"
                              "&end=2026-01-02", "analyst", None)
        refused = estimate_text("book_tickers", "?symbol=BTCUSDT&start=2026-01-01"
                                "&end=2026-03-01", "analyst", 7)
    assert exact.startswith("1,000 rows, about ") and exact.endswith(" kB as csv")
    assert bound.startswith("up to 31 rows, about ") and bound.endswith(" as parquet")
    assert empty == "No rows in this range" and refused == ""
    assert [byte_size(n) for n in (999, 1500, 2_500_000, 7_300_000_000)] == \
        ["999 bytes", "1.5 kB", "2.5 MB", "7.3 GB"]


def test_the_cli_writes_the_file_counts_its_rows_and_names_a_bad_field(
        engine, hours, database_url, tmp_path):
    from click.testing import CliRunner

    from app.cli import cli
    from tests.conftest import TEST_SECRET

    env = {"DATABASE_URL": database_url, "P2PDASH_DATA_DIR": str(tmp_path / "var"),
           "SECRET_KEY": TEST_SECRET, "P2PDASH_ENV": "test", "P2PDASH_ADMIN_PASSWORD": ""}
    out = tmp_path / "days.parquet"
    done = CliRunner().invoke(cli, ["export", "candles", "--symbol", "BTCUSDT", "--interval",
                                    "1d", "--start", "2022-01-01", "--end", "2022-02-01",
                                    "--format", "parquet", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert f"{out}: 31 rows" in done.output
    assert pq.read_table(out).num_rows == 31
    bad = CliRunner().invoke(cli, ["export", "candles", "--symbol", "BTCUSDT", "--interval",
                                   "7m"], env=env)
    assert bad.exit_code == 2 and "--interval" in bad.output
    with engine.connect() as connection:
        actors = connection.scalars(text(
            "SELECT actor FROM audit_log WHERE action = 'export'")).all()
    assert len(actors) == 1 and actors[0].startswith("cli:")


def test_adverts_over_many_windows_come_once_each_in_order_with_one_header(engine):
    run = Run(engine, "binance_p2p", "p2p_poll", "binance:USDT/ARS", {})
    times = [datetime(2026, 2, 1, hour, tzinfo=UTC) for hour in (0, 5, 6, 13, 23)]
    for at in times:
        for side in ("bid", "ask"):
            book = [Offer(f"{side}-{at.hour}-{n}", Decimal("1000") + n, Decimal("1"), None,
                          None, "u", "name", False, 1, Decimal("0.9"), (), n)
                    for n in (1, 2)]
            store_snapshot(engine, run, Snapshot(P2PMarket("binance", "USDT", "ARS"), side,
                                                 at, book))
    run.finish()
    args = {"market": "binance:USDT/ARS", "start": "2026-02-01", "end": "2026-02-02"}
    data = body(engine, "p2p_offers", **args)
    assert data.count(b"captured_at") == 1, "one header"
    frame = pd.read_csv(io.BytesIO(data), dtype=str)
    assert len(frame) == len(times) * 4
    keys = list(zip(frame["captured_at"], frame["side"], frame["rank"].astype(int),
                    strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    table = pq.read_table(io.BytesIO(body(engine, "p2p_offers", format="parquet", **args)))
    assert table.column("offer_id").to_pylist() == frame["offer_id"].tolist()
