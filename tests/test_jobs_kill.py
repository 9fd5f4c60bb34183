"""A backfill whose ingest leader is killed with SIGKILL is finished by the next leader.

Two real `p2pdash run` processes lead one database, one after the other. Each talks to a
fake exchange of its own, both serving the same simulated market (same seed): the first
answers slowly, so the first leader is killed part way through the backfill; the second's
request log is then exactly what the second leader asked for. Afterwards every minute of
the range is in `candles` once, as the fake serves it, and the second leader started at the
job's checkpoint, neither at the start of the range nor past it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from db import jobs
from db.embedded import free_port
from db.intervals import from_ms, to_ms
from db.schema import candles, runs
from ingest.backfill_jobs import queue_backfill
from ingest.binance_rest import PAGE, BinanceRest, KlinesRequest
from ingest.fake.server import FakeExchange

pytestmark = pytest.mark.slow
SYMBOL = "BTCUSDT"
PAGES = 6
MINUTES = PAGES * PAGE
MINUTE_MS = 60_000
PAGE_DELAY_SECONDS = 0.7  # each of the first leader's pages: the kill lands mid-backfill
KILL_AFTER_PAGES = 2
CANDLE_COLUMNS = ("open", "high", "low", "close", "volume", "close_time", "quote_volume",
                  "trades", "taker_base_volume", "taker_quote_volume")


@pytest.fixture
def exchanges() -> Iterator[tuple[FakeExchange, FakeExchange]]:
    """A slow fake for the leader to be killed, a quick one (same market) for the next."""
    with (FakeExchange("simulate", symbols=[SYMBOL]) as slow,
          FakeExchange("simulate", symbols=[SYMBOL]) as quick):
        slow.binance.delay_next(PAGE_DELAY_SECONDS, times=PAGES)
        yield slow, quick


@pytest.fixture
def start_leader(database_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `p2pdash run` ingesting from a fake; whatever is still running is killed after."""
    started: list[subprocess.Popen] = []

    def start(fake: FakeExchange) -> subprocess.Popen:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "P2PDASH_PORT": str(port),
               "P2PDASH_DATA_DIR": str(tmp_path / f"var-{port}"), "SECRET_KEY": "s" * 40,
               "P2PDASH_ADMIN_PASSWORD": "a-long-admin-password", "INGEST_ENABLED": "true",
               "SPOT_SYMBOLS": "", "P2P_MARKETS": "", "ALERTS_ENABLED": "false",
               "INGEST_LEADER_RETRY_SECONDS": "1", **fake.environment()}
        log = (tmp_path / f"leader-{port}.log").open("w")
        process = subprocess.Popen([sys.executable, "-m", "app", "run"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = Path(log.name)
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_while_alive(process: subprocess.Popen, condition: Callable[[], object],
                     timeout: float, message: str) -> None:
    """Poll `condition` until true; fail at once, with the log, if the process ends."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the leader exited ({process.returncode}) before {message}:\n"
                        f"{process.log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}:\n"
                        f"{process.log_path.read_text()[-3000:]}")
        time.sleep(0.05)


def backfill_request(fake: FakeExchange) -> KlinesRequest:
    """PAGES pages of closed 1m candles, ending well before the fake's current minute."""
    end = from_ms(fake.clock.ms() // MINUTE_MS * MINUTE_MS) - timedelta(minutes=100)
    return KlinesRequest(SYMBOL, "1m", end - timedelta(minutes=MINUTES), end)


def checkpoint_ms(engine, job_id: int) -> int | None:
    """Where the job's next page starts, as its leader last saved it."""
    checkpoint = jobs.get(engine, job_id)["checkpoint"] or {}
    return checkpoint.get("next_ms")


def stored_counts(engine) -> tuple[int, int]:
    """(rows, distinct open times) in candles."""
    with engine.connect() as connection:
        return tuple(connection.execute(select(
            func.count(), func.count(func.distinct(candles.c.open_time)))).one())


def missing_minutes(engine, request: KlinesRequest) -> list:
    """The minutes of the range that have no candle."""
    with engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT generate_series(:start, :end - interval '1 minute', interval '1 minute') "
            "EXCEPT SELECT open_time FROM candles WHERE symbol = :symbol AND interval = '1m' "
            "ORDER BY 1"), {"start": request.start, "end": request.end, "symbol": SYMBOL}))


