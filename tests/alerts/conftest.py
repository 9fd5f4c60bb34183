"""Fixtures of the alerting tests: a webhook receiver on loopback, settings with markets,
P2P books stored through the real snapshot store, a clock the test moves."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine

from app.alerts import service
from app.config import P2PMarket, Settings
from ingest.p2p_normalise import Offer, PaymentMethod
from ingest.p2p_store import Snapshot, store_snapshot
from ingest.runs import Run
from tests.conftest import add_user, make_settings

MARKETS = ("binance:USDT/ARS", "okx:USDT/ARS", "binance:BTC/ARS")
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on loopback: records every POST, answers from a script."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until `count` requests arrived; return them all."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        """(status, alerts[0]) of every Alertmanager body received."""
        return [(r.json["status"], r.json["alerts"][0]) for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            if 200 <= status < 300:
                with receiver.arrived:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    receiver.arrived.notify_all()

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free loopback port."""
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return make_settings(tmp_path, DATABASE_URL=database_url, P2P_MARKETS=",".join(MARKETS),
                         SPOT_SYMBOLS=",".join(SYMBOLS), ALERTS_GROUP_WAIT_SECONDS="0")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def offer(number: int, price: str, *, available: str = "1000", min_fiat: str = "1000",
          max_fiat: str = "500000", methods: Sequence[str] = ("BANK",),
          merchant: bool = False, completion: str = "0.99") -> Offer:
    """An advert in p2pdash's normalised form."""
    return Offer(offer_id=f"ad-{number}", price=Decimal(price), available=Decimal(available),
                 min_fiat=Decimal(min_fiat), max_fiat=Decimal(max_fiat),
                 advertiser_id=f"u{number}", advertiser_name=f"trader {number}",
                 is_merchant=merchant, month_orders=100, month_finish_rate=Decimal(completion),
                 payment_methods=tuple(PaymentMethod(code) for code in methods), rank=number)


def store_book(engine: Engine, market: str, at: datetime, asks: Sequence[Offer] = (),
               bids: Sequence[Offer] = ()) -> int:
    """Store both sides of a market at `at` through the real snapshot store; the run id."""
    exchange, _, pair = market.partition(":")
    asset, _, fiat = pair.partition("/")
    book = P2PMarket(exchange, asset, fiat)
    run = Run(engine, f"{exchange}_p2p", "p2p_poll", market, {})
    for side, offers in (("ask", asks), ("bid", bids)):
        store_snapshot(engine, run, Snapshot(book, side, at, list(offers)))
    run.finish()
    return run.id


def simple_book(engine: Engine, market: str, at: datetime, ask: str, bid: str) -> int:
    """A book of one advert a side at these prices."""
    return store_book(engine, market, at, [offer(1, ask)], [offer(2, bid)])


def actor_for(app, role: str = "trader", username: str | None = None) -> service.Actor:
    """A user of `role` (created) as the alerting commands' actor."""
    user = add_user(app, role, username)
    return service.Actor(user.id, user.username, role)
