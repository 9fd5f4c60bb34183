"""`p2pdash demo`: the whole app against a simulated exchange on loopback, marked DEMO.

The simulated exchange runs in a child process (`python -m ingest.fake`), so gunicorn's
fork never copies its threads. The demo keeps its own embedded database under
P2PDASH_DATA_DIR/demo: simulated prices never mix with real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import click
import requests

from app.config import P2PMarket, Settings

DEMO_MARKETS = (P2PMarket("binance", "USDT", "ARS"), P2PMarket("okx", "USDT", "ARS"),
                P2PMarket("bybit", "USDT", "NGN"), P2PMarket("binance", "BTC", "ARS"))


def exchange_reachable(settings: Settings, timeout: float = 3.0) -> bool:
    """Whether the configured Binance REST API answers a ping."""
    try:
        url = f"{settings.endpoints['BINANCE_REST_URL']}/api/v3/ping"
        return requests.get(url, timeout=timeout).ok
    except requests.RequestException:
        return False


@contextmanager
def simulated_exchange(symbols: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Start the simulated exchange in a child process; yield the settings pointing at it."""
    command = [sys.executable, "-m", "ingest.fake", "--mode", "simulate",
               "--symbols", ",".join(symbols)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            raise click.ClickException("the simulated exchange did not start "
                                       f"(exit code {process.wait(timeout=10)})")
        yield json.loads(line)
    finally:
        process.terminate()
        process.wait(timeout=10)


def demo_settings(settings: Settings, endpoints: dict[str, str]) -> Settings:
    """The settings of a demo: simulated endpoints, demo markets, its own database."""
    return replace(settings, demo=True, ingest_enabled=True, database_url=None,
                   data_dir=settings.data_dir / "demo",
                   endpoints={**settings.endpoints, **endpoints},
                   p2p_markets=settings.p2p_markets or DEMO_MARKETS)


def run_demo(settings: Settings) -> None:
    """Serve the app on a simulated exchange until interrupted."""
    from app.cli import database, serve_app

    with simulated_exchange(settings.spot_symbols) as endpoints, \
            database(demo_settings(settings, endpoints)) as ready:
        serve_app(ready)


@click.command("demo")
@click.pass_context
def demo_command(ctx: click.Context) -> None:
    """Serve the dashboard on a simulated exchange (no internet needed), marked DEMO."""
    run_demo(ctx.obj["settings"])
