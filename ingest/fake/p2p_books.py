"""The books the fake P2P exchange serves: replayed real captures, or a simulated market.

Replay: every capture in a directory (tests/captures/p2p) is served for the market and side
it was captured for, advert for advert. Simulation: a book per exchange, market and side,
priced from a spot price (USD) times a drifting fiat rate, with realistic spreads, real
payment method identifiers and merchants, in each exchange's own advert format (the
templates are real adverts). A simulated book is a pure function of the clock's period, so
two requests in the same period see the same book, and `simulation_at` gives the books of
any moment, past or future.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson

from ingest import binance_p2p, bybit_p2p, okx_p2p
from ingest.fake.market import SimClock, SimulatedMarket, instrument

TEMPLATES = json.loads((Path(__file__).parent / "p2p_templates.json").read_text("utf-8"))
# Each advert starts from a fresh parse of its template: ten times faster than a deepcopy,
# which counts when the demo seeds a day of books (app/demo_seed.py).
TEMPLATE_JSON = {name: orjson.dumps(template) for name, template in TEMPLATES.items()}
STABLECOINS = ("USDT", "USDC", "FDUSD")
BookKey = tuple[str, str, str, str]  # exchange, asset, fiat, side

DEFAULT_SPOT_USD = {"USDT": 1.0, "USDC": 1.0, "FDUSD": 1.0, "BTC": 65000.0, "ETH": 3200.0,
                    "BNB": 580.0, "SOL": 150.0}
DEFAULT_FIAT_PER_USD = {"ARS": 1150.0, "NGN": 1550.0, "KZT": 480.0, "RUB": 92.0, "EUR": 0.92,
                        "USD": 1.0, "CNY": 7.2, "TRY": 34.0, "BRL": 5.4, "VES": 40.0,
                        "INR": 84.0, "UAH": 41.0, "GEL": 2.7, "VND": 25400.0, "COP": 4000.0}
EXCHANGE_SKEW = {"binance": 1.0, "okx": 1.0015, "bybit": 0.999}
PAYMENTS = {
    "binance": {"RUB": ["Tinkoff", "RosBank", "RaiffeisenBankRussia", "YandexMoney"],
                "KZT": ["KaspiBank", "HalykBank", "JysanBank", "ForteBank"],
                "ARS": ["MercadoPagoNew", "BANK", "BancoBrubank"],
                "EUR": ["Wise", "Revolut", "BANK"], "USD": ["BankofGeorgia", "TBCbank", "Wise"],
                "": ["BANK", "Wise"]},
    "okx": {"CNY": ["bank", "aliPay", "wxPay"], "": ["bank"]},
    "bybit": {"RUB": ["581", "582", "585", "382"], "EUR": ["14", "377"], "": ["14"]},
}
BINANCE_NAMES = {"BANK": "Bank Transfer", "YandexMoney": "YooMoney", "BankofGeorgia":
                 "Bank of Georgia", "RaiffeisenBankRussia": "Raiffeisenbank",
                 "MercadoPagoNew": "Mercadopago", "BancoBrubank": "Brubank"}
NICKNAMES = ["Mobax_treid", "GREEDISGOOD", "ketman", "Abba", "ewa", "GrayKZ", "kiliya", "Ayat",
             "Leshiy_116", "Dim227", "IpAlex", "altair", "Alik88", "Vicgreen", "Buzador",
             "Puziquee", "biven77", "Zura", "RicklePick", "cjmtest", "Saaaul", "PampaCoin",
             "NairaDesk", "TangoFX"]


@dataclass(frozen=True)
class CapturedBook:
    """One side of one market as a capture holds it, and its envelope's extra fields."""

    adverts: list[Any]
    envelope: dict[str, Any] = field(default_factory=dict)


def _key(exchange: str, asset: str, fiat: str, side: str) -> BookKey:
    return exchange, asset.upper(), fiat.upper(), side


def _binance_capture(data: Any) -> tuple[BookKey, CapturedBook] | None:
    adverts = data.get("data") if isinstance(data, dict) else None
    if not isinstance(adverts, list) or not adverts:
        return None
    adv = adverts[0]["adv"]
    envelope = {k: v for k, v in data.items() if k != "data"}
    key = _key("binance", adv["asset"], adv["fiatUnit"], binance_p2p.ADVERT_SIDE[adv["tradeType"]])
    return key, CapturedBook(adverts, envelope)


def _okx_capture(data: Any) -> tuple[BookKey, CapturedBook] | None:
    adverts = [data] if isinstance(data, dict) and "side" in data else None
    if not adverts:
        return None
    first = adverts[0]
    key = _key("okx", first["baseCurrency"], first["quoteCurrency"],
               okx_p2p.ADVERT_SIDE[first["side"]])
    return key, CapturedBook(adverts)


