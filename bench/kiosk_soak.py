"""Kiosk soak: a real headless Chromium on a wall playlist, refreshed every second, for long.

    .venv/bin/python bench/kiosk_soak.py [--minutes 30] [--every 5] [--refresh 1]

Run on demand (not in CI). It starts its own TimescaleDB cluster in a scratch directory, a
simulated Binance spot exchange and simulated P2P books (ingest/fake), and `p2pdash run`
ingesting from them with the wall's refresh at --refresh seconds; creates a kiosk device
(no playlist: the wall), opens its setup link in headless Chromium with the kiosk flags of
the README, and samples at the start, every --every minutes and at the end:
- the JS heap used (Chrome DevTools Protocol, Runtime.getHeapUsage, after a forced GC via
  HeapProfiler.collectGarbage so the figure is what is live, not what awaits collection),
- the document's DOM node count (Performance.getMetrics "Nodes"),
- the resident memory of every Chromium process together (VmRSS from /proc),
- how many wall refreshes the server answered (the page counts its own ticks).
It prints a table and the growth of each figure from minute --every to the end (aim: < 10 %).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

from app.config import load_settings
from app.kiosk import devices
from db.embedded import EmbeddedPostgres, free_port
from db.engine import make_engine
from db.migrate import upgrade
from ingest.fake.p2p import FakeP2P, serving
from ingest.fake.p2p_books import Simulation
from ingest.fake.server import FakeExchange

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-kiosk-secret-" + "k" * 32
SYMBOLS = ("BTCUSDT", "ETHUSDT")
MARKETS = ("binance:USDT/ARS", "okx:USDT/ARS", "bybit:USDT/NGN", "binance:BTC/ARS")
KIOSK_FLAGS = ("--kiosk", "--disable-background-timer-throttling",
               "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
               "--noerrdialogs", "--disable-session-crashed-bubble", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--window-size=1920,1080",
               "--headless=new", "--no-sandbox")
AIM_GROWTH_PCT = 10.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A scratch TimescaleDB cluster with the schema; its URL."""
    root = Path(tempfile.mkdtemp(prefix="p2pdash-kiosk-soak-"))
    root.chmod(0o755)
    cluster = EmbeddedPostgres(root / "pg", settings={"timescaledb.max_background_workers": "0"})
    try:
        url = cluster.ensure_running()
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        cluster.stop(force=True)
        shutil.rmtree(root, ignore_errors=True)


def app_environment(url: str, spot: FakeExchange, p2p_url: str, port: int,
                    refresh: float) -> dict[str, str]:
    """The environment of the served app: ingesting from the fakes, wall refresh `refresh`."""
    return {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET,
            "P2PDASH_DATA_DIR": str(Path(tempfile.gettempdir()) / "p2pdash-kiosk-soak-app"),
            "P2PDASH_PORT": str(port), "P2PDASH_LOG_LEVEL": "WARNING",
            "P2PDASH_ADMIN_PASSWORD": "bench-admin-password", "INGEST_ENABLED": "true",
            "SPOT_SYMBOLS": ",".join(SYMBOLS), "P2P_MARKETS": ",".join(MARKETS),
            "P2P_POLL_SECONDS": "5", "P2P_JITTER_SECONDS": "0", "P2P_PACING_MS": "0",
            "P2PDASH_KIOSK_REFRESH_SECONDS": str(refresh),
            **spot.environment(), "BINANCE_P2P_URL": p2p_url, "OKX_P2P_URL": p2p_url,
            "BYBIT_P2P_URL": p2p_url}


