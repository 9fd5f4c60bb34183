"""OKX P2P: the public order books behind okx.com/p2p, and their advert format.

GET /v3/c2c/tradingOrders/books with quoteCurrency, baseCurrency (lowercase), side (the
advertiser's side: to buy the asset you read side=sell, our ask side), paymentMethod=all,
userType=all and the web client's display flags. The whole side comes back in one answer:
{"code": 0, "data": {"buy": [...], "sell": [...]}, "msg": ""}. Rates are string fractions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from app.config import P2PMarket
from ingest.p2p_http import ExchangeClient, ExchangeError, check_envelope
from ingest.p2p_normalise import Fields, Offer, effective_max

SOURCE = "okx_p2p"
PATH = "/v3/c2c/tradingOrders/books"
ADVERTISER_SIDE = {"ask": "sell", "bid": "buy"}
ADVERT_SIDE = {"sell": "ask", "buy": "bid"}
# creatorType of ordinary users; certified, diamond (and other tiers) are merchants.
ORDINARY_CREATOR = "common"


def request_params(market: P2PMarket, side: str) -> dict[str, str]:
    """The query of one side of a market, as the OKX web client sends it."""
    return {"quoteCurrency": market.fiat.lower(), "baseCurrency": market.asset.lower(),
            "side": ADVERTISER_SIDE[side], "paymentMethod": "all", "userType": "all",
            "showTrade": "false", "showFollow": "false", "showAlreadyTraded": "false",
            "isAbleFilter": "false", "receivingAds": "false", "urlId": "0",
            "t": str(int(time.time() * 1000))}


def fetch_pages(client: ExchangeClient, market: P2PMarket, side: str, depth: int,
                page_rows: int) -> Iterator[list[Any]]:
    """Yield the one page OKX answers (the whole side), cut to `depth` adverts."""
    answer = client.get_json(PATH, request_params(market, side))
    yield _adverts(answer, ADVERTISER_SIDE[side])[:depth]


def _adverts(answer: Any, key: str) -> list[Any]:
    if not isinstance(answer, dict):
        raise ExchangeError(f"okx P2P: answer is not a JSON object: {str(answer)[:200]!r}")
    code = answer.get("code")
    check_envelope("okx", code in (0, "0"), code, answer.get("msg"))
    data = answer.get("data")
    adverts = data.get(key) if isinstance(data, dict) else None
    if not isinstance(adverts, list):
        raise ExchangeError(f"okx P2P: 'data.{key}' is not a list: {str(data)[:200]!r}")
    return adverts


def normalise(raw: Any, market: P2PMarket, side: str, rank: int) -> Offer:
    """Map one OKX advert onto the common offer record."""
    item = Fields(raw)
    item.side("side", ADVERT_SIDE, side)
    item.expect_code("baseCurrency", market.asset)
    item.expect_code("quoteCurrency", market.fiat)
    price = item.price("price")
    available = item.decimal("availableAmount")
    creator = item.text("creatorType", required=False)
    return Offer(
        offer_id=item.identifier("id"),
        price=price,
        available=available,
        min_fiat=item.decimal("quoteMinAmountPerOrder", required=False),
        max_fiat=effective_max(item.decimal("quoteMaxAmountPerOrder", required=False),
                               available, price),
        advertiser_id=item.text("publicUserId", required=False),
        advertiser_name=item.text("nickName", required=False),
        is_merchant=creator is not None and creator != ORDINARY_CREATOR,
        # The book has all-time counts only (completedOrderQuantity), no 30-day one.
        month_orders=None,
        month_finish_rate=item.fraction("completedRate"),
        payment_methods=item.payment_identifiers("paymentMethods"),
        rank=rank,
    )
