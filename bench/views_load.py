"""HTTP load for the views benchmark: gunicorn + Redis on loopback, clients that sign in and
refresh a page every few seconds the way the browser does, bounded in count and time.

    .venv/bin/python bench/views_load.py [--clients 200] [--seconds 60] [--period 5]
                                         [--warmup 10] [--workers 4] [--threads 8]
                                         [--data-dir DIR] [--small] [--scale 1]

The server runs as deploy/entrypoint.sh runs the `web` role (gunicorn's gthread workers
with app.gunicorn_conf's hooks, Prometheus multiprocess mode, an access log, Redis as the
cache); the defaults are compose's WEB_CONCURRENCY=4 workers of P2PDASH_THREADS=8 threads,
the only web configuration the README gives for a host of any size. Every client signs in
through the login form first; the clock, the latencies and the CPU figures start once all
have, so logins (password hashing) are reported apart. The first --warmup seconds of
refreshing are a cold start (a fresh Redis, fresh workers, every screen's first full
figure): they are reported in their own table, and the per-page figures, the per-callback
figures and the CPU cover the --seconds that follow (the timeline shows both). Run alone
it reuses bench/views.py's cluster and dataset under --data-dir, generating it first when
missing (~15 min at scale 1).

CPU is CPU seconds over the measured wall time, in % of one core (this host has 2): the
gunicorn master and workers, the PostgreSQL cluster, Redis, this client process (the
clients are Python threads on the same cores, so their cost and their GIL are part of
every latency), and the whole machine, which other jobs may share.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
import requests

from bench.views_pages import PAGES, TICK, Call, callback_key
from db.embedded import free_port
from tests.dash_calls import callback_body

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
TIMEOUT = 30
SIGN_IN_ATTEMPTS = 3
# Screens sign in a few at a time, not all in one instant: each login hashes a password
# (argon2id, 64 MiB), and 200 at once would time out behind each other.
SIGN_INS_AT_ONCE = 8
# deploy/compose.yaml's WEB_CONCURRENCY and P2PDASH_THREADS defaults.
WORKERS, THREADS = 4, 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def csrf_token(page: str) -> str:
    """The CSRF token of a login form."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("the login page carries no CSRF token")
    return match[1]


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A private Redis on a free loopback port: its URL and pid."""
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
        yield url, process.pid
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
def gunicorn(env: dict[str, str], workers: int, threads: int) -> Iterator[tuple[str, int]]:
    """The app under gunicorn as deploy/entrypoint.sh serves it; yields its URL and pid."""
    port, metrics = free_port(), tempfile.mkdtemp(prefix="p2pdash-bench-metrics-")
    # Connections are kept open longer than a refresh period, as a browser or a proxy keeps
    # them: gunicorn's 2 s default closes them between refreshes and a POST racing the close
    # is reset. The access log is written, as in production, and thrown away.
    command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf",
               "--worker-class", "gthread", "-w", str(workers), "--threads", str(threads),
               "--worker-tmp-dir", "/dev/shm", "-b", f"{LOOPBACK}:{port}",
               "--timeout", "120", "--graceful-timeout", "20", "--keep-alive", "30",
               "--log-level", "warning", "--access-logfile", "-", "wsgi:server"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               env={**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": metrics})
    base = f"http://{LOOPBACK}:{port}"
    try:
        _wait(lambda: requests.get(f"{base}/login", timeout=2).ok, "gunicorn")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(metrics, ignore_errors=True)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants, with its reaped children (/proc)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            fields = text[text.rindex(")") + 2:].split()
            stats[int(entry.name)] = (int(fields[1]), fields)
    children = defaultdict(list)
    for child, (parent, _) in stats.items():
        children[parent].append(child)
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        if current in stats:
            fields = stats[current][1]
            total += int(fields[11]) + int(fields[12])  # utime, stime
            pending += children[current]
    if pid in stats:
        total += int(stats[pid][1][13]) + int(stats[pid][1][14])  # cutime, cstime
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and iowait since boot (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU seconds of this process (the clients)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU of the server's processes, the clients and the machine over one window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.probes: dict[str, Callable[[], float]] = {
            **{name: (lambda pid=pid: tree_cpu_seconds(pid)) for name, pid in pids.items()},
            "clients (this process)": own_cpu_seconds,
            f"machine ({os.cpu_count()} cores, all jobs)": machine_busy_seconds}
        self.started, self.wall = time.monotonic(), 0.0
        self.at_start = {name: probe() for name, probe in self.probes.items()}
        self.used: dict[str, float] = {}

    def stop(self) -> None:
        """Close the window."""
        self.wall = time.monotonic() - self.started
        self.used = {name: probe() - self.at_start[name] for name, probe in self.probes.items()}

    def rows(self) -> list[dict[str, Any]]:
        """CPU seconds and % of one core per process."""
        return [{"process": name, "cpu_s": seconds, "pct_of_1_core": 100 * seconds / self.wall}
                for name, seconds in self.used.items()]


class Client(threading.Thread):
    """One screen: signs in, then refreshes one page's callbacks every `period` seconds."""

    def __init__(self, base: str, username: str, password: str, *, page: str, index: int,
                 phase: float, options: dict[str, Any]) -> None:
        super().__init__(name=f"client-{username}", daemon=True)
        self.base, self.username, self.password = base, username, password
        self.page, self.index, self.phase, self.options = page, index, phase, options
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.warmup: list[float] = []  # calls started before the measured window
        self.warmup_errors = 0
        self.timeline: list[tuple[float, float]] = []  # (monotonic start, ms) of each call
        self.errors: dict[str, int] = defaultdict(int)
        self.error_kinds: Counter[str] = Counter()  # what each failed call got
        self.session = requests.Session()
        self.marks: dict[str, Any] = {}
        self.failure = ""
        self.signed_in = threading.Event()  # set once signing in succeeded or gave up

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

    def _signed_in_headers(self) -> dict[str, str] | None:
        for attempt in range(SIGN_IN_ATTEMPTS):
            try:
                with self.options["sign_ins"]:
                    return self.sign_in()
            except (requests.RequestException, RuntimeError) as error:
                self.errors["sign-in"] += 1
                self.failure = f"{type(error).__name__}: {error}"
                time.sleep(1 + attempt)
        return None  # counted in errors; the summary says why

    def run(self) -> None:
        headers = self._signed_in_headers()
        self.signed_in.set()
        if headers is None:
            return
        self.options["go"].wait()
        period, stop_at = self.options["period"], self.options["stop_at"]
        measured_from = self.options["measured_from"]
        # Screens do not refresh in step: each starts at its own point of the period (a
        # slot per index % 10 put every screen of a page in two slots, 20 identical
        # requests at one instant).
        time.sleep(self.phase * period)
        tick = 0
        while time.monotonic() < stop_at:
            started = time.monotonic()
            for call in PAGES[self.page]:
                self.refresh(call, tick, headers, warmup=time.monotonic() < measured_from)
            tick += 1
            time.sleep(max(0.0, period - (time.monotonic() - started)))

    def refresh(self, call: Call, tick: int, headers: dict[str, str], *,
                warmup: bool = False) -> None:
        """One callback POST, as the live tick sends it (with the marks it got back)."""
        callback_map = self.options["callback_map"]
        key = callback_key(callback_map, call.output)
        # The screens of a page take turns through its symbols and markets (index n showed
        # the page n % 5 with the symbol n % 10: two symbols a page).
        choice = self.index // len(PAGES)
        values = call.values(choice, tick=tick, marks=self.marks.get(call.label))
        body = callback_body(callback_map, key, values, changed=TICK if tick else None)
        started = time.perf_counter()
        try:
            response = self.session.post(f"{self.base}/_dash-update-component", json=body,
                                         headers=headers, timeout=TIMEOUT)
            ok = response.status_code in (200, 204)
            why = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            ok, response, why = False, None, type(error).__name__
        elapsed = (time.perf_counter() - started) * 1000
        (self.warmup if warmup else self.latencies[call.label]).append(elapsed)
        self.timeline.append((time.monotonic() - elapsed / 1000, elapsed))
        if not ok:
            if warmup:
                self.warmup_errors += 1
            else:
                self.errors[call.label] += 1
            self.error_kinds[f"{self.page} / {call.label}: {why}"] += 1
        elif call.marks and response is not None and response.status_code == 200:
            self.marks[call.label] = response.json()["response"].get(call.marks, {}).get("data")


