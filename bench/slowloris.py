"""Slowloris benchmark: a signed-in client's latency while many slow connections are held.

    .venv/bin/python bench/slowloris.py [--levels 0,50,200,1000] [--seconds 30]
                                        [--variants headers,body] [--data-dir DIR]
                                        [--connection-limit N] [--server-nofile N]

Run on demand (not in CI). One run, one table:
1. The app as `p2pdash run` serves it (app/server.py: waitress, one process, 8 threads) on
   loopback, against a private cluster under --data-dir with a small generated dataset
   (bench/views_data.py), no ingestion; the server's limits that matter are printed first,
   read from app/server.py's own make_server.
2. Slow connections, from a process of their own (asyncio, so that their work does not
   time the normal client): each opens a TCP connection and never finishes its request.
   "headers": the request line and a few headers at once, then 4 more header bytes every
   3 s (classic slowloris). "body": a complete POST /login header with a Content-Length,
   then 4 body bytes every 3 s. A connection the server closes is opened again at once, as
   an attacker would, so the level holds for the whole phase.
3. The normal client, while they are held: one session signed in through the real /login
   form (CSRF token and all) that requests GET /healthz and the Overview page's callback (P2P
   markets, spot tickers, feeds: reads the database once per cache bucket) every second over
   its kept-alive connection, as a browser tab does; and beside it a GET /healthz on a new
   connection started every second, as a health checker or a newly opened tab does (a
   connection the server must accept while the slow ones are held; one that hangs does not
   delay the next). Errors: non-2xx, a request that takes over 5 s (the client timeout) and
   connection errors.
4. Each level is one phase of --seconds after the slow connections are all open; level 0 is
   the baseline, measured before each variant's series (the machine is shared and noisy, so
   compare each row with the baseline beside it). Also per phase: how many slow connections
   the server held (accepted sockets, /proc/<pid>/fd), the longest accept queue of the
   listening socket (/proc/net/tcp), and how many the server cut.

Aim, printed beside the figures: no errors and p99 under 500 ms at 1,000 slow connections.

Experiments, app/server.py left as it is: --connection-limit N serves with waitress's
connection_limit N instead of app/server.py's CONNECTIONS; --server-nofile N gives the server
process that RLIMIT_NOFILE soft limit (1024 on many hosts) instead of this shell's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from app import create_app
from app import server as app_server
from app.auth import commands, users
from app.config import load_settings
from bench import views_data, views_pages
from bench.export import SMALL
from bench.views import GENERATORS, PASSWORD, bench_settings, cluster, cluster_url, say
from bench.views import percentile as quantile
from bench.views import print_table as print_rows
from bench.views_load import csrf_token
from bench.views_pages import PAGES, TICK, callback_key
from db.embedded import EmbeddedPostgres, free_port
from db.engine import make_engine
from tests.dash_calls import callback_body

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
USER = "bench-slowloris"
TIMEOUT = 5.0  # the normal client's timeout, connect and answer
PERIOD = 1.0  # the normal client asks every second
AIM_MS = 500
AIM_LEVEL = 1000
VARIANTS = ("headers", "body")
BODY_BYTES = 10_000  # the body variant's Content-Length (never all sent)
RAMP_PER_SECOND = 500  # slow connections opened per second at the start of a phase
OPEN_WAIT = 60  # seconds to wait for a level's connections to be open
SETTLE = 2.0  # seconds between the last slow connection opening and the measurement
SAMPLE = 0.5  # seconds between samples of the server's sockets
# The slow process's counters, in one shared array.
OPEN, CONNECTS, CUT, ANSWERED, CONNECT_FAILED = range(5)
NORMAL_CALL = PAGES["overview"][0]
TCP_LISTEN = "0A"


# ---- the slow connections (a process of their own) -----------------------------------------

@dataclass(frozen=True)
class Slow:
    """What the slow connections do."""

    port: int
    count: int
    variant: str
    every: float = 3.0  # seconds between trickles
    chunk: int = 4  # bytes per trickle


def head(slow: Slow) -> bytes:
    """What a slow connection sends at once."""
    host = f"Host: {LOOPBACK}:{slow.port}\r\nUser-Agent: Mozilla/5.0 (slowloris bench)\r\n"
    if slow.variant == "headers":
        return f"GET /login HTTP/1.1\r\n{host}Accept: text/html\r\n".encode()
    return (f"POST /login HTTP/1.1\r\n{host}Content-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {BODY_BYTES}\r\n\r\nusername=").encode()


def trickle(slow: Slow) -> Iterator[bytes]:
    """The endless rest of a request, `chunk` bytes at a time."""
    if slow.variant == "headers":
        text = (f"X-Pad-{n}: {n}\r\n".encode() for n in itertools.count())
    else:
        text = (b"a" * 64 for _ in itertools.count())
    pending = b""
    for part in text:
        pending += part
        while len(pending) >= slow.chunk:
            yield pending[:slow.chunk]
            pending = pending[slow.chunk:]


def _count(counters: Any, index: int, by: int = 1) -> None:
    with counters.get_lock():
        counters[index] += by


async def _hold_one(slow: Slow, counters: Any, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
    """Trickle into one open connection until the server closes or answers it."""
    writer.write(head(slow))
    closed = asyncio.ensure_future(reader.read(65536))
    chunks = trickle(slow)
    wait = random.uniform(0, slow.every)  # the connections do not trickle in step
    try:
        while True:
            done, _ = await asyncio.wait({closed}, timeout=wait)
            if done:
                answer = b"" if closed.exception() else closed.result()
                _count(counters, ANSWERED if answer else CUT)
                return
            writer.write(next(chunks))
            await writer.drain()
            wait = slow.every
    except OSError:  # reset or broken pipe: the server closed it
        _count(counters, CUT)
    finally:
        closed.cancel()


async def _hold(slow: Slow, counters: Any, index: int) -> None:
    """One slow connection, opened again whenever the server closes it."""
    await asyncio.sleep(index / RAMP_PER_SECOND)
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, slow.port), TIMEOUT)
        except (OSError, TimeoutError):
            _count(counters, CONNECT_FAILED)
            await asyncio.sleep(1)
            continue
        _count(counters, CONNECTS)
        _count(counters, OPEN)
        try:
            await _hold_one(slow, counters, reader, writer)
        finally:
            _count(counters, OPEN, -1)
            writer.close()


async def _attack(slow: Slow, counters: Any, stop: Any) -> None:
    tasks = [asyncio.ensure_future(_hold(slow, counters, n)) for n in range(slow.count)]
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def raise_open_files(needed: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one if `needed` descriptors do not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"{needed} descriptors needed, RLIMIT_NOFILE's hard limit is {hard}")


def attack(slow: Slow, counters: Any, stop: Any) -> None:
    """The slow process: hold `slow.count` connections until `stop` is set."""
    raise_open_files(slow.count + 64)
    asyncio.run(_attack(slow, counters, stop))


# ---- the server's side --------------------------------------------------------------------

def socket_count(pid: int) -> int:
    """How many sockets a process holds open (its listener, the database, the clients)."""
    count = 0
    for entry in os.scandir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(entry.path).startswith("socket:")
    return count


def accept_queue(port: int) -> int:
    """Connections the kernel completed that the server has not accepted yet: the listening
    socket's receive queue in /proc/net/tcp."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == TCP_LISTEN and int(local.split(":")[1], 16) == port:
                return int(queues.split(":")[1], 16)
    return 0


