"""Write P2P snapshots: one side of one market at one moment, whole, in one transaction.

A snapshot is a p2p_snapshots row (with its aggregates) plus its p2p_offers rows, merged by
(exchange, offer_id, captured_at) so a re-sent snapshot changes nothing and is counted as
duplicates. Polls (runs of kind p2p_poll) and pushes (p2p_push) both write through here.
Rejected adverts never reach this module: the caller logs them with its run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.dialects.postgresql import insert

from app import metrics
from app.config import P2PMarket
from db.bulk import copy_merge
from db.schema import p2p_offers, p2p_snapshots, payment_methods
from ingest.p2p_normalise import MalformedAdvert, Offer, offer_row
from ingest.runs import Run

log = logging.getLogger(__name__)

OFFER_KEY = ("exchange", "offer_id", "captured_at")
Normaliser = Callable[[Any, P2PMarket, str, int], Offer]


@dataclass(frozen=True)
class Snapshot:
    """One side of one market's book at `captured_at`; incomplete when cut short."""

    market: P2PMarket
    side: str
    captured_at: datetime
    offers: Sequence[Offer]
    complete: bool = True


@dataclass(frozen=True)
class StoreResult:
    """What storing a snapshot did: its id (None for a re-sent one), new and repeated offers."""

    snapshot_id: int | None
    inserted: int
    duplicates: int


def normalise_adverts(run: Run, normalise: Normaliser, market: P2PMarket, side: str,
                      adverts: Sequence[Any]) -> list[Offer]:
    """Normalise raw adverts in book order; log and count each malformed one, keep the rest."""
    offers = []
    for rank, raw in enumerate(adverts, start=1):
        try:
            offers.append(normalise(raw, market, side, rank))
        except MalformedAdvert as error:
            run.add(rejected=1)
            run.error(f"{market} {side} advert #{rank} rejected: {error}",
                      payload=json.dumps(raw, default=str, ensure_ascii=False))
    return offers


def unique_offers(offers: Sequence[Offer]) -> list[Offer]:
    """Drop repeats of an offer id (a book that moved while paging); the last one wins."""
    return list({offer.offer_id: offer for offer in offers}.values())


def aggregates(side: str, offers: Sequence[Offer]) -> tuple[Decimal | None, Decimal | None]:
    """Best price and liquidity (total available, asset units) of one side."""
    if not offers:
        return None, None
    prices = [offer.price for offer in offers]
    best = min(prices) if side == "ask" else max(prices)
    return best, sum((offer.available or Decimal(0) for offer in offers), Decimal(0))


def store_snapshot(engine: Engine, run: Run, snapshot: Snapshot) -> StoreResult:
    """Write the snapshot and its offers atomically; count inserted and duplicate offers."""
    offers = unique_offers(snapshot.offers)
    with engine.begin() as connection:
        snapshot_id = _insert_snapshot(connection, run.id, snapshot, offers)
        if snapshot_id is None:
            result = StoreResult(None, 0, len(snapshot.offers))
        else:
            rows = [offer_row(offer, snapshot.market, snapshot.side, snapshot.captured_at, run.id)
                    for offer in offers]
            merged = copy_merge(connection, p2p_offers, rows, key=OFFER_KEY)
            if merged.inserted != len(offers):
                connection.execute(update(p2p_snapshots).where(p2p_snapshots.c.id == snapshot_id)
                                   .values(offers=merged.inserted))
            remember_payment_methods(connection, snapshot.market, offers)
            result = StoreResult(snapshot_id, merged.inserted,
                                 len(snapshot.offers) - merged.inserted)
    run.add(inserted=result.inserted, duplicates=result.duplicates)
    metrics.count_merge("p2p_offers", result.inserted, 0, result.duplicates)
    return result


SNAPSHOT_CHANNEL = "p2pdash_snapshot"


def announce(engine: Engine, market: P2PMarket) -> None:
    """Tell the alert evaluator (in the ingest leader, maybe another process) that new
    snapshots of `market` are stored: it evaluates the market's rules at once."""
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_notify(:channel, :market)"),
                           {"channel": SNAPSHOT_CHANNEL, "market": str(market)})


def _insert_snapshot(connection: Connection, run_id: int, snapshot: Snapshot,
                     offers: Sequence[Offer]) -> int | None:
    best, liquidity = aggregates(snapshot.side, offers)
    market = snapshot.market
    statement = insert(p2p_snapshots).values(
        run_id=run_id, exchange=market.exchange, asset=market.asset, fiat=market.fiat,
        side=snapshot.side, captured_at=snapshot.captured_at, offers=len(offers),
        complete=snapshot.complete, best_price=best, liquidity=liquidity,
    ).on_conflict_do_nothing(
        index_elements=["exchange", "asset", "fiat", "side", "captured_at"],
    ).returning(p2p_snapshots.c.id)
    return connection.scalar(statement)


def remember_payment_methods(connection: Connection, market: P2PMarket,
                             offers: Sequence[Offer]) -> None:
    """Record identifiers not seen before (canonical NULL until mapped); keep known rows."""
    names: dict[str, str | None] = {}
    for offer in offers:
        for method in offer.payment_methods:
            names[method.identifier] = names.get(method.identifier) or method.name
    if not names:
        return
    rows = [{"exchange": market.exchange, "identifier": identifier, "name": name,
             "fiat": market.fiat} for identifier, name in sorted(names.items())]
    statement = insert(payment_methods).values(rows)
    # Display names change language between identical requests: keep the first one seen.
    connection.execute(statement.on_conflict_do_update(
        index_elements=["exchange", "identifier"],
        set_={"name": statement.excluded.name},
        where=payment_methods.c.name.is_(None) & statement.excluded.name.isnot(None),
    ))