def phases(clients: int) -> list[float]:
    """Where in the refresh period each screen starts, in [0, 1): spread evenly, in an
    order that no page's screens share (the golden ratio's sequence)."""
    return [(n * 0.6180339887) % 1 for n in range(clients)]


@dataclass
class LoadResult:
    """Latencies per page and per callback, and CPU, of one load run."""

    pages: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]
    cpu: list[dict[str, Any]]
    sign_in_seconds: float
    wall_seconds: float
    failures: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)
    warmup: dict[str, Any] = field(default_factory=dict)


def run(env: dict[str, str], callback_map: dict[str, Any], *, clients: int, seconds: int,
        workers: int, period: float, password: str, say: Callable[[str], None],
        threads: int = THREADS, database_pid: int | None = None,
        warmup: float = 0.0) -> LoadResult:
    """Serve with gunicorn and Redis, sign the clients in, then measure their refreshes."""
    with redis_server() as (redis_url, redis_pid), \
            gunicorn({**env, "REDIS_URL": redis_url}, workers, threads) as (base, server_pid):
        pages = list(PAGES)
        options = {"period": period, "callback_map": callback_map, "go": threading.Event(),
                   "sign_ins": threading.Semaphore(SIGN_INS_AT_ONCE)}
        screens = [Client(base, f"bench-{n + 1:02d}", password, page=pages[n % len(pages)],
                          index=n, phase=phase, options=options)
                   for n, phase in zip(range(clients), phases(clients), strict=True)]
        say(f"{clients} clients signing in ...")
        started = time.monotonic()
        for screen in screens:
            screen.start()
        for screen in screens:
            screen.signed_in.wait(timeout=SIGN_IN_ATTEMPTS * (TIMEOUT + 3))
        sign_in_seconds = time.monotonic() - started
        say(f"signed in in {sign_in_seconds:.0f} s; refreshing every {period:g} s "
            f"for {warmup:g} s of warm-up and {seconds} s measured ...")
        pids = {f"gunicorn ({workers} workers x {threads} threads)": server_pid,
                "redis": redis_pid}
        if database_pid:
            pids["postgresql"] = database_pid
        go = time.monotonic()
        options["measured_from"] = go + warmup
        options["stop_at"] = go + warmup + seconds
        options["go"].set()
        time.sleep(warmup)
        meter = CpuMeter(pids)
        for screen in screens:
            screen.join(timeout=seconds + 2 * TIMEOUT)
        meter.stop()
    return LoadResult(*_summary(screens), meter.rows(), sign_in_seconds, meter.wall,
                      sorted({screen.failure for screen in screens if screen.failure}),
                      _timeline(screens, go),
                      sum((screen.error_kinds for screen in screens), Counter()),
                      {"window": f"first {warmup:g} s",
                       **_stats([ms for screen in screens for ms in screen.warmup],
                                sum(screen.warmup_errors for screen in screens))})