def open_files_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return "/".join(line.split()[3:5])
    return "?"


def server_config(env: dict[str, str], serving: Serving) -> list[dict[str, Any]]:
    """The limits app/server.py gives waitress, read from a server it builds (bound on a free
    loopback port, never run), and its own read timeout."""
    settings = load_settings(environ={**env, "P2PDASH_HOST": LOOPBACK}, env_file=None)
    saved = app_server.CONNECTIONS
    if serving.connection_limit:
        app_server.CONNECTIONS = serving.connection_limit
    try:
        server = app_server.make_server(settings, lambda environ, start: [], port=0)
    finally:
        app_server.CONNECTIONS = saved
    try:
        adj, idle_map = server.adj, len(server._map)
    finally:
        server.close()
    read = getattr(app_server, "READ_SECONDS", None)
    return [
        {"setting": "connection_limit", "value": adj.connection_limit,
         "meaning": ("OVERRIDDEN by --connection-limit; " if serving.connection_limit
                     else "") + f"accepts stop at {adj.connection_limit - idle_map} client "
                    f"connections (the limit counts its listener and trigger: {idle_map} "
                    "sockets)"},
        {"setting": "backlog", "value": adj.backlog,
         "meaning": "connections the kernel queues beyond those, unaccepted"},
        {"setting": "channel_timeout", "value": adj.channel_timeout,
         "meaning": "seconds a connection may send nothing before it is closed"},
        {"setting": "READ_SECONDS", "value": read if read is not None else "-",
         "meaning": "seconds a request's headers and body may take before it is closed"},
        {"setting": "cleanup_interval", "value": adj.cleanup_interval,
         "meaning": "seconds between checks of both timeouts"},
        {"setting": "threads", "value": adj.threads, "meaning": "worker threads"},
        {"setting": "max_request_header_size", "value": adj.max_request_header_size,
         "meaning": "bytes"},
        {"setting": "max_request_body_size", "value": adj.max_request_body_size,
         "meaning": "bytes"},
    ]


