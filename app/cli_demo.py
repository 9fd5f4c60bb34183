"""`p2pdash demo`: the whole app against a simulated exchange on loopback, marked DEMO.

The simulated exchange runs in a child process (`python -m ingest.fake`), apart from the
app's threads. The demo keeps its own embedded database under
P2PDASH_DATA_DIR/demo: simulated prices never mix with real ones. A fresh one is seeded
with the day before it (app/demo_seed.py), so the charts have a past from the start.
"""

from __future__ import annotations

import json
import signal
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
# The simulated exchange's --seed: the seeded history is priced from the same spot market.
DEMO_SEED = 1


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
               "--symbols", ",".join(symbols), "--seed", str(DEMO_SEED)]
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


@contextmanager
def stoppable() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C (stopping the exchange and the database) while the
    demo prepares, until the server installs its own handler."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def prepare_demo(settings: Settings) -> None:
    """Migrate the demo's database, make sure it has an admin, and seed it when fresh."""
    from app.auth import ensure_first_admin
    from app.demo_seed import seed_demo
    from app.first_run import ensure_admin
    from db.engine import make_engine
    from db.migrate import upgrade

    engine = make_engine(settings.database_url or "")
    try:
        if settings.auto_migrate:
            upgrade(engine)
        # The example alert rules belong to the first admin: create it before seeding.
        ensure_first_admin(engine, settings)
        ensure_admin(engine, settings)
        report = seed_demo(engine, settings, spot_seed=DEMO_SEED)
    finally:
        engine.dispose()
    if report.markets:
        click.echo(f"  Demo: seeded the last {settings.demo_history_hours} h of "
                   f"{len(report.markets)} P2P markets and "
                   f"{len(report.rules)} example alert rules in {report.seconds:.1f} s.\n",
                   err=True)


def run_demo(settings: Settings) -> None:
    """Serve the app on a simulated exchange until interrupted."""
    from app.cli import database, serve_app

    with simulated_exchange(settings.spot_symbols) as endpoints, \
            database(demo_settings(settings, endpoints)) as ready:
        with stoppable():
            prepare_demo(ready)
        serve_app(ready)


@click.command("demo")
@click.pass_context
def demo_command(ctx: click.Context) -> None:
    """Serve the dashboard on a simulated exchange (no internet needed), marked DEMO."""
    run_demo(ctx.obj["settings"])
