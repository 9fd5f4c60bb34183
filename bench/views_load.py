"""HTTP load for the views benchmark: gunicorn + Redis on loopback, clients that sign in and
refresh a page every few seconds the way the browser does, bounded in count and time."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests

from bench.views_pages import PAGES, TICK, Call, callback_key
from db.embedded import free_port
from tests.dash_calls import callback_body

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
TIMEOUT = 30
SIGN_IN_ATTEMPTS = 3


def csrf_token(page: str) -> str:
    """The CSRF token of a login form."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("the login page carries no CSRF token")
    return match[1]


@contextmanager
def redis_server() -> Iterator[str]:
    """A private Redis on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: run scripts/bootstrap.sh")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="p2pdash-bench-redis-")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                                "--appendonly", "no", "--dir", workdir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://{LOOPBACK}:{port}/0"
    try:
        _wait(lambda: redis.Redis.from_url(url).ping(), "redis")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait(probe: Callable[[], Any], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if probe():
                return
        except (requests.RequestException, redis.ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {seconds:.0f} s")
        time.sleep(0.2)


@contextmanager
def gunicorn(env: dict[str, str], workers: int) -> Iterator[str]:
    """The app under gunicorn on a free loopback port; yields its base URL."""
    port = free_port()
    # As app/server.py serves (timeout 120 s), and connections kept open longer than a
    # refresh period, as a browser or a proxy keeps them: gunicorn's 2 s default closes
    # them between refreshes and a POST racing the close is reset.
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", "8",
               "-b", f"{LOOPBACK}:{port}", "--log-level", "warning", "--timeout", "120",
               "--keep-alive", "30", "wsgi:server"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://{LOOPBACK}:{port}"
    try:
        _wait(lambda: requests.get(f"{base}/login", timeout=2).ok, "gunicorn")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


class Client(threading.Thread):
    """One screen: signs in, then refreshes one page's callbacks every `period` seconds."""

    def __init__(self, base: str, username: str, password: str, *, page: str, index: int,
                 options: dict[str, Any]) -> None:
        super().__init__(name=f"client-{username}", daemon=True)
        self.base, self.username, self.password = base, username, password
        self.page, self.index, self.options = page, index, options
        self.latencies: list[float] = []
        self.errors = 0
        self.session = requests.Session()
        self.marks: dict[str, Any] = {}
        self.failure = ""

    def sign_in(self) -> dict[str, str]:
        """The real login form, then a page load for the CSRF cookie."""
        token = csrf_token(self.session.get(f"{self.base}/login", timeout=TIMEOUT).text)
        response = self.session.post(f"{self.base}/login", timeout=TIMEOUT, data={
            "csrf_token": token, "username": self.username, "password": self.password},
            allow_redirects=False)
        if response.status_code != 302:
            raise RuntimeError(f"{self.username} could not sign in: {response.status_code}")
        self.session.get(f"{self.base}/", timeout=TIMEOUT)
        return {"X-CSRFToken": self.session.cookies["_csrf_token"]}

    def run(self) -> None:
        for attempt in range(SIGN_IN_ATTEMPTS):
            try:
                headers = self.sign_in()
                break
            except (requests.RequestException, RuntimeError) as error:
                self.errors += 1
                self.failure = f"{type(error).__name__}: {error}"
                time.sleep(1 + attempt)
        else:
            return  # counted in errors; the summary says why
        period, stop_at = self.options["period"], self.options["stop_at"]
        time.sleep(self.index % 10 * period / 10)  # screens do not refresh in step
        tick = 0
        while time.monotonic() < stop_at:
            started = time.monotonic()
            for call in PAGES[self.page]:
                self.refresh(call, tick, headers)
            tick += 1
            time.sleep(max(0.0, period - (time.monotonic() - started)))

    def refresh(self, call: Call, tick: int, headers: dict[str, str]) -> None:
        """One callback POST, as the live tick sends it (with the marks it got back)."""
        callback_map = self.options["callback_map"]
        key = callback_key(callback_map, call.output)
        values = call.values(self.index, tick=tick, marks=self.marks.get(call.label))
        body = callback_body(callback_map, key, values, changed=TICK if tick else None)
        started = time.perf_counter()
        try:
            response = self.session.post(f"{self.base}/_dash-update-component", json=body,
                                         headers=headers, timeout=TIMEOUT)
            ok = response.status_code in (200, 204)
        except requests.RequestException:
            ok, response = False, None
        self.latencies.append((time.perf_counter() - started) * 1000)
        if not ok:
            self.errors += 1
        elif call.marks and response is not None and response.status_code == 200:
            self.marks[call.label] = response.json()["response"].get(call.marks, {}).get("data")


def run(env: dict[str, str], callback_map: dict[str, Any], *, clients: int, seconds: int,
        workers: int, period: float, password: str,
        say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Serve with gunicorn and Redis, run the clients, return latency rows per page."""
    with redis_server() as redis_url, gunicorn({**env, "REDIS_URL": redis_url}, workers) as base:
        pages = list(PAGES)
        options = {"period": period, "stop_at": time.monotonic() + seconds + period,
                   "callback_map": callback_map}
        screens = [Client(base, f"bench-{n + 1:02d}", password, page=pages[n % len(pages)],
                          index=n, options=options) for n in range(clients)]
        say(f"{clients} clients signing in and refreshing for {seconds} s ...")
        for screen in screens:
            screen.start()
        for screen in screens:
            screen.join(timeout=seconds + 120)
    return _summary(screens)


def _summary(screens: list[Client]) -> list[dict[str, Any]]:
    by_page: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for screen in screens:
        by_page[screen.page] += screen.latencies
        errors[screen.page] += screen.errors
    for failure in sorted({screen.failure for screen in screens if screen.failure}):
        print(f"sign-in failed: {failure}")
    by_page["all"] = [latency for page in PAGES for latency in by_page[page]]
    errors["all"] = sum(errors.values())
    return [{"page": page, "requests": len(samples), "errors": errors[page],
             "p50": statistics.median(samples) if samples else 0.0,
             "p95": _quantile(samples, .95), "p99": _quantile(samples, .99)}
            for page, samples in by_page.items() if samples or errors[page]]


def _quantile(samples: list[float], share: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
