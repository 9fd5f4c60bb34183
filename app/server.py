"""Serve the app with waitress in this process: one event loop reads, many threads answer.

Waitress reads each request, headers and body, in its event loop before any worker thread
is given to it, so slow or stalled clients cost a socket, not a thread: eight clients
trickling their headers (gunicorn's gthread worker handed each one a thread and stopped
answering at all, /healthz included) now wait on their own. On top of waitress's idle
timeout, a request must arrive in full within READ_SECONDS, or its connection is closed.
Responses stream with back-pressure: a slow reader of an export blocks its own thread
once OUTBUF_HIGH bytes wait for it, so memory stays flat (bench/export.py: a 5M-row CSV
export grew the process by 92 MB with waitress's 8 MB default, a few MB with 2 MB).

One process keeps ingestion in one place by default; more processes or hosts are fine
because the ingest leader is elected in the database.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import resource
import signal
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from app.config import Settings

log = logging.getLogger(__name__)

READ_SECONDS = 30  # a request's headers and body must arrive within this
IDLE_SECONDS = 60  # a kept-alive connection with nothing to say is closed after this
CHECK_SECONDS = 2  # how often connections are checked against both
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024  # the largest body read at all; routes set lower caps
OUTBUF_MEMORY = 1024 * 1024  # what waits for a slow reader beyond this goes to a file
OUTBUF_HIGH = 2 * 1024 * 1024  # a response's thread waits while this much is unsent
SEND_BYTES = 256 * 1024  # per send(): waitress's 18,000 cost a fifth of an export's rate
# Open connections waitress serves at once (beyond it, new ones wait in the listen backlog).
# At waitress's 100, or our earlier 1,000, a thousand slow clients filled every place and a
# new visitor waited 5 s or failed (bench/slowloris.py); each idle connection costs a file
# descriptor and a few KB, so the limit is what the descriptors allow, up to CONNECTIONS.
CONNECTIONS = 4000
FD_RESERVE = 256  # descriptors kept for the database pool, streams, exports, logs
M_ARENA_MAX = -8  # glibc's mallopt parameter


class _Channel(HTTPChannel):
    """A connection that remembers when its current request began to arrive."""

    reading_since = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.reading_since = time.time()
        return super().received(data)


class Server(TcpWSGIServer):
    """Waitress, closing connections whose request is not in after READ_SECONDS."""

    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = now - READ_SECONDS
        for channel in list(self.active_channels.values()):
            if (channel.request is not None and not channel.requests
                    and channel.reading_since < cutoff):
                log.info("closing a connection whose request did not arrive in %d s",
                         READ_SECONDS, extra={"client": str(channel.addr[0])[:64]})
                channel.will_close = True


def settled(app: Flask) -> Flask:
    """The app, with everything built so far (Dash, Plotly, the layouts: hundreds of
    thousands of objects) frozen out of the cyclic garbage collector's walks. A full
    collection then visits only what requests leave behind, instead of pausing a callback
    for tens of milliseconds (seen as the views benchmark's cold p95)."""
    gc.collect()
    gc.freeze()
    return app


def connection_limit() -> int:
    """How many connections to serve: raise the soft descriptor limit towards the hard one
    (many systems start processes at 1,024) and keep FD_RESERVE of it for everything else."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    limit = CONNECTIONS if soft == resource.RLIM_INFINITY else \
        max(64, min(CONNECTIONS, soft - FD_RESERVE))
    if limit < CONNECTIONS:
        log.warning("serving at most %d connections: the open-file limit is %d (raise "
                    "LimitNOFILE or ulimit -n to %d for %d)", limit, soft, wanted, CONNECTIONS)
    return limit


def make_server(settings: Settings, app: Any, *, port: int | None = None) -> Server:
    """A bound, not yet running server for `app` on P2PDASH_HOST:P2PDASH_PORT."""
    return Server(app, host=settings.host, port=settings.port if port is None else port,
                  threads=settings.threads, ident="p2pdash", channel_timeout=IDLE_SECONDS,
                  cleanup_interval=CHECK_SECONDS, connection_limit=connection_limit(),
                  max_request_header_size=MAX_HEADER_BYTES,
                  max_request_body_size=MAX_BODY_BYTES, outbuf_overflow=OUTBUF_MEMORY,
                  outbuf_high_watermark=OUTBUF_HIGH, send_bytes=SEND_BYTES,
                  expose_tracebacks=False,
                  asyncore_use_poll=True)


def few_malloc_arenas(count: int = 2) -> None:
    """Let glibc's malloc keep `count` arenas instead of one per thread: with 8 threads
    taking turns at large exports, each thread's arena held its own peak, and the process
    grew by their sum (bench/export.py). Only before the threads start; a no-op elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, count)
    except (OSError, AttributeError):
        pass


def serve(settings: Settings, factory: Callable[[], Flask]) -> None:
    """Build the app and serve it until SIGINT or SIGTERM."""
    few_malloc_arenas()
    app = settled(factory())
    server = make_server(settings, app)

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping on signal %d", signum)
        raise SystemExit(0)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM,
                                                                     signal.SIGINT)}
    log.info("serving", extra={"bind": f"{settings.host}:{server.effective_port}",
                               "threads": settings.threads})
    try:
        server.run()  # returns when a signal's SystemExit stops the loop
    finally:
        server.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
        ingest = app.extensions.get("p2pdash_ingest")
        if ingest is not None:  # flush the writer now, while the database still runs
            ingest.stop()
