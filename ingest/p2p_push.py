"""Pushed P2P snapshots: validate our normalised JSON body, then store it as a p2p_push run.

The body (POST /api/v1/ingest/p2p-offers, wired by the API):
    {"exchange": "binance", "asset": "USDT", "fiat": "ARS", "side": "ask",
     "captured_at": "2024-05-01T12:00:00Z",
     "offers": [{"offer_id": "1", "price": "1234.50", "available": "100",
                 "min_fiat": "1000", "max_fiat": "50000", "advertiser_id": "u1",
                 "advertiser_name": "Ana", "is_merchant": true, "month_orders": 120,
                 "month_finish_rate": "0.98", "payment_methods": ["MercadoPagoNew"],
                 "rank": 1}]}
Numbers may be strings or JSON numbers (parse the body with parse_float=Decimal). Every
problem is reported as {"index", "field", "message"} (index: the offer's position, or None
for the snapshot's own fields); a body with any problem is refused whole and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from app.config import EXCHANGES, P2PMarket
from db import p2p_rollups
from ingest.p2p_normalise import SIDES, Fields, MalformedAdvert, Offer
from ingest.p2p_store import Snapshot, announce, store_snapshot
from ingest.runs import start_run

MAX_PUSH_BYTES = 1_048_576
MAX_PUSH_OFFERS = 1000
MAX_PUSH_METHODS = 100  # distinct payment methods one push may name (each becomes a row)
EARLIEST = datetime(2017, 1, 1, tzinfo=UTC)  # before any P2P market this app reads
FUTURE_TOLERANCE = timedelta(minutes=5)
_CODE = re.compile(r"^[A-Z0-9]{2,10}$")
SNAPSHOT_FIELDS = ("exchange", "asset", "fiat", "side", "captured_at", "offers")


class PushRejected(ValueError):
    """A pushed body that cannot be stored; `errors` says every field that is wrong."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the pushed snapshot")
        self.errors = errors


OFFER_FIELDS: dict[str, Callable[[Fields], Any]] = {
    "offer_id": lambda f: f.identifier("offer_id"),
    "price": lambda f: f.price("price"),
    "available": lambda f: f.decimal("available", required=False),
    "min_fiat": lambda f: f.decimal("min_fiat", required=False),
    "max_fiat": lambda f: f.decimal("max_fiat", required=False),
    "advertiser_id": lambda f: f.text("advertiser_id", required=False),
    "advertiser_name": lambda f: f.text("advertiser_name", required=False),
    "is_merchant": lambda f: f.boolean("is_merchant"),
    "month_orders": lambda f: f.integer("month_orders"),
    "month_finish_rate": lambda f: f.fraction("month_finish_rate"),
    "payment_methods": lambda f: f.payment_identifiers("payment_methods"),
    "rank": lambda f: f.integer("rank"),
}


def _error(index: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"index": index, "field": field, "message": message}


def validate_push(body: Any) -> tuple[Snapshot | None, list[dict[str, Any]]]:
    """Check a pushed body; return the snapshot, or None and every problem found."""
    if not isinstance(body, Mapping):
        return None, [_error(None, None, "the body must be a JSON object")]
    errors = [_error(None, name, "unknown field") for name in body
              if name not in SNAPSHOT_FIELDS]
    head = _snapshot_fields(body, errors)
    offers = _offers(body.get("offers"), errors)
    if errors or head is None:
        return None, errors
    market, side, captured_at = head
    return Snapshot(market, side, captured_at, offers), []