# Serves the app as `python -m app run` does, with app/server.py's CONNECTIONS replaced by
# argv[1] (only with --connection-limit: to measure another limit without editing the file).
WITH_LIMIT = ("import runpy, sys; import app.server as s; assert hasattr(s, 'CONNECTIONS'); "
              "s.CONNECTIONS = int(sys.argv.pop(1)); runpy.run_module('app', "
              "run_name='__main__', alter_sys=True)")


@dataclass(frozen=True)
class Serving:
    """How the benchmarked server is started: app/server.py as it is unless overridden."""

    connection_limit: int | None = None  # replaces app/server.py's CONNECTIONS
    nofile: int | None = None  # the server process's RLIMIT_NOFILE soft limit


@contextmanager
def served(env: dict[str, str], serving: Serving) -> Iterator[tuple[str, int]]:
    """The app as `p2pdash run` serves it (bench/export.py's way: app/server.py, waitress,
    one process, 8 threads) on a free loopback port; yields its base URL and pid."""
    port = free_port()
    command = ([sys.executable, "-c", WITH_LIMIT, str(serving.connection_limit), "run"]
               if serving.connection_limit else [sys.executable, "-m", "app", "run"])
    process = subprocess.Popen(command, cwd=ROOT, env={
        **os.environ, **env, "P2PDASH_HOST": LOOPBACK, "P2PDASH_PORT": str(port),
        "P2PDASH_THREADS": "8", "P2PDASH_LOG_LEVEL": "WARNING"})
    if serving.nofile:
        hard = resource.prlimit(process.pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (serving.nofile, hard))
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/login", timeout=2).ok:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---- the normal client --------------------------------------------------------------------

@dataclass
class Sample:
    kind: str
    ms: float
    error: str = ""


@dataclass
class Normal:
    """The signed-in session and what it asks for."""

    base: str
    session: requests.Session
    headers: dict[str, str]
    callback_map: dict[str, Any]
    tick: int = 0

    def callback(self) -> requests.Response:
        key = callback_key(self.callback_map, NORMAL_CALL.output)
        body = callback_body(self.callback_map, key, NORMAL_CALL.values(0, tick=self.tick),
                             changed=TICK if self.tick else None)
        self.tick += 1
        return self.session.post(f"{self.base}/_dash-update-component", json=body,
                                 headers=self.headers, timeout=TIMEOUT)


