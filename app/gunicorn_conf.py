"""gunicorn hooks for Prometheus's multiprocess mode: `gunicorn -c python:app.gunicorn_conf ...`.

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its metric values to files there and
/metrics adds them up (app/metrics.py). The master empties the directory before the first
worker starts, so a restart does not add the last run's counts again, and marks each worker
that exits dead, so its live gauges (leader, pending rows, open connections) stop counting;
its counters stay in the sums, which therefore never go back. Without the variable these
hooks do nothing. This module must not import app.metrics: the master defines no metrics.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def multiproc_dir() -> Path | None:
    """The directory of the per-process files, when multiprocess mode is on."""
    # Read where prometheus_client reads it: gunicorn's environment, handed to the workers.
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def clean(directory: Path) -> None:
    """Remove the per-process files a previous run left (and create the directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        if path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


def on_starting(server: Any) -> None:
    """Before the first worker: start from an empty metrics directory."""
    directory = multiproc_dir()
    if directory is not None:
        clean(directory)
        server.log.info("prometheus multiprocess directory %s emptied", directory)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (however it died): drop its live gauges."""
    directory = multiproc_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, str(directory))
