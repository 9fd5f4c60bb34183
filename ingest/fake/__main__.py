"""Run the fake exchange on loopback until interrupted: `python -m ingest.fake --help`.

It prints one JSON line with the settings that point p2pdash at it (BINANCE_REST_URL,
BINANCE_WS_URL, ...), then serves until SIGINT or SIGTERM.
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
    parser.add_argument("--unthrottled", action="store_true",
                        help="send as fast as possible (for benchmarks)")
    parser.add_argument("--frames", nargs="*", default=[], help="capture files to replay")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the fake, print its settings, and serve until told to stop."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    cadence = Cadence(args.book_ticker_hz, args.kline_hz, args.ticker_hz, args.unthrottled)
    fake = FakeExchange(args.mode, symbols=args.symbols.split(","), seed=args.seed,
                        speed=args.speed, cadence=cadence, frames=args.frames,
                        p2p=args.mode == "simulate").start()
    print(json.dumps(fake.environment()), flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
