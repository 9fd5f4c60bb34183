"""Run the fake exchange on loopback until interrupted: `python -m ingest.fake --help`.

It works out the live minute and the last 24 hours of every simulated symbol, prints one
JSON line with the settings that point p2pdash at it (BINANCE_REST_URL, BINANCE_WS_URL,
...), then serves until SIGINT or SIGTERM. `--rate` sends about that many frames/s over
all the symbols (90 % book tickers, 5 % klines, 5 % 24h tickers) instead of Binance's
per-stream cadence; GET /fake/stats on the REST URL counts what was sent.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from ingest.fake.server import FakeExchange
from ingest.fake.streams import Cadence


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    about = ("A local fake exchange: Binance spot and, when simulating, the P2P books of "
             "Binance, OKX and Bybit.")
    parser = argparse.ArgumentParser(prog="python -m ingest.fake", description=about)
    parser.add_argument("--mode", choices=("simulate", "replay"), default="simulate")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT",
                        help="comma-separated symbols of the simulated market")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0,
                        help="simulated seconds per real second")
    parser.add_argument("--book-ticker-hz", type=float, default=4.0,
                        help="book tickers per symbol per second")
    parser.add_argument("--kline-hz", type=float, default=0.5)
    parser.add_argument("--ticker-hz", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=None,
                        help="frames/s in all over the symbols (for benchmarks)")
    parser.add_argument("--unthrottled", action="store_true",
                        help="send as fast as possible, in the proportions of the rates "
                             "(for benchmarks)")
    parser.add_argument("--frames", nargs="*", default=[], help="capture files to replay")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the fake, print its settings, and serve until told to stop."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    symbols = args.symbols.split(",")
    cadence = (Cadence.total(args.rate, len(symbols)) if args.rate else
               Cadence(args.book_ticker_hz, args.kline_hz, args.ticker_hz, args.unthrottled))
    fake = FakeExchange(args.mode, symbols=symbols, seed=args.seed, speed=args.speed,
                        cadence=cadence, frames=args.frames, p2p=args.mode == "simulate")
    if fake.binance.market_frames is not None:
        fake.binance.market_frames.prepare(symbols, fake.clock.ms())
    fake.start()
    print(json.dumps(fake.environment()), flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