def sign_in(base: str, callback_map: dict[str, Any]) -> Normal:
    """The real login form, then a page load for the CSRF cookie; checks the callback."""
    session = requests.Session()
    token = csrf_token(session.get(f"{base}/login", timeout=30).text)
    response = session.post(f"{base}/login", timeout=30, allow_redirects=False, data={
        "csrf_token": token, "username": USER, "password": PASSWORD})
    if response.status_code != 302:
        raise RuntimeError(f"{USER} could not sign in: {response.status_code}")
    session.get(f"{base}/", timeout=30)
    normal = Normal(base, session, {"X-CSRFToken": session.cookies["_csrf_token"]},
                    callback_map)
    answer = normal.callback()
    if answer.status_code != 200:
        raise RuntimeError(f"the overview callback answered {answer.status_code}: "
                           f"{answer.text[:300]}")
    return normal


def timed(kind: str, call: Callable[[], requests.Response]) -> Sample:
    started = time.perf_counter()
    try:
        response = call()
        error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    except requests.Timeout:
        error = "timeout"
    except requests.RequestException as failure:
        error = type(failure).__name__
    ms = (time.perf_counter() - started) * 1000
    if not error and ms > TIMEOUT * 1000:
        error = "timeout"
    return Sample(kind, ms, error)


def every_second(stop_at: float, samples: list[Sample],
                 calls: list[tuple[str, Callable[[], requests.Response]]]) -> None:
    """Make `calls` in turn every PERIOD until `stop_at` (the next round at once if late)."""
    while (started := time.monotonic()) < stop_at:
        for kind, call in calls:
            samples.append(timed(kind, call))
        time.sleep(max(0.0, started + PERIOD - time.monotonic()))


def probe_every_second(stop_at: float, samples: list[Sample], kind: str,
                       call: Callable[[], requests.Response]) -> None:
    """Start `call` every PERIOD until `stop_at`, each in a thread of its own (one that
    hangs does not delay the next, as a health checker's probes do not); wait for all."""
    probes = []
    while (started := time.monotonic()) < stop_at:
        probe = threading.Thread(target=lambda: samples.append(timed(kind, call)), daemon=True)
        probe.start()
        probes.append(probe)
        time.sleep(max(0.0, started + PERIOD - time.monotonic()))
    for probe in probes:
        probe.join()


def normal_threads(normal: Normal, seconds: float, samples: list[Sample]
                   ) -> list[threading.Thread]:
    """The kept-alive session's loop and the new-connection probes', started."""
    stop_at = time.monotonic() + seconds
    url = f"{normal.base}/healthz"
    kept = [("healthz", lambda: normal.session.get(url, timeout=TIMEOUT)),
            ("callback", normal.callback)]
    threads = [
        threading.Thread(target=every_second, args=(stop_at, samples, kept), daemon=True),
        threading.Thread(target=probe_every_second, daemon=True, args=(
            stop_at, samples, "healthz, new connection",
            lambda: requests.get(url, timeout=TIMEOUT, headers={"Connection": "close"})))]
    for thread in threads:
        thread.start()
    return threads


# ---- a phase ------------------------------------------------------------------------------

@dataclass
class Phase:
    level: int
    variant: str
    samples: list[Sample] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    queued: int = 0
    cut: int = 0
    answered: int = 0
    connect_failed: int = 0
    open_seconds: float = 0.0


@dataclass
class Target:
    normal: Normal
    pid: int
    port: int


def wait_open(counters: Any, count: int, process: multiprocessing.process.BaseProcess
              ) -> float:
    started = time.monotonic()
    while counters[OPEN] < count:
        if not process.is_alive():
            raise RuntimeError("the slow connections' process stopped")
        if time.monotonic() - started > OPEN_WAIT:
            say(f"only {counters[OPEN]} of {count} slow connections open after {OPEN_WAIT} s")
            break
        time.sleep(0.1)
    return time.monotonic() - started


def measure(target: Target, phase: Phase, seconds: float, idle: int, counters: Any) -> None:
    """The normal client for `seconds`, sampling the server's sockets meanwhile."""
    before = list(counters)
    threads = normal_threads(target.normal, seconds, phase.samples)
    while any(thread.is_alive() for thread in threads):
        phase.held.append(max(0, socket_count(target.pid) - idle))
        phase.queued = max(phase.queued, accept_queue(target.port))
        time.sleep(SAMPLE)
    for thread in threads:
        thread.join()
    phase.cut = counters[CUT] - before[CUT]
    phase.answered = counters[ANSWERED] - before[ANSWERED]
    phase.connect_failed = counters[CONNECT_FAILED] - before[CONNECT_FAILED]


