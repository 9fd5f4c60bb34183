"""`p2pdash export DATASET ... --format F --out FILE`: any dataset to a file, streamed, with a
progress bar (bytes written against an estimate of the size), audited like an export through
the API."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from db.export import DATASETS, ExportInvalid


@click.command("export")
@click.argument("dataset", type=click.Choice(sorted(DATASETS)))
@click.option("--format", "fmt", default="csv", show_default=True,
              type=click.Choice(["csv", "excel", "parquet", "binance"]))
@click.option("--start", help="ISO 8601 date or date-time (UTC), or epoch ms; default end - 24 h")
@click.option("--end", help="the same; default now")
@click.option("--symbol", help="candles, book_tickers, tickers_24h: e.g. BTCUSDT")
@click.option("--interval", help="candles: 1m .. 1w (default 1m)")
@click.option("--market", help="p2p_*: exchange:ASSET/FIAT")
@click.option("--bucket", help="p2p_history: 1m .. 1d (default 1h)")
@click.option("--at", help="p2p_depth: the snapshot at or before this time (default: latest)")
@click.option("--amount", help="p2p_offers: a fiat amount the advert must accept")
@click.option("--payment", help="p2p_offers: canonical payment codes, comma-separated")
@click.option("--merchant-only", is_flag=True, help="p2p_offers: merchants' adverts only")
@click.option("--min-completion", help="p2p_offers: 0 to 1")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="the file to write (default: the export's own name, here)")
@click.pass_context
def export_command(ctx: click.Context, dataset: str, fmt: str, out: Path | None,
                   merchant_only: bool, **filters: str | None) -> None:
    """Write DATASET to a file as it streams from the database."""
    from app.cli import migrated
    from app.exports import open_export
    from db.export_stream import estimate

    args = {key: value for key, value in filters.items() if value is not None}
    args.update(format=fmt, merchant_only="true" if merchant_only else "false")
    with migrated(ctx) as (_settings, engine):
        try:
            opened = open_export(engine, dataset, args, actor=f"cli:{getpass.getuser()}",
                                 role="admin")
        except ExportInvalid as invalid:
            raise click.BadParameter(invalid.message, param_hint=f"--{invalid.field}") from None
        target = out or Path(opened.filename)
        expected = estimate(engine, opened.request).bytes  # the bar's 100 %, roughly
        written = 0
        with target.open("wb") as handle, click.progressbar(
                length=max(expected, 1), label=f"{target.name}", file=sys.stderr,
                item_show_func=lambda _item: f"{written / 1e6:,.1f} MB") as bar:
            for block in opened.body:
                handle.write(block)
                written += len(block)
                bar.update(len(block))
    click.echo(f"{target}: {opened.tally.rows:,} rows, {written:,} bytes")
