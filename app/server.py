"""Serve the app with gunicorn in this process tree: one worker, many threads.

One worker keeps ingestion in one process by default; more processes (gunicorn -w N on
wsgi.py, or more hosts) are fine because the ingest leader is elected in the database.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from app.config import Settings


class _RootLogger(glogging.Logger):
    """Send gunicorn's own messages through our structured root handler."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True
        self.error_log.setLevel(logging.getLogger().level)


class _Gunicorn(BaseApplication):
    def __init__(self, factory: Callable[[], Flask], options: dict[str, object]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return settled(self.factory())


def settled(app: Flask) -> Flask:
    """The app, with everything built so far (Dash, Plotly, the layouts: hundreds of
    thousands of objects) frozen out of the cyclic garbage collector's walks. A full
    collection then visits only what requests leave behind, instead of pausing a callback
    for tens of milliseconds (seen as the views benchmark's cold p95)."""
    gc.collect()
    gc.freeze()
    return app


def serve(settings: Settings, factory: Callable[[], Flask]) -> None:
    """Run until SIGINT or SIGTERM; the app is built in the worker, after the fork."""
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": 120,
        "graceful_timeout": 10,
        "logger_class": _RootLogger,
        "proc_name": "p2pdash",
        # gunicorn 27 opens a control socket under ~/.gunicorn by default; we need none.
        "control_socket_disable": True,
    }
    _Gunicorn(factory, options).run()
