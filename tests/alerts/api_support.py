"""Helpers of the alerting API and CLI tests: a loopback webhook receiver, a valid rule."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.config import Settings
from tests.conftest import make_settings

MARKETS = "binance:USDT/ARS,okx:USDT/ARS"
SYMBOLS = "BTCUSDT"


def alert_settings(tmp_path: Path, database_url: str) -> Settings:
    """Test settings with two polled ARS markets and one spot symbol."""
    return make_settings(tmp_path, DATABASE_URL=database_url, P2P_MARKETS=MARKETS,
                         SPOT_SYMBOLS=SYMBOLS)


def spread_rule(**changes: Any) -> dict[str, Any]:
    """A valid rule's JSON; a change to None leaves that field out."""
    rule = {"name": "ARS spread wide", "metric": "p2p.spread_pct",
            "market": "binance:USDT/ARS", "condition": ">", "threshold": "2.5",
            "for_seconds": 120, "labels": {"severity": "warning"}}
    rule.update(changes)
    return {key: value for key, value in rule.items() if value is not None}


@dataclass
class Hook:
    """What the loopback receiver got, and the status it answers with."""

    url: str = ""
    status: int = 200
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self) -> list[Any]:
        """The JSON of every POST received."""
        return [json.loads(body) for _path, _headers, body in self.posts]


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook.posts.append((self.path, dict(self.headers), body))
            self.send_response(hook.status)
            self.send_header("Content-Length", "8")
            self.end_headers()
            self.wfile.write(b"received")

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def loopback_hook() -> Iterator[Hook]:
    """A webhook receiver on a free port of 127.0.0.1, for as long as the block runs."""
    hook = Hook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
