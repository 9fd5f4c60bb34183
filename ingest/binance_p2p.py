"""Binance P2P: the advert search behind p2p.binance.com, paged, and its advert format.

POST /bapi/c2c/v2/friendly/c2c/adv/search with {"page", "rows" (at most 20), "payTypes",
"countries", "publisherType", "asset", "fiat", "tradeType"}. tradeType is the user's side:
BUY returns the adverts you can buy from (their own tradeType SELL, lowest price first: our
ask side); SELL returns the bid side, highest first. The answer is
{"code": "000000", "data": [{"adv": ..., "advertiser": ...}], "total": N, "success": true}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.config import P2PMarket
from ingest.p2p_http import ExchangeClient, ExchangeError, check_envelope
from ingest.p2p_normalise import Fields, Offer, PaymentMethod

SOURCE = "binance_p2p"
PATH = "/bapi/c2c/v2/friendly/c2c/adv/search"
MAX_ROWS = 20
TRADE_TYPE = {"ask": "BUY", "bid": "SELL"}
ADVERT_SIDE = {"SELL": "ask", "BUY": "bid"}
HEADERS = {"clienttype": "web", "lang": "en"}


def request_body(market: P2PMarket, side: str, page: int, rows: int) -> dict[str, Any]:
    """The search request for one page of one side of a market."""
    return {"page": page, "rows": min(rows, MAX_ROWS), "payTypes": [], "countries": [],
            "publisherType": None, "asset": market.asset, "fiat": market.fiat,
            "tradeType": TRADE_TYPE[side]}


def fetch_pages(client: ExchangeClient, market: P2PMarket, side: str, depth: int,
                page_rows: int) -> Iterator[list[Any]]:
    """Yield pages of raw adverts, best first, until `depth` adverts or the book's end."""
    rows = min(page_rows, MAX_ROWS)
    fetched, page = 0, 1
    while fetched < depth:
        answer = client.post_json(PATH, request_body(market, side, page, rows), HEADERS)
        adverts = _adverts(answer)
        yield adverts[: depth - fetched]
        fetched += len(adverts)
        total = answer.get("total")
        if len(adverts) < rows or (isinstance(total, int) and page * rows >= total):
            return
        page += 1


def _adverts(answer: Any) -> list[Any]:
    if not isinstance(answer, dict):
        raise ExchangeError(f"binance P2P: answer is not a JSON object: {str(answer)[:200]!r}")
    check_envelope("binance", answer.get("code") == "000000" and answer.get("success") is not
                   False, answer.get("code"), answer.get("message"))
    data = answer.get("data")
    if not isinstance(data, list):
        raise ExchangeError(f"binance P2P: 'data' is not a list: {str(data)[:200]!r}")
    return data


def normalise(raw: Any, market: P2PMarket, side: str, rank: int) -> Offer:
    """Map one Binance advert onto the common offer record."""
    item = Fields(raw)
    adv, user = item.child("adv"), item.child("advertiser")
    adv.side("tradeType", ADVERT_SIDE, side)
    adv.expect_code("asset", market.asset)
    adv.expect_code("fiatUnit", market.fiat)
    available = adv.decimal("tradableQuantity", required=False)
    if available is None:
        available = adv.decimal("surplusAmount")
    max_fiat = adv.decimal("dynamicMaxSingleTransAmount", required=False)
    return Offer(
        offer_id=adv.identifier("advNo"),
        price=adv.price("price"),
        available=available,
        min_fiat=adv.decimal("minSingleTransAmount", required=False),
        max_fiat=max_fiat if max_fiat is not None else adv.decimal("maxSingleTransAmount",
                                                                   required=False),
        advertiser_id=user.text("userNo", required=False),
        advertiser_name=user.text("nickName", required=False),
        is_merchant=user.text("userType", required=False) == "merchant",
        month_orders=user.integer("monthOrderCount"),
        month_finish_rate=user.fraction("monthFinishRate"),
        payment_methods=_payment_methods(adv),
        rank=rank,
    )


def _payment_methods(adv: Fields) -> tuple[PaymentMethod, ...]:
    methods = []
    for index, raw in enumerate(adv.items("tradeMethods")):
        method = Fields(raw, f"{adv.path('tradeMethods')}[{index}].")
        methods.append(PaymentMethod(method.identifier("identifier"),
                                     method.text("tradeMethodName", required=False)))
    return tuple(methods)
