"""The Download menus' links as pure functions: the whole range in whole buckets, the
page's filters as the export reads them (completion as a fraction), one link per format;
and the Export page's request, curl and pandas snippets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from callbacks.download import (
    advert_links,
    candle_links,
    covering,
    depth_links,
    filter_params,
    overview_links,
    spread_links,
    volume_links,
)
from callbacks.export_page import (
    curl_command,
    day_range,
    export_params,
    pandas_code,
    problem_of,
    shown_params,
)
from db.export import parse_request
from layouts.urlstate import search

NOW = datetime(2026, 2, 1, 12, 7, 30, tzinfo=UTC)
MARKET = "binance:USDT/ARS"


def query(href: str) -> dict[str, str]:
    parts = urlsplit(href)
    return {key: values[0] for key, values in parse_qs(parts.query).items()}


def hrefs(groups) -> list[str]:
    return [href for _heading, links in groups for _key, _label, href in links]


def test_the_spread_link_covers_the_whole_range_in_whole_buckets():
    groups = spread_links([MARKET], "1d", "5m", filter_params(), NOW)
    args = query(hrefs(groups)[0])
    assert args == {"market": MARKET, "bucket": "5m", "start": "2026-01-31T12:05:00Z",
                    "end": "2026-02-01T12:10:00Z", "format": "csv"}
    request = parse_request("p2p_history", args, role="analyst")
    assert request.params["end"] - request.params["start"] >= timedelta(days=1)


def test_the_spread_link_carries_the_filters_with_completion_as_a_fraction():
    filters = filter_params(50000.0, ["mercadopago", "brubank"], True, 95)
    args = query(hrefs(spread_links([MARKET], "1h", "1m", filters, NOW))[0])
    assert args["amount"] == "50000"
    assert args["payment"] == "brubank,mercadopago"
    assert args["merchant_only"] == "true"
    assert args["min_completion"] == "0.95"
    checked = parse_request("p2p_history", args, role="analyst").query.params
    assert checked["min_completion"] == Decimal("0.95")
    assert checked["payment"] == ["brubank", "mercadopago"]


def test_unset_filters_leave_the_link():
    args = query(hrefs(spread_links([MARKET], "1h", "1m", filter_params(None, [], False, None),
                                    NOW))[0])
    assert not {"amount", "payment", "merchant_only", "min_completion"} & set(args)


def test_one_link_per_format_and_one_group_per_market():
    one = spread_links([MARKET], "1d", "5m", filter_params(), NOW)
    assert [(heading, [key for key, _l, _h in links]) for heading, links in one] == [
        (None, ["csv", "excel", "parquet"])]
    two = spread_links([MARKET, "okx:USDT/ARS"], "1d", "5m", filter_params(), NOW)
    assert [heading for heading, _links in two] == [MARKET, "okx:USDT/ARS"]
    assert [query(href)["format"] for href in hrefs(two)] == ["csv", "excel", "parquet"] * 2
    assert {query(href)["market"] for href in hrefs(two)[3:]} == {"okx:USDT/ARS"}


def test_the_adverts_link_is_every_advert_of_the_range():
    args = query(hrefs(advert_links(MARKET, "1h", filter_params(payment=["uala"]), NOW))[0])
    assert hrefs(advert_links(MARKET, "1h", {}, NOW))[0].startswith("/export/p2p_offers?")
    assert (args["start"], args["end"], args["payment"]) == (
        "2026-02-01T11:07:00Z", "2026-02-01T12:08:00Z", "uala")
    assert advert_links(None, "1h", {}, NOW) == []


def test_the_candle_links_align_on_the_interval_and_offer_binance_archive():
    groups = candle_links("BTCUSDT", "4h", "1w", NOW)
    keys = [key for _heading, links in groups for key, _label, _href in links]
    assert keys == ["csv", "excel", "parquet", "binance"]
    args = query(hrefs(groups)[3])
    assert args == {"symbol": "BTCUSDT", "interval": "4h", "start": "2026-01-25T12:00:00Z",
                    "end": "2026-02-01T16:00:00Z", "format": "binance"}
    weekly = query(hrefs(candle_links("BTCUSDT", "1w", "1M", NOW))[0])
    assert datetime.fromisoformat(weekly["start"]).weekday() == 0  # weeks start on Monday


def test_the_volume_links_follow_each_symbol_and_the_bucket():
    groups = volume_links(["BTCUSDT", "ETHUSDT"], "1h", "1d", NOW)
    assert [heading for heading, _links in groups] == ["BTCUSDT", "ETHUSDT"]
    assert query(hrefs(groups)[0])["interval"] == "1h"


def test_the_depth_link_names_the_snapshot_or_the_latest():
    at_ms = int(datetime(2026, 2, 1, 9, 30, tzinfo=UTC).timestamp() * 1000)
    args = query(hrefs(depth_links(MARKET, at_ms, filter_params(merchant=True)))[0])
    assert args == {"market": MARKET, "at": "2026-02-01T09:30:00Z", "merchant_only": "true",
                    "format": "csv"}
    assert "at" not in query(hrefs(depth_links(MARKET, None, {}))[0])


def test_covering_an_exact_boundary_adds_no_bucket():
    exact = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    assert covering(3600, exact, 300_000) == {"start": "2026-02-01T11:00:00Z",
                                              "end": "2026-02-01T12:00:00Z"}


def test_the_export_page_builds_only_the_datasets_parameters():
    values = {"symbol": "BTCUSDT", "market": MARKET, "interval": "1h", "bucket": "15m",
              "completion": 90, "format": "parquet", "start_day": "2026-01-01",
              "end_day": "2026-01-31"}
    history = export_params("p2p_history", values)
    assert history == {"market": MARKET, "bucket": "15m", "amount": None, "payment": [],
                       "merchant_only": None, "min_completion": "0.9",
                       "start": "2026-01-01", "end": "2026-02-01", "format": "parquet"}
    assert set(export_params("candles", values)) == {"symbol", "interval", "start", "end",
                                                     "format"}
    assert shown_params("p2p_depth") == {"market", "at", "filters"}
    assert shown_params("runs") == set()
    assert day_range(None, None) == {"start": None, "end": None}


def test_the_snippets_carry_the_same_request():
    query_string = search({"symbol": "BTCUSDT", "interval": "4h", "format": "parquet"})
    curl = curl_command("http://host:8050", "candles", query_string)
    assert curl == ('curl -H "X-API-Key: $P2PDASH_KEY" -OJ '
                    '"http://host:8050/api/v1/export/candles?symbol=BTCUSDT&interval=4h'
                    '&format=parquet"')
    code = pandas_code("http://host:8050", "candles", query_string, "parquet")
    assert "pd.read_parquet(url, storage_options={\"X-API-Key\": os.environ[" in code
    compile(code, "snippet", "exec")
    assert "sep=\"\\t\", encoding=\"utf-16\"" in pandas_code("h", "runs", "", "excel")


def test_the_export_page_names_a_bad_field_before_the_download():
    assert problem_of("runs", "?format=csv", "analyst") == (
        "dataset: only admins export this dataset")
    assert problem_of("candles", "?format=csv", "analyst").startswith("symbol:")
    assert problem_of("candles", "?symbol=BTCUSDT&format=binance", "analyst") is None
    assert "2 days" in problem_of("candles", "?symbol=BTCUSDT&start=2026-01-01&end=2026-01-05",
                                  "analyst", max_days=2)


def test_the_overview_tables_export_the_last_day_behind_them():
    markets, tickers, feeds = overview_links([MARKET, "okx:USDT/ARS"], ["BTCUSDT"], NOW)
    assert [heading for heading, _links in markets] == [MARKET, "okx:USDT/ARS"]
    first = query(hrefs(markets)[0])
    assert hrefs(markets)[0].startswith("/export/p2p_history?")
    assert (first["market"], first["bucket"]) == (MARKET, "5m")
    assert (first["start"], first["end"]) == ("2026-01-31T12:07:00Z", "2026-02-01T12:08:00Z")
    assert [href.split("?")[0] for href in hrefs(tickers)] == ["/export/tickers_24h"] * 3
    assert query(hrefs(feeds)[0])["start"] == first["start"]
    for href in hrefs(markets) + hrefs(tickers) + hrefs(feeds):
        parse_request(href.split("?")[0].removeprefix("/export/"), query(href), role="admin")
