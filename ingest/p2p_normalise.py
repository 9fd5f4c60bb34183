"""One offer record for every exchange, and the checked readers that build it.

Each exchange module (binance_p2p, okx_p2p, bybit_p2p) maps its advert format onto `Offer`
with a `Fields` reader, so every exchange gets the same rules: numbers are parsed with
Decimal (never float), amounts are never negative, prices are positive, the completion rate
is a 0-1 fraction, and a bad advert raises `MalformedAdvert` naming the field and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.config import P2PMarket
from app.logs import CONTROL

SIDES = ("ask", "bid")


class MalformedAdvert(ValueError):
    """An advert (or a pushed offer) that cannot be stored; names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class PaymentMethod:
    """A payment method as the exchange names it: its stable identifier and display name."""

    identifier: str
    name: str | None = None


@dataclass(frozen=True)
class Offer:
    """A normalised P2P advert; the market, side and capture time belong to its snapshot."""

    offer_id: str
    price: Decimal
    available: Decimal | None
    min_fiat: Decimal | None
    max_fiat: Decimal | None
    advertiser_id: str | None
    advertiser_name: str | None
    is_merchant: bool
    month_orders: int | None
    month_finish_rate: Decimal | None
    payment_methods: tuple[PaymentMethod, ...]
    rank: int | None

    def __post_init__(self) -> None:
        """The rules every advert meets, polled or pushed."""
        if (self.min_fiat is not None and self.max_fiat is not None
                and self.min_fiat > self.max_fiat):
            raise MalformedAdvert("min_fiat", f"{self.min_fiat} is above max_fiat "
                                              f"{self.max_fiat}")
        if len(self.payment_methods) > MAX_METHODS:
            raise MalformedAdvert("payment_methods", f"at most {MAX_METHODS}")


def offer_row(offer: Offer, market: P2PMarket, side: str, captured_at: datetime,
              run_id: int) -> dict[str, Any]:
    """Return the p2p_offers row for `offer` in a snapshot."""
    return {
        "captured_at": captured_at, "run_id": run_id, "exchange": market.exchange,
        "asset": market.asset, "fiat": market.fiat, "side": side,
        "offer_id": offer.offer_id, "price": offer.price, "available": offer.available,
        "min_fiat": offer.min_fiat, "max_fiat": offer.max_fiat,
        "advertiser_id": offer.advertiser_id, "advertiser_name": offer.advertiser_name,
        "is_merchant": offer.is_merchant, "month_orders": offer.month_orders,
        "month_finish_rate": offer.month_finish_rate, "rank": offer.rank,
        "payment_methods": [method.identifier for method in offer.payment_methods],
    }


def show(value: Any) -> str:
    """A value as an error message quotes it: numbers plain, text quoted."""
    return str(value) if isinstance(value, Decimal) else repr(value)


# Bounds every number from an exchange or a push meets before it is converted: a number
# is short ASCII text with a small exponent ("1E+1000000" as an integer froze the process
# for 27 s), below 10^20 with at most 18 decimal places (what Parquet's decimal128(38, 18)
# and any price hold); whole numbers fit PostgreSQL's integer.
NUMBER_TEXT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$")
NOT_FINITE = re.compile(r"^[+-]?(s?nan|inf|infinity)$", re.IGNORECASE)
MAX_NUMBER_TEXT = 48
MAX_MAGNITUDE = Decimal(10) ** 20
MAX_PLACES = 18
MAX_INTEGER = 2**31 - 1
MAX_TEXT = 256  # characters of a name or an identifier
MAX_METHODS = 20  # payment methods one advert may list


def parse_decimal(value: Any, field: str) -> Decimal:
    """Parse a JSON number or numeric string into a bounded, finite Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise MalformedAdvert(field, f"{show(value)} is not a number")
    # A float only arrives from a caller that parsed JSON without parse_float=Decimal;
    # str() gives its shortest round-trip text, i.e. the digits that were sent. An int is
    # written out before its size is known: bound it first.
    if isinstance(value, int) and abs(value) >= MAX_MAGNITUDE:
        raise MalformedAdvert(field, "is too large (at most 10^20)")
    raw = str(value).strip()
    if len(raw) > MAX_NUMBER_TEXT or not NUMBER_TEXT.match(raw):
        shown = show(value if len(raw) <= 40 else raw[:40] + "...")
        if NOT_FINITE.match(raw):
            raise MalformedAdvert(field, f"{shown} is not a finite number")
        raise MalformedAdvert(field, f"{shown} is not a number")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise MalformedAdvert(field, f"{show(value)} is not a number") from None
    if abs(number) >= MAX_MAGNITUDE:
        raise MalformedAdvert(field, f"{show(value)} is too large (at most 10^20)")
    if number and number.normalize().as_tuple().exponent < -MAX_PLACES:
        raise MalformedAdvert(field, f"{show(value)} has more than {MAX_PLACES} decimal places")
    return number


def clean_text(value: str, limit: int = MAX_TEXT) -> str:
    """Text with control characters removed, stripped, at most `limit` characters."""
    return CONTROL.sub("", value).strip()[:limit]


def effective_max(max_fiat: Decimal | None, available: Decimal | None,
                  price: Decimal) -> Decimal | None:
    """The most fiat one order can take: the advert's maximum, capped by what is left."""
    if available is None:
        return max_fiat
    left = available * price
    return left if max_fiat is None or left < max_fiat else max_fiat