def _snapshot_fields(body: Mapping[str, Any],
                     errors: list[dict[str, Any]]) -> tuple[P2PMarket, str, datetime] | None:
    exchange, asset, fiat = body.get("exchange"), body.get("asset"), body.get("fiat")
    side, captured_at = body.get("side"), _timestamp(body.get("captured_at"), errors)
    if exchange not in EXCHANGES:
        errors.append(_error(None, "exchange", f"{exchange!r} is not one of "
                                               f"{', '.join(EXCHANGES)}"))
    for name, code in (("asset", asset), ("fiat", fiat)):
        if not (isinstance(code, str) and _CODE.match(code)):
            errors.append(_error(None, name, f"{code!r} is not a code like USDT or ARS"))
    if side not in SIDES:
        errors.append(_error(None, "side", f"unknown side {side!r}; expected ask or bid"))
    if errors or captured_at is None:
        return None
    return P2PMarket(str(exchange), str(asset), str(fiat)), str(side), captured_at


def _timestamp(value: Any, errors: list[dict[str, Any]]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        errors.append(_error(None, "captured_at", f"{value!r} is not an ISO 8601 time"))
        return None
    if moment.tzinfo is None:
        errors.append(_error(None, "captured_at", f"{value!r} has no time zone"))
        return None
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        errors.append(_error(None, "captured_at", f"{value!r} is in the future"))
        return None
    if moment < EARLIEST:
        errors.append(_error(None, "captured_at", f"{value!r} is before {EARLIEST:%Y-%m-%d}"))
        return None
    return moment.astimezone(UTC)


def _offers(items: Any, errors: list[dict[str, Any]]) -> list[Offer]:
    if not isinstance(items, list):
        errors.append(_error(None, "offers", "must be a list of offers"))
        return []
    if len(items) > MAX_PUSH_OFFERS:
        errors.append(_error(None, "offers", f"{len(items)} offers; at most {MAX_PUSH_OFFERS}"))
        return []
    offers = [offer for index, item in enumerate(items)
              if (offer := _offer(index, item, errors)) is not None]
    methods = {method.identifier for offer in offers for method in offer.payment_methods}
    if len(methods) > MAX_PUSH_METHODS:
        errors.append(_error(None, "offers", f"{len(methods)} distinct payment methods; "
                                             f"at most {MAX_PUSH_METHODS}"))
        return []
    return offers


def _offer(index: int, item: Any, errors: list[dict[str, Any]]) -> Offer | None:
    try:
        fields = Fields(item, "")
    except MalformedAdvert:
        errors.append(_error(index, None, "an offer must be a JSON object"))
        return None
    found = len(errors)
    errors.extend(_error(index, name, "unknown field") for name in item
                  if name not in OFFER_FIELDS)
    values: dict[str, Any] = {}
    for name, parse in OFFER_FIELDS.items():
        try:
            values[name] = parse(fields)
        except MalformedAdvert as error:
            errors.append(_error(index, error.field, error.reason))
    if len(errors) > found:
        return None
    values["rank"] = values["rank"] or index + 1
    try:
        return Offer(**values)
    except MalformedAdvert as error:  # the rules across fields (min below max ...)
        errors.append(_error(index, error.field, error.reason))
        return None


def ingest_push(engine: Engine, snapshot: Snapshot, source: str = "api") -> dict[str, int]:
    """Store a validated snapshot as a p2p_push run; return its id and counts."""
    with start_run(engine, source, "p2p_push", str(snapshot.market),
                   {"side": snapshot.side, "captured_at": snapshot.captured_at.isoformat()}
                   ) as run:
        run.add(received=len(snapshot.offers))
        result = store_snapshot(engine, run, snapshot)
    if result.snapshot_id is not None:
        if snapshot.complete:
            p2p_rollups.recompute_late(engine, snapshot.market, snapshot.side,
                                       snapshot.captured_at)
        announce(engine, snapshot.market)
    return {"run_id": run.id, "inserted": result.inserted,
            "duplicates_skipped": result.duplicates}


def push_snapshot(engine: Engine, body: Any, source: str = "api") -> dict[str, int]:
    """Validate and store a pushed body; raise PushRejected (nothing written) when bad."""
    snapshot, errors = validate_push(body)
    if snapshot is None:
        raise PushRejected(errors)
    return ingest_push(engine, snapshot, source)
