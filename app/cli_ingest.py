"""CLI commands for ingestion: `p2pdash backfill klines ...` and `p2pdash ingest`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime

import click

from db.candles_api import CandleParamError, parse_time
from db.intervals import INTERVALS


@click.group("backfill")
def backfill_group() -> None:
    """Fill history from the exchanges' REST APIs."""


@backfill_group.command("klines")
@click.option("--symbol", required=True, help="Binance spot symbol, e.g. BTCUSDT.")
@click.option("--interval", default="1m", show_default=True, type=click.Choice(list(INTERVALS)))
@click.option("--start", required=True, help="ISO 8601 date or date-time (UTC), or epoch ms.")
@click.option("--end", default=None, help="Exclusive end, same forms; default: now.")
@click.pass_context
def backfill_klines_command(ctx: click.Context, symbol: str, interval: str, start: str,
                            end: str | None) -> None:
    """Store Binance's closed candles opening from START up to END (idempotent)."""
    from app.cli import migrated
    from db import rollups
    from ingest.binance_rest import BinanceError, BinanceRest, KlinesRequest, backfill_klines

    try:
        request = KlinesRequest(symbol.upper(), interval, parse_time("start", start),
                                parse_time("end", end) if end else datetime.now(UTC))
        request.validate()
    except (CandleParamError, ValueError) as error:
        raise click.BadParameter(str(error)) from None
    with migrated(ctx) as (settings, engine):
        rest = BinanceRest(settings.endpoints["BINANCE_REST_URL"])
        label = f"{request.symbol} {interval}"
        with click.progressbar(length=request.expected_candles(), label=label,
                               file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.update(done - bar.pos)

            try:
                report = backfill_klines(engine, rest, request, progress=progress)
            except BinanceError as error:
                raise click.ClickException(str(error)) from None
        # Late data: the hourly and daily rollups of the range are recomputed, as the
        # leader's queued backfills do.
        report["rollups"] = rollups.recompute(engine, request.symbol, request.start,
                                              request.end)
        click.echo(json.dumps(report))


@click.command("ingest")
@click.pass_context
def ingest_command(ctx: click.Context) -> None:
    """Run ingestion only (no web server) until interrupted; one leader per database ingests."""
    from app.cli import migrated
    from ingest.service import IngestService

    with migrated(ctx) as (settings, engine):
        done = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())
        service = IngestService(settings, engine).start()
        click.echo("p2pdash ingesting (Ctrl-C to stop)", err=True)
        done.wait()
        service.stop()