class Fields:
    """Read typed, checked fields from one JSON object; errors carry the field's path."""

    def __init__(self, data: Any, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise MalformedAdvert(prefix.rstrip(".") or "advert", "is not a JSON object")
        self.data = data
        self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def raw(self, name: str, required: bool = True) -> Any:
        """The value, or None when absent, null or empty (an error when required)."""
        value = self.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise MalformedAdvert(self.path(name), "is missing")
            return None
        return value

    def child(self, name: str) -> Fields:
        return Fields(self.raw(name), f"{self.path(name)}.")

    def text(self, name: str, required: bool = True) -> str | None:
        """A string (a whole number is accepted as an identifier and turned into text)."""
        value = self.raw(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise MalformedAdvert(self.path(name), f"{show(value)} is not text")
        if isinstance(value, int) and abs(value) >= MAX_MAGNITUDE:
            raise MalformedAdvert(self.path(name), "is too large an identifier")
        if isinstance(value, str) and len(value) > 4 * MAX_TEXT:
            raise MalformedAdvert(self.path(name), f"is over {MAX_TEXT} characters")
        text = clean_text(str(value))
        if not text and required:
            raise MalformedAdvert(self.path(name), "is missing")
        return text or None

    def identifier(self, name: str) -> str:
        """A required, non-empty identifier (text or a whole number)."""
        value = self.text(name)
        assert value is not None  # text() raised when missing
        return value

    def price(self, name: str) -> Decimal:
        """A required, strictly positive Decimal."""
        value = self.decimal(name, positive=True)
        assert value is not None  # decimal() raised when missing
        return value

    def decimal(self, name: str, required: bool = True, positive: bool = False) -> Decimal | None:
        """A finite, non-negative Decimal (strictly positive when `positive`)."""
        value = self.raw(name, required)
        if value is None:
            return None
        number = parse_decimal(value, self.path(name))
        if positive and number <= 0:
            raise MalformedAdvert(self.path(name), f"must be positive; got {show(value)}")
        if number < 0:
            raise MalformedAdvert(self.path(name), f"must not be negative; got {show(value)}")
        return number

    def integer(self, name: str, required: bool = False) -> int | None:
        """A non-negative whole number (from a JSON number or a numeric string)."""
        value = self.raw(name, required)
        if value is None:
            return None
        number = parse_decimal(value, self.path(name))
        if number != number.to_integral_value() or not 0 <= number <= MAX_INTEGER:
            raise MalformedAdvert(self.path(name),
                                  f"must be a whole number from 0 to {MAX_INTEGER}; "
                                  f"got {show(value)}")
        return int(number)

    def fraction(self, name: str, percent: bool = False) -> Decimal | None:
        """A rate as a 0-1 fraction; `percent` when the exchange sends 0-100."""
        number = self.decimal(name, required=False)
        if number is None:
            return None
        if percent:
            number = number / 100
        if number > 1:
            raise MalformedAdvert(self.path(name), f"{show(self.data[name])} is not a rate "
                                                   f"from 0 to {'100' if percent else '1'}")
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        """A JSON true or false."""
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise MalformedAdvert(self.path(name), f"{show(value)} is not true or false")
        return value

    def items(self, name: str) -> list[Any]:
        """A JSON array (absent or null: empty)."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise MalformedAdvert(self.path(name), f"{show(value)} is not a list")
        return value

    def payment_identifiers(self, name: str) -> tuple[PaymentMethod, ...]:
        """A list of payment method identifiers (strings, or numeric ids)."""
        methods = []
        items = self.items(name)
        if len(items) > MAX_METHODS:
            raise MalformedAdvert(self.path(name),
                                  f"{len(items)} payment methods; at most {MAX_METHODS}")
        for index, value in enumerate(items):
            usable = isinstance(value, (str, int)) and not isinstance(value, bool)
            text = clean_text(str(value), 64) if usable else ""
            if not text or len(str(value)) > 64:
                raise MalformedAdvert(f"{self.path(name)}[{index}]",
                                      f"{show(value)[:80]} is not a payment method identifier")
            methods.append(PaymentMethod(text))
        return tuple(dict.fromkeys(methods))

    def expect_code(self, name: str, expected: str) -> None:
        """Check a currency code against the market polled (case-insensitively)."""
        value = self.text(name)
        if value is None or value.upper() != expected:
            raise MalformedAdvert(self.path(name),
                                  f"{show(value)} is not {expected}, the market polled")

    def side(self, name: str, mapping: Mapping[Any, str], expected: str) -> None:
        """Check the advert's own side marker against the side polled."""
        value = self.raw(name)
        side = mapping.get(value)
        if side is None:
            raise MalformedAdvert(self.path(name), f"unknown side {show(value)}")
        if side != expected:
            raise MalformedAdvert(self.path(name), f"{show(value)} is the {side} side, "
                                                   f"not the {expected} side polled")
