"""The P2P markets every layer speaks of: config reads them, ingestion polls them, db/
queries them, pages show them. Here, beside db/intervals.py and db/ops.py, so that db/
needs nothing from app/ to name one."""

from __future__ import annotations

from dataclasses import dataclass

EXCHANGES = ("binance", "okx", "bybit")


@dataclass(frozen=True)
class P2PMarket:
    """One P2P order book family: an exchange, a crypto asset and a fiat currency."""

    exchange: str
    asset: str
    fiat: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.asset}/{self.fiat}"
