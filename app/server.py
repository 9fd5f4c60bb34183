"""Serve the app with gunicorn in this process tree: one worker, many threads.

One worker keeps ingestion in one process by default; more processes (gunicorn -w N on
wsgi.py, or more hosts) are fine because the ingest leader is elected in the database.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
from collections.abc import Callable
from typing import NoReturn

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
    master = os.getpid()
    try:
        _Gunicorn(factory, options).run()
    except SystemExit as leaving:
        if os.getpid() != master:
            _end_worker(leaving.code)
        raise


def _end_worker(code: object) -> NoReturn:
    """End a worker process where it leaves gunicorn. It was forked inside its master's call
    stack, so unwinding further would run the master's clean-ups in the worker (stop the
    embedded database it started, the demo's exchange) before the worker's own exit hooks
    had flushed ingestion. Those hooks run here, then the process ends."""
    atexit._run_exitfuncs()  # the worker's own: the ingest service flushes its writer
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