def stored_candles(engine) -> list[tuple]:
    """Every stored candle as (open ms, *CANDLE_COLUMNS), times in epoch ms."""
    columns = [candles.c[name] for name in CANDLE_COLUMNS]
    with engine.connect() as connection:
        rows = connection.execute(select(candles.c.open_time, *columns)
                                  .order_by(candles.c.open_time)).all()
    close_at = CANDLE_COLUMNS.index("close_time") + 1
    return [(to_ms(row[0]), *row[1:close_at], to_ms(row[close_at]), *row[close_at + 1:])
            for row in rows]


def served_candles(fake: FakeExchange, request: KlinesRequest) -> list[tuple]:
    """The range's candles as the fake serves them, in stored_candles' shape."""
    rest, served = BinanceRest(fake.rest_url), []
    cursor, end_ms = to_ms(request.start), to_ms(request.end)
    while cursor < end_ms:
        page = rest.klines(SYMBOL, "1m", cursor, end_ms - 1)
        served += [(t, *map(Decimal, (o, h, low, c, v)), close, Decimal(q), n, Decimal(tb),
                    Decimal(tq)) for t, o, h, low, c, v, close, q, n, tb, tq, _ in page]
        cursor = page[-1][0] + MINUTE_MS
    return served


def backfill_runs(engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(
            select(runs).where(runs.c.kind == "klines_backfill").order_by(runs.c.id))
            .mappings()]


def klines_starts(fake: FakeExchange) -> list[int]:
    """The startTime of every klines request the fake answered, in order."""
    return [int(entry.params["startTime"]) for entry in list(fake.binance.requests)
            if entry.path == "/api/v3/klines"]


def test_a_backfill_whose_leader_is_killed_is_finished_by_the_next_leader(
        engine, exchanges, start_leader):
    slow, quick = exchanges
    request = backfill_request(slow)
    start_ms = to_ms(request.start)
    job_id = queue_backfill(engine, request, "admin")  # what the Admin tab's button does

    first = start_leader(slow)
    wait_while_alive(first, lambda: (checkpoint_ms(engine, job_id) or 0)
                     >= start_ms + KILL_AFTER_PAGES * PAGE * MINUTE_MS,
                     timeout=120, message=f"{KILL_AFTER_PAGES} pages stored")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    resume_ms = checkpoint_ms(engine, job_id)
    kept, _ = stored_counts(engine)
    assert jobs.get(engine, job_id)["status"] == "running", "killed before the job ended"
    assert start_ms < resume_ms < to_ms(request.end), "killed part way"
    assert kept >= (resume_ms - start_ms) // MINUTE_MS, "every page before the checkpoint kept"
    assert kept < MINUTES

    second = start_leader(quick)
    wait_while_alive(second, lambda: jobs.get(engine, job_id)["status"] not in jobs.ACTIVE,
                     timeout=120, message="the job to end")
    os.killpg(second.pid, signal.SIGTERM)
    assert second.wait(timeout=60) == 0, "the second leader shuts down cleanly"
    starts = klines_starts(quick)

    job = jobs.get(engine, job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("done", 2, None)
    abandoned, resumed = backfill_runs(engine)
    assert abandoned["status"] == "interrupted"
    assert (resumed["id"], resumed["status"]) == (job["run_id"], "ok")
    assert resumed["inserted"] == MINUTES - kept
    assert resumed["received"] == (to_ms(request.end) - resume_ms) // MINUTE_MS

    assert stored_counts(engine) == (MINUTES, MINUTES), "every minute once, nothing else"
    assert missing_minutes(engine, request) == []
    assert stored_candles(engine) == served_candles(quick, request)

    assert starts[0] == resume_ms, "the second leader resumed at the checkpoint"
    assert min(starts) == resume_ms, "and never asked for a page before it"
    assert klines_starts(slow)[0] == start_ms and len(klines_starts(slow)) < PAGES
    with engine.connect() as connection:
        left = connection.execute(select(runs.c.id, runs.c.kind).where(
            runs.c.status == "running")).all()
    assert left == []