@contextlib.contextmanager
def served(env: dict[str, str], port: int) -> Iterator[str]:
    """`p2pdash run` in a subprocess until it answers /healthz; its base URL."""
    process = subprocess.Popen([str(ROOT / ".venv/bin/p2pdash"), "run"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=2).ok:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit("p2pdash run did not answer /healthz within 90 s")
        yield base
    finally:
        process.terminate()
        process.wait(30)


def chromium() -> webdriver.Chrome:
    """Headless Chromium with the wall screen flags, through chromedriver."""
    options = Options()
    options.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for flag in KIOSK_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    driver.set_window_size(1920, 1080)
    driver.execute_cdp_cmd("Performance.enable", {})
    return driver


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/<pid>/stat (field 4 is the parent)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found = tree.get(pid, [])
    return found + [grandchild for child in found for grandchild in _descendants(child, tree)]


def chromium_rss_mb(driver: webdriver.Chrome) -> float:
    """Resident memory of chromedriver's Chromium and all its processes, in MB."""
    total = 0
    for pid in _descendants(driver.service.process.pid, _children()):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            total += next((int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmRSS:")), 0)
    return total / 1024


def sample(driver: webdriver.Chrome, started: float) -> dict[str, Any]:
    """One row of the table: minute, JS heap, DOM nodes, Chromium RSS, refreshes."""
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    heap = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
    metrics = {item["name"]: item["value"] for item in
               driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    ticks = driver.execute_script("return window.kioskTicks || 0;")
    return {"minute": round((time.monotonic() - started) / 60, 1),
            "js_heap_mb": heap["usedSize"] / 2**20, "dom_nodes": int(metrics.get("Nodes", 0)),
            "listeners": int(metrics.get("JSEventListeners", 0)),
            "chromium_rss_mb": chromium_rss_mb(driver), "refreshes": ticks}


# Count the wall's refreshes: renders of its panels by Dash (not kiosk.js's own age marks),
# at most one per half second.
COUNT_TICKS = """
if (!window.kioskTicksObserver) {
  window.kioskTicks = 0;
  let last = 0;
  const panels = document.querySelector('[id*="kiosk-wall-panels"]');
  window.kioskTicksObserver = new MutationObserver((records) => {
    const rendered = records.some((r) => !(r.attributeName || '').startsWith('data-kiosk'));
    if (rendered && Date.now() - last > 500) { window.kioskTicks += 1; last = Date.now(); }
  });
  window.kioskTicksObserver.observe(panels, {attributes: true, childList: true,
                                             characterData: true, subtree: true});
}
"""


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = ("minute", "js_heap_mb", "dom_nodes", "listeners", "chromium_rss_mb",
               "refreshes")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[name]:.1f}" if isinstance(row[name], float)
                                else str(row[name]) for name in columns) + " |")


def print_growth(rows: list[dict[str, Any]], every: float) -> None:
    base = next((row for row in rows if row["minute"] >= every - 0.05), rows[0])
    end = rows[-1]
    print(f"\ngrowth from minute {base['minute']} to {end['minute']} (aim < {AIM_GROWTH_PCT} %):")
    for name in ("js_heap_mb", "dom_nodes", "listeners", "chromium_rss_mb"):
        growth = (end[name] - base[name]) / base[name] * 100 if base[name] else 0.0
        verdict = "ok" if growth < AIM_GROWTH_PCT else "OVER"
        print(f"  {name}: {base[name]:.1f} -> {end[name]:.1f} ({growth:+.1f} %) {verdict}")


def soak(base: str, link: str, minutes: float, every: float,
         screenshot: str | None = None) -> list[dict[str, Any]]:
    """Open the setup link, wait for the wall, and sample until the end."""
    driver = chromium()
    try:
        driver.get(base + link[link.index("/kiosk/setup/"):])
        deadline = time.monotonic() + 60
        while not driver.execute_script("return !!document.querySelector('.kiosk-card');"):
            if time.monotonic() > deadline:
                raise SystemExit("the wall did not show its panels within 60 s")
            time.sleep(0.5)
        driver.execute_script(COUNT_TICKS)
        if screenshot:
            time.sleep(20)  # a few P2P polls in
            driver.save_screenshot(screenshot)
        started = time.monotonic()
        rows = [sample(driver, started)]
        say(f"start: {rows[0]}")
        next_at = every
        while (elapsed := (time.monotonic() - started) / 60) < minutes:
            time.sleep(min(5.0, max(0.5, (min(next_at, minutes) - elapsed) * 60)))
            if (time.monotonic() - started) / 60 >= min(next_at, minutes) - 1e-3:
                rows.append(sample(driver, started))
                say(f"minute {rows[-1]['minute']}: {rows[-1]}")
                next_at += every
        if rows[-1]["minute"] < minutes - 0.05:
            rows.append(sample(driver, started))
        return rows
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--screenshot", help="save a PNG of the wall at the start here")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fakes' request lines
    port = free_port()
    with database() as url, FakeExchange("simulate", symbols=SYMBOLS) as spot, \
            serving(FakeP2P(simulation=Simulation(period=60))) as p2p_url:
        env = app_environment(url, spot, p2p_url, port, args.refresh)
        settings = load_settings(environ=env, env_file=None)
        engine = make_engine(url)
        _device, link = devices.create(engine, settings, "bench", "soak")
        engine.dispose()
        with served(env, port) as base:
            say(f"serving {base}; soaking {args.minutes:g} min at a {args.refresh:g} s refresh")
            rows = soak(base, link, args.minutes, args.every, args.screenshot)
    print(f"\nkiosk soak: wall view, refresh {args.refresh:g} s, {args.minutes:g} min, "
          "headless Chromium 1920x1080")
    print_table(rows)
    print_growth(rows, args.every)


if __name__ == "__main__":
    main()