def _bybit_capture(data: Any) -> tuple[BookKey, CapturedBook] | None:
    adverts = data.get("result", {}).get("items") if isinstance(data, dict) else None
    if not adverts:
        return None
    first = adverts[0]
    envelope = {k: v for k, v in data.items() if k != "result"}
    key = _key("bybit", first["tokenId"], first["currencyId"], bybit_p2p.ADVERT_SIDE[first["side"]])
    return key, CapturedBook(adverts, envelope)


CAPTURE_READERS = {"binance": _binance_capture, "okx": _okx_capture, "bybit": _bybit_capture}


def load_captures(directory: Path) -> dict[BookKey, CapturedBook]:
    """Every advert search capture in `directory`, by the market and side it shows."""
    books: dict[BookKey, CapturedBook] = {}
    for path in sorted(Path(directory).glob("*.json")):
        reader = CAPTURE_READERS.get(path.name.split("_")[0])
        # Plain floats keep each number's text: Python writes back the digits it read.
        found = reader(json.loads(path.read_text("utf-8"))) if reader else None
        if found is not None:
            books.setdefault(*found)
    return books


def _money(value: float, places: str = "0.01") -> str:
    return str(Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _stable(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class Simulation:
    """A simulated market: spot prices (USD) times drifting fiat rates, per clock period."""

    spot: Callable[[str], float] = DEFAULT_SPOT_USD.__getitem__
    fiat_per_usd: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FIAT_PER_USD))
    seed: int = 7
    period: float = 60.0
    adverts: int = 40
    clock: Callable[[], float] = time.time

    def fiat_rate(self, fiat: str, epoch: int) -> float:
        """The fiat's USD rate in a period: a slow swing, a faster wobble, some noise."""
        base = self.fiat_per_usd.get(fiat, 100.0)
        noise = _stable(self.seed, fiat, epoch).uniform(-0.0005, 0.0005)
        return base * (1 + 0.004 * math.sin(epoch / 37) + 0.002 * math.sin(epoch / 11.3) + noise)

    def book(self, exchange: str, asset: str, fiat: str, side: str) -> list[dict[str, Any]]:
        """The simulated adverts of one side, best first, in the exchange's format."""
        epoch = int(self.clock() // self.period)
        mid = self.spot(asset) * self.fiat_rate(fiat, epoch) * EXCHANGE_SKEW[exchange]
        rng = _stable(self.seed, exchange, asset, fiat, side, epoch)
        sign = 1 if side == "ask" else -1
        price = mid * (1 + sign * rng.uniform(0.002, 0.006))
        adverts = []
        for slot in range(self.adverts):
            advert = SimulatedAdvert.make(self, (exchange, asset, fiat, side), slot, price)
            adverts.append(BUILDERS[exchange](advert))
            price *= 1 + sign * rng.uniform(0.0001, 0.0015)
        return adverts


def spot_usd(market: SimulatedMarket, clock: SimClock) -> Callable[[str], float]:
    """USD prices of assets from a simulated spot market at the clock's time (stablecoins
    at 1): what a fake exchange prices its simulated P2P books from."""

    def price(asset: str) -> float:
        if asset in STABLECOINS:
            return 1.0
        symbol = f"{asset}USDT"
        return float(instrument(symbol).price(market.price_at(symbol, clock.ms())))

    return price


def simulation_at(market: SimulatedMarket, moment: float, **options: Any) -> Simulation:
    """The simulated P2P market priced from `market` and frozen at `moment` (epoch seconds):
    the books a fake exchange simulating `market` served, or will serve, at that moment."""
    clock = SimClock(0.0, start=moment)
    return Simulation(spot=functools.cache(spot_usd(market, clock)), clock=clock, **options)


@dataclass(frozen=True)
class SimulatedAdvert:
    """The facts of one simulated advert, before the exchange's format."""

    exchange: str
    asset: str
    fiat: str
    side: str
    ad_id: str
    price: str
    available: str
    min_fiat: str
    max_fiat: str
    user_id: str
    nickname: str
    merchant: bool
    month_orders: int
    finish_rate: float
    payments: list[str]

    @classmethod
    def make(cls, sim: Simulation, key: BookKey, slot: int, price: float) -> SimulatedAdvert:
        """The advert in `slot` (same id, advertiser and limits in every period)."""
        exchange, asset, fiat, side = key
        rng = _stable(sim.seed, exchange, asset, fiat, side, "slot", slot)
        usd = sim.spot(asset)
        price_text = _money(price)
        available = _money(rng.uniform(50, 20000) / usd, "0.01" if usd < 100 else "0.000001")
        rate = sim.fiat_per_usd.get(fiat, 100.0)
        low = _money(rng.choice([10, 20, 50, 100]) * rate)
        # What is left caps the maximum (rounded down, so it never exceeds it).
        left = (Decimal(available) * Decimal(price_text)).quantize(Decimal("0.01"), ROUND_DOWN)
        high = max(min(Decimal(_money(rng.choice([500, 2000, 10000]) * rate)), left),
                   Decimal(low))
        methods = PAYMENTS[exchange].get(fiat, PAYMENTS[exchange][""])
        user = rng.randrange(len(NICKNAMES))
        return cls(exchange, asset, fiat, side, ad_id=str(10**18 + rng.randrange(10**18)),
                   price=price_text, available=available, min_fiat=low, max_fiat=str(high),
                   user_id=hashlib.md5(f"{exchange}{user}".encode()).hexdigest()[:16],
                   nickname=NICKNAMES[user], merchant=user % 3 == 0,
                   month_orders=rng.randrange(5, 3000), finish_rate=round(rng.uniform(0.85, 1), 4),
                   payments=rng.sample(methods, k=min(len(methods), rng.choice([1, 2]))))


def binance_advert(ad: SimulatedAdvert) -> dict[str, Any]:
    """A Binance advert with the facts of `ad`."""
    item = _template("binance")
    adv, user = item["adv"], item["advertiser"]
    method = adv["tradeMethods"][0]
    adv.update(advNo=ad.ad_id, tradeType="SELL" if ad.side == "ask" else "BUY", asset=ad.asset,
               fiatUnit=ad.fiat, price=ad.price, surplusAmount=ad.available,
               tradableQuantity=ad.available, dynamicMaxSingleTransQuantity=ad.available,
               minSingleTransAmount=ad.min_fiat, maxSingleTransAmount=ad.max_fiat,
               dynamicMaxSingleTransAmount=ad.max_fiat, fiatSymbol=ad.fiat,
               tradeMethods=[{**method, "identifier": m, "tradeMethodName":
                              BINANCE_NAMES.get(m, m)} for m in ad.payments])
    user.update(userNo=f"s{ad.user_id}", nickName=ad.nickname, monthOrderCount=ad.month_orders,
                monthFinishRate=ad.finish_rate, userType="merchant" if ad.merchant else "user",
                userIdentity="MASS_MERCHANT" if ad.merchant else "")
    return item


def okx_advert(ad: SimulatedAdvert) -> dict[str, Any]:
    """An OKX advert with the facts of `ad`."""
    item = _template("okx")
    item.update(id=ad.ad_id[:15], side="sell" if ad.side == "ask" else "buy",
                baseCurrency=ad.asset.lower(), quoteCurrency=ad.fiat.lower(), price=ad.price,
                availableAmount=ad.available, quoteMinAmountPerOrder=ad.min_fiat,
                quoteMaxAmountPerOrder=ad.max_fiat, nickName=ad.nickname,
                publicUserId=ad.user_id[:10], merchantId=ad.user_id[6:16],
                creatorType="diamond" if ad.merchant else "common",
                completedRate=f"{ad.finish_rate:.4f}", completedOrderQuantity=ad.month_orders,
                paymentMethods=ad.payments, quoteSymbol=ad.fiat)
    return item


def bybit_advert(ad: SimulatedAdvert) -> dict[str, Any]:
    """A Bybit advert with the facts of `ad`."""
    item = _template("bybit")
    item.update(id=ad.ad_id, userId=str(int(ad.user_id[:7], 16)),
                accountId=str(int(ad.user_id[:7], 16) + 2),
                nickName=ad.nickname, tokenId=ad.asset, currencyId=ad.fiat,
                side=1 if ad.side == "ask" else 0, price=ad.price, lastQuantity=ad.available,
                quantity=ad.available, minAmount=ad.min_fiat, maxAmount=ad.max_fiat, remark="",
                payments=ad.payments, recentOrderNum=ad.month_orders,
                recentExecuteRate=int(ad.finish_rate * 100),
                authTag=["VA"] if ad.merchant else [],
                userType="ORG" if ad.merchant else "PERSONAL")
    item["symbolInfo"] = {**item["symbolInfo"], "tokenId": ad.asset, "currencyId": ad.fiat}
    return item


def _template(name: str) -> dict[str, Any]:
    return orjson.loads(TEMPLATE_JSON[name])


BUILDERS: dict[str, Callable[[SimulatedAdvert], dict[str, Any]]] = {
    "binance": binance_advert, "okx": okx_advert, "bybit": bybit_advert}