TIMELINE_SECONDS = 10


def _timeline(screens: list[Client], go: float) -> list[dict[str, Any]]:
    """p50/p95/max of the calls started in each TIMELINE_SECONDS of the run: where the
    slow calls were (the first seconds start on cold caches)."""
    windows: dict[int, list[float]] = defaultdict(list)
    for screen in screens:
        for started, elapsed in screen.timeline:
            windows[int(max(0.0, started - go) // TIMELINE_SECONDS)].append(elapsed)
    return [{"seconds": f"{n * TIMELINE_SECONDS}-{(n + 1) * TIMELINE_SECONDS}",
             "requests": len(samples), "p50": statistics.median(samples),
             "p95": _quantile(samples, .95), "max": max(samples)}
            for n, samples in sorted(windows.items())]


def _summary(screens: list[Client]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_page: dict[str, list[float]] = defaultdict(list)
    by_call: dict[tuple[str, str], list[float]] = defaultdict(list)
    page_errors: dict[str, int] = defaultdict(int)
    call_errors: dict[tuple[str, str], int] = defaultdict(int)
    for screen in screens:
        for label, samples in screen.latencies.items():
            by_page[screen.page] += samples
            by_call[screen.page, label] += samples
        for label, count in screen.errors.items():
            page_errors[screen.page] += count
            call_errors[screen.page, label] += count
    by_page["all"] = [latency for page in PAGES for latency in by_page[page]]
    page_errors["all"] = sum(page_errors.values())
    pages = [{"page": page, **_stats(by_page[page], page_errors[page])}
             for page in [*PAGES, "all"] if by_page[page] or page_errors[page]]
    calls = [{"page": page, "callback": label, **_stats(by_call[page, label],
                                                        call_errors[page, label])}
             for page, label in sorted({*by_call, *call_errors})]
    return pages, calls


def _stats(samples: list[float], errors: int) -> dict[str, Any]:
    return {"requests": len(samples), "errors": errors,
            "p50": statistics.median(samples) if samples else 0.0,
            "p95": _quantile(samples, .95), "p99": _quantile(samples, .99)}


def _quantile(samples: list[float], share: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(result: LoadResult, *, clients: int, seconds: int, period: float) -> None:
    """Print the load's tables."""
    from bench.views import print_table  # bench.views imports this module

    for failure in result.failures:
        print(f"sign-in failed: {failure}")
    for kind, count in result.error_kinds.most_common():
        print(f"failed call: {kind} x{count}")
    requests_per_second = result.pages[-1]["requests"] / result.wall_seconds
    print(f"\n{clients} clients signed in in {result.sign_in_seconds:.0f} s; measured "
          f"{result.wall_seconds:.0f} s, {requests_per_second:.0f} requests/s "
          f"(clients and server share this machine's {os.cpu_count()} cores)")
    print_table(f"{clients} clients refreshing every {period:g} s over HTTP for {seconds} s "
                "(ms)", result.pages, ["page", "requests", "errors", "p50", "p95", "p99"])
    if result.warmup.get("requests") or result.warmup.get("errors"):
        print_table("warm-up, not in the figures above: cold caches and workers, every "
                    "screen's first full figure (ms)", [result.warmup],
                    ["window", "requests", "errors", "p50", "p95", "p99"])
    print_table("per callback (ms)", result.callbacks,
                ["page", "callback", "requests", "errors", "p50", "p95", "p99"])
    print_table(f"over time: calls started in each {TIMELINE_SECONDS} s (ms)", result.timeline,
                ["seconds", "requests", "p50", "p95", "max"])
    print_table("CPU over the measured window (% of one core)", result.cpu,
                ["process", "cpu_s", "pct_of_1_core"])


def main(argv: list[str] | None = None) -> None:
    """Run the load alone on bench/views.py's cluster and dataset."""
    import logging

    from app import create_app
    from app.config import load_settings
    from bench import views, views_data, views_pages
    from db.engine import make_engine

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    postgres = views.cluster(Path(args.data_dir).absolute())
    try:
        dataset = views.dataset_for(small=args.small, scale=args.scale)
        views_pages.use(dataset)
        url = views.cluster_url(postgres)
        engine = make_engine(url)
        views_data.ensure(engine, dataset, views.say, views.GENERATORS)
        engine.dispose()
        env = views.bench_settings(url, Path(args.data_dir).absolute(), dataset)
        settings = load_settings(environ=env, env_file=None)
        views.ensure_users(settings, max(args.clients, 1))
        app = create_app(settings)  # for the callback map the clients post to
        app.extensions["p2pdash"].engine.dispose()
        result = run(env, app.extensions["dash"].callback_map, clients=args.clients,
                     seconds=args.seconds, workers=args.workers, threads=args.threads,
                     period=args.period, password=views.PASSWORD, say=views.say,
                     database_pid=postmaster_pid(postgres.data), warmup=args.warmup)
        report(result, clients=args.clients, seconds=args.seconds, period=args.period)
    finally:
        postgres.stop()  # a cluster that was already running is left as it was


def postmaster_pid(data: Path) -> int | None:
    """The pid of the cluster's postmaster, from its data directory."""
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="signed-in clients")
    parser.add_argument("--seconds", type=int, default=60, help="length of the measured load")
    parser.add_argument("--period", type=float, default=5.0, help="refresh period (s)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of refreshing before the measured window (reported apart)")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help=f"gunicorn workers (default {WORKERS}, compose's WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads per worker (default {THREADS}, P2PDASH_THREADS)")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir())
                                                  / "p2pdash-bench-views"),
                        help="bench/views.py's cluster and dataset (generated when missing)")
    parser.add_argument("--small", action="store_true",
                        help="a tiny dataset, to check the benchmark itself runs")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="time spans of the dataset, 1 = the issue's (default)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