def drained(target: Target, idle: int) -> None:
    """Wait (up to 30 s) until the server holds no more sockets than before the phase."""
    deadline = time.monotonic() + 30
    while socket_count(target.pid) > idle + 2 and time.monotonic() < deadline:
        time.sleep(0.2)


def run_phase(target: Target, level: int, variant: str, seconds: float) -> Phase:
    phase = Phase(level, variant if level else "-")
    idle = socket_count(target.pid)
    context = multiprocessing.get_context("spawn")
    counters, stop = context.Array("q", 5), context.Event()
    process = context.Process(target=attack, args=(Slow(target.port, level, variant),
                                                    counters, stop), daemon=True)
    if level:
        process.start()
    try:
        if level:
            phase.open_seconds = wait_open(counters, level, process)
            time.sleep(SETTLE)
        measure(target, phase, seconds, idle, counters)
    finally:
        stop.set()
        if level:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    drained(target, idle)
    return phase


# ---- the report ---------------------------------------------------------------------------

def figures(samples: list[Sample]) -> dict[str, Any]:
    times = [sample.ms for sample in samples]
    if not times:
        return {"requests": 0, "p50 ms": "-", "p99 ms": "-", "max ms": "-", "errors": 0}
    return {"requests": len(times), "p50 ms": statistics.median(times),
            "p99 ms": quantile(times, 0.99), "max ms": max(times),
            "errors": sum(bool(sample.error) for sample in samples)}


def kinds(phase: Phase, new: bool) -> list[Sample]:
    return [sample for sample in phase.samples if sample.kind.endswith("connection") == new]


def main_row(phase: Phase) -> dict[str, Any]:
    fresh = figures(kinds(phase, True))
    held = sorted(phase.held)
    return {"slow connections": phase.level, "variant": phase.variant,
            **figures(kinds(phase, False)),
            "new-conn p99 ms": fresh["p99 ms"], "new-conn max ms": fresh["max ms"],
            "new-conn errors": f"{fresh['errors']}/{fresh['requests']}",
            "held (min-max)": f"{held[0]}-{held[-1]}" if held else "-",
            "queued max": phase.queued, "cut": phase.cut}


def detail_rows(phase: Phase) -> list[dict[str, Any]]:
    rows = []
    for kind in ("healthz", "callback", "healthz, new connection"):
        samples = [sample for sample in phase.samples if sample.kind == kind]
        errors: dict[str, int] = {}
        for sample in samples:
            if sample.error:
                errors[sample.error] = errors.get(sample.error, 0) + 1
        rows.append({"slow connections": phase.level, "variant": phase.variant,
                     "request": kind, **figures(samples),
                     "what failed": ", ".join(f"{n} {e}" for e, n in errors.items()) or "-"})
    return rows


def verdicts(phases: list[Phase]) -> list[str]:
    lines = []
    for phase in phases:
        if phase.level < AIM_LEVEL:
            continue
        for label, new in (("signed-in session", False), ("new connections", True)):
            got = figures(kinds(phase, new))
            ok = got["errors"] == 0 and got["requests"] and got["p99 ms"] < AIM_MS
            lines.append(f"{phase.level} slow ({phase.variant}), {label}: "
                         f"{'ok' if ok else 'MISSED'} (p99 {_ms(got['p99 ms'])}, "
                         f"{got['errors']} errors of {got['requests']}; aim: no errors, "
                         f"p99 < {AIM_MS} ms)")
    return lines


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, float) else str(value)


