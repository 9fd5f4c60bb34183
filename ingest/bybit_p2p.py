"""Bybit P2P: the public web endpoint behind bybit.com/fiat/trade/otc, paged, and its format.

POST /fiat/otc/item/online with {"userId": "", "tokenId", "currencyId", "payment": [],
"side", "size", "page", "amount": "", "authMaker": false, "canTrade": false}, every value a
string as the web client sends it. side "1" lists the adverts you can buy from (our ask
side), "0" those you can sell to. The answer is {"ret_code": 0, "ret_msg": "SUCCESS",
"result": {"count": N, "items": [...]}}; the completion rate is 0-100 percent and payment
methods are numeric id strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.config import P2PMarket
from ingest.p2p_http import ExchangeClient, ExchangeError, check_envelope
from ingest.p2p_normalise import Fields, Offer, effective_max

SOURCE = "bybit_p2p"
PATH = "/fiat/otc/item/online"
REQUEST_SIDE = {"ask": "1", "bid": "0"}
ADVERT_SIDE = {1: "ask", "1": "ask", 0: "bid", "0": "bid"}
# authTag marks verified advertisers (the documented tags are VA and BA; GA is the gold tier).
MERCHANT_TAGS = frozenset({"VA", "BA", "GA"})
HEADERS = {"lang": "en", "Origin": "https://www.bybit.com", "Referer": "https://www.bybit.com/"}


def request_body(market: P2PMarket, side: str, page: int, rows: int) -> dict[str, Any]:
    """The request for one page of one side of a market."""
    return {"userId": "", "tokenId": market.asset, "currencyId": market.fiat, "payment": [],
            "side": REQUEST_SIDE[side], "size": str(rows), "page": str(page), "amount": "",
            "authMaker": False, "canTrade": False}


def fetch_pages(client: ExchangeClient, market: P2PMarket, side: str, depth: int,
                page_rows: int) -> Iterator[list[Any]]:
    """Yield pages of raw adverts, best first, until `depth` adverts or the book's end."""
    fetched, page = 0, 1
    while fetched < depth:
        result = _result(client.post_json(PATH, request_body(market, side, page, page_rows),
                                          HEADERS))
        adverts = result["items"]
        yield adverts[: depth - fetched]
        fetched += len(adverts)
        count = result.get("count")
        if len(adverts) < page_rows or (isinstance(count, int) and page * page_rows >= count):
            return
        page += 1


def _result(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ExchangeError(f"bybit P2P: answer is not a JSON object: {str(answer)[:200]!r}")
    code = answer.get("ret_code", answer.get("retCode"))
    check_envelope("bybit", code == 0, code, answer.get("ret_msg", answer.get("retMsg")))
    result = answer.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("items"), list):
        raise ExchangeError(f"bybit P2P: 'result.items' is not a list: {str(result)[:200]!r}")
    return result


def normalise(raw: Any, market: P2PMarket, side: str, rank: int) -> Offer:
    """Map one Bybit advert onto the common offer record."""
    item = Fields(raw)
    item.side("side", ADVERT_SIDE, side)
    item.expect_code("tokenId", market.asset)
    item.expect_code("currencyId", market.fiat)
    price = item.price("price")
    available = item.decimal("lastQuantity")
    tags = {str(tag) for tag in item.items("authTag")}
    return Offer(
        offer_id=item.identifier("id"),
        price=price,
        available=available,
        min_fiat=item.decimal("minAmount", required=False),
        max_fiat=effective_max(item.decimal("maxAmount", required=False), available, price),
        advertiser_id=item.text("userId", required=False),
        advertiser_name=item.text("nickName", required=False),
        is_merchant=bool(tags & MERCHANT_TAGS),
        month_orders=item.integer("recentOrderNum"),
        month_finish_rate=item.fraction("recentExecuteRate", percent=True),
        payment_methods=item.payment_identifiers("payments"),
        rank=rank,
    )