def report(phases: list[Phase], config: list[dict[str, Any]], server_limit: str) -> None:
    print_rows(f"server configuration (app/server.py; the server process's open files "
               f"limit, soft/hard: {server_limit})", config, ["setting", "value", "meaning"])
    print_rows("the signed-in session (GET /healthz and the Overview callback every second, "
               "kept-alive) and a GET /healthz on a new connection every second; held = slow "
               "connections the server had accepted, queued = longest accept queue, cut = "
               "slow connections the server closed during the phase", [
                   main_row(phase) for phase in phases],
               ["slow connections", "variant", "requests", "p50 ms", "p99 ms", "max ms",
                "errors", "new-conn p99 ms", "new-conn max ms", "new-conn errors",
                "held (min-max)", "queued max", "cut"])
    print_rows("by request", [row for phase in phases for row in detail_rows(phase)],
               ["slow connections", "variant", "request", "requests", "p50 ms", "p99 ms",
                "max ms", "errors", "what failed"])
    print()
    for line in verdicts(phases):
        print(line)


# ---- the run ------------------------------------------------------------------------------

def prepare(postgres: EmbeddedPostgres, data_dir: Path
            ) -> tuple[dict[str, str], dict[str, Any]]:
    """The dataset, the user, the app's environment and its Dash callback map."""
    postgres_url = cluster_url(postgres)
    engine = make_engine(postgres_url)
    views_data.ensure(engine, SMALL, say, GENERATORS)
    if users.find(engine, USER) is None:
        commands.create_user(engine, "bench", USER, PASSWORD, "trader")
    engine.dispose()
    views_pages.use(SMALL)
    env = bench_settings(postgres_url, data_dir, SMALL)
    # Built here only for its Dash callback map, to build the callback's request body.
    flask_app = create_app(load_settings(environ=env, env_file=None))
    callback_map = flask_app.extensions["dash"].callback_map
    flask_app.extensions["p2pdash"].engine.dispose()
    return env, callback_map


def phases_of(levels: list[int], variants: list[str]) -> list[tuple[int, str]]:
    """Each variant's series, its baseline (level 0) first."""
    return [(level, variant) for variant in variants for level in levels]


def run(args: argparse.Namespace, env: dict[str, str], callback_map: dict[str, Any]
        ) -> None:
    serving = Serving(args.connection_limit, args.server_nofile)
    config = server_config(env, serving)
    with served(env, serving) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        say(f"app at {base}, pid {pid}")
        target = Target(sign_in(base, callback_map), pid, port)
        limit = open_files_limit(pid)
        phases = []
        for level, variant in phases_of(args.levels, args.variants):
            say(f"phase: {level} slow connections ({variant if level else 'baseline'}), "
                f"{args.seconds:g} s")
            phase = run_phase(target, level, variant, args.seconds)
            got = figures(kinds(phase, False))
            say(f"  p50 {_ms(got['p50 ms'])}, p99 {_ms(got['p99 ms'])}, "
                f"{got['errors']} errors; slow ones open in {phase.open_seconds:.1f} s, "
                f"{phase.cut} cut")
            phases.append(phase)
    report(phases, config, limit)


def main(argv: list[str] | None = None) -> None:
    """Generate or reuse the dataset, run the phases, print the tables; stop the cluster if
    this run started it."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir = Path(args.data_dir).absolute()
    postgres = cluster(data_dir)
    try:
        env, callback_map = prepare(postgres, data_dir)
        run(args, env, callback_map)
    finally:
        postgres.stop()  # a cluster that was already running is left as it was


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,50,200,1000",
                        type=lambda text: [int(part) for part in text.split(",")],
                        help="slow connections per phase; 0 = the baseline (default "
                             "0,50,200,1000)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        type=lambda text: [part.strip() for part in text.split(",")],
                        help="headers (trickled headers), body (trickled body) or both")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir())
                                                  / "p2pdash-bench-slowloris"),
                        help="where the cluster and its small dataset live between runs")
    parser.add_argument("--connection-limit", type=int, default=None,
                        help="serve with this waitress connection_limit instead of "
                             "app/server.py's CONNECTIONS (an experiment; the file is not "
                             "changed)")
    parser.add_argument("--server-nofile", type=int, default=None,
                        help="the server process's open files soft limit (default: this "
                             "shell's), e.g. 1024 as many hosts set it")
    args = parser.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    return args


if __name__ == "__main__":
    main()
