"""The batching writer: one thread merges stream records into the database, many at a time.

Records wait in a bounded buffer keyed by their row key, so a newer record for the same key
replaces the older one (a live candle's last update, the last book ticker of a second)
before anything is written. The thread commits a batch as soon as `batch_rows` are waiting,
or once the oldest waiting row has waited `flush_seconds`; an idle writer sleeps until a
row comes. Rows whose key is later than the newest the writer has written for their series
(a symbol's book tickers, its 1m candles) cannot be in the table yet: they are appended
with a plain COPY. The others are merged (COPY into a staging table + INSERT ... ON
CONFLICT). Should an appended key be there after all, written by another process, the
transaction is rolled back and the whole batch merged. An open candle is kept in
`candles_live`, one row per series (db.bulk.merge_newest), not in `candles`, which gets
the closed ones (they append) and an open one only when the live row moves on without its
close (retired there for the gap repairer).

When the database is down the batch goes back to the front of the buffer and the thread
retries with capped exponential backoff, so the rows held through an outage are written
oldest first once it is back (every merge is idempotent: a batch that did commit before
its connection broke changes nothing the second time). The buffer holds at most
`max_pending_rows`; beyond that the oldest held row is dropped, counted, logged loudly
and noted on its run once the database is back. Within the bound nothing is lost. A row
the database refuses as bad data is isolated by splitting the batch, logged on its run
and skipped; the rest is written.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from app import metrics
from app.config import IngestSettings
from db.bulk import MergeResult, copy_merge, copy_rows, merge_newest
from db.schema import book_tickers, candles, candles_live, tickers_24h
from ingest.runs import Run
from ingest.spot_records import CANDLE_KEY, TICKER_KEY, Record

log = logging.getLogger(__name__)

Batch = OrderedDict[tuple, tuple[Record, Run | None]]
Observer = Callable[[Sequence[Record], float], None]

# copy_merge talks to the driver directly, so its errors come both raw and wrapped.
BAD_DATA = (DataError, IntegrityError, psycopg.errors.DataError, psycopg.errors.IntegrityError)
DATABASE_ERRORS = (SQLAlchemyError, psycopg.Error)


@dataclass(frozen=True)
class MergeSpec:
    """How the records of one table are merged: key, updated columns, update condition.

    A table with a `live` table beside it keeps there the rows not yet final (`final` is
    false: a candle still open), one per series (the key without its time), and gets only
    the final rows, which mostly append."""

    table: Table
    key: tuple[str, ...]
    only_if: str | None = None
    live: Table | None = None
    final: str | None = None

    @property
    def update(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.key)


MERGES: dict[str, MergeSpec] = {
    # A closed candle is final: a late live update never reopens it. The open candle is
    # updated on every frame of its minute, in a small unlogged table (migration 0011).
    "candles": MergeSpec(candles, CANDLE_KEY, "candles.is_closed IS NOT TRUE",
                         live=candles_live, final="is_closed"),
    "book_tickers": MergeSpec(book_tickers, TICKER_KEY),
    "tickers_24h": MergeSpec(tickers_24h, TICKER_KEY),
}


def _total(results: Iterable[MergeResult]) -> MergeResult:
    results = list(results)
    return MergeResult(sum(r.inserted for r in results), sum(r.updated for r in results),
                       sum(r.skipped for r in results))


@dataclass
class WriterStats:
    """Counters since the writer started."""

    submitted: int = 0
    coalesced: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    dropped: int = 0
    batches: int = 0
    failures: int = 0
    outages: int = 0
    last_error: str | None = None
    outage_since: float | None = None  # epoch seconds of the first failed write, while down

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.skipped


class _Newest:
    """The newest time written per series (a record's key without its time, e.g. a symbol's
    book tickers or its 1m candles), as far as this writer knows: a later key cannot be in
    the table unless another process wrote it. A series the writer has not written since
    it started is unknown, so its records are merged until one commits. For a table with a
    live table beside it, also the time of each series' live row as this writer left it."""

    LIMIT = 100_000  # series remembered at most; beyond that, start again

    def __init__(self) -> None:
        self._times: dict[tuple, int] = {}
        self._live: dict[tuple, int] = {}

    def split(self, records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
        """The records whose keys are later than their series' newest, and the others. The
        first are noted at once (should the batch not commit, the caller forgets its
        series); the others once committed (note)."""
        new, known = [], []
        times = self._times
        for record in records:
            key = record.key
            series = key[:-1]
            newest = times.get(series)
            if newest is not None and key[-1] > newest:
                new.append(record)
                times[series] = key[-1]
            else:
                known.append(record)
        return new, known

    def sort_live(self, spec: MergeSpec, records: Iterable[Record]
                  ) -> tuple[list[Record], list[Record], int, bool]:
        """The final records; the live ones worth writing; how many live ones came after
        their series' final row (a late frame of a closed candle: nothing shows it); and
        whether a stored live row may be replaced by a later one with no final row of its
        time written (a close that never came, or a series this writer has not left a live
        row of), so that it must be retired. The live records are one per series, its
        latest (the earlier ones count as late). Their times are noted at once; should the
        batch not commit, the caller forgets its series."""
        final, late, moves = [], 0, False
        live: dict[tuple, Record] = {}  # the latest live record per series
        times, left, flag = self._times, self._live, spec.final
        closing: dict[tuple, int] = {}  # the newest final time per series in this batch
        for record in records:
            key = record.key
            series, at = key[:-1], key[-1]
            if record.row[flag]:
                final.append(record)
                if at > closing.get(series, -1):
                    closing[series] = at
                continue
            newest = times.get(series, -1)
            held = live.get(series)
            if at <= newest or (held is not None and held.key[-1] > at):
                late += 1
                continue
            if held is not None:
                late += 1  # an earlier minute of the series in this batch: replaced
            live[series] = record
            was = left.get(series)
            if was is None or was < at:
                left[series] = at
                if was is None or max(newest, closing.get(series, -1)) < was:
                    moves = True
        return final, list(live.values()), late, moves

    def note(self, final: Iterable[Record]) -> None:
        """Remember the newest key of each series among final records merged in a committed
        batch."""
        times, left = self._times, self._live
        if len(times) > self.LIMIT or len(left) > self.LIMIT:
            times.clear()
            left.clear()
        for record in final:
            key = record.key
            series = key[:-1]
            if key[-1] > times.get(series, key[-1] - 1):
                times[series] = key[-1]

    def forget(self, items: Iterable[tuple[Record, Run | None]]) -> None:
        """Forget the series of a batch: someone else writes them too, or the batch (whose
        new keys and live rows were noted as they were sorted) did not commit."""
        for record, _run in items:
            self._times.pop(record.key[:-1], None)
            self._live.pop(record.key[:-1], None)


@dataclass
class _Outage:
    """Drops while the database is unreachable, reported once it is back."""

    by_run: Counter = field(default_factory=Counter)
    last_log: float = float("-inf")


class Writer:
    """A daemon thread that batches records into the database; `submit` never blocks long."""

    def __init__(self, engine: Engine, *, flush_seconds: float = 0.1, batch_rows: int = 5000,
                 max_pending_rows: int = 200_000, retry_base: float = 0.5,
                 retry_max: float = 5.0, observe: Observer | None = None) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.max_pending_rows = max_pending_rows
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.observe = observe
        self.stats = WriterStats()
        self._pending: Batch = OrderedDict()
        self._oldest_at: float | None = None  # when the oldest held row arrived (monotonic)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._failures_in_a_row = 0
        self._outage = _Outage()
        self._newest = _Newest()
        self._thread = threading.Thread(target=self._loop, name="ingest-writer", daemon=True)

    @classmethod
    def from_settings(cls, engine: Engine, tuning: IngestSettings,
                      observe: Observer | None = None) -> Writer:
        """A writer tuned by the INGEST_* settings."""
        return cls(engine, flush_seconds=tuning.flush_seconds, batch_rows=tuning.batch_rows,
                   max_pending_rows=tuning.max_pending_rows, retry_max=tuning.retry_max_seconds,
                   observe=observe)

    # -- the producer side -------------------------------------------------------------

    def start(self) -> Writer:
        """Start the writing thread."""
        self._thread.start()
        return self

    def submit(self, records: Iterable[Record], run: Run | None = None) -> None:
        """Queue records for writing; the newest record for a key wins."""
        with self._lock:
            first = self._oldest_at is None
            for record in records:
                self._put(record, run)
            if first and self._pending:
                self._oldest_at = time.monotonic()
                self._wake.notify()  # starts the flush deadline
            elif len(self._pending) >= self.batch_rows:
                self._wake.notify()

    def _put(self, record: Record, run: Run | None) -> None:
        self.stats.submitted += 1
        if record.key in self._pending:
            self.stats.coalesced += 1
        elif len(self._pending) + self._in_flight >= self.max_pending_rows:
            if not self._pending:  # everything held is in flight: the newcomer is the one
                self._drop(record, run)
                return
            self._drop(*self._pending.popitem(last=False)[1])
        self._pending[record.key] = (record, run)

    def _trim(self) -> None:
        """Drop the oldest held rows until the buffer is within its bound."""
        while len(self._pending) > self.max_pending_rows:
            self._drop(*self._pending.popitem(last=False)[1])

    def _drop(self, record: Record, run: Run | None) -> None:
        self.stats.dropped += 1
        metrics.ROWS_DROPPED.labels(record.table).inc()
        self._outage.by_run[run] += 1
        now = time.monotonic()
        if now - self._outage.last_log >= 10:
            self._outage.last_log = now
            log.error("WRITER BUFFER FULL (%d rows held, the database is not taking them): "
                      "dropping the oldest rows; %d dropped so far", self.max_pending_rows,
                      self.stats.dropped,
                      extra={"dropped_total": self.stats.dropped, "table": record.table,
                             "run_id": run.id if run else None})

    @property
    def pending(self) -> int:
        """Rows waiting to be written (including a batch being written)."""
        with self._lock:
            return len(self._pending) + self._in_flight

    @property
    def database_down(self) -> bool:
        """Whether the last write attempt failed to reach the database."""
        return self.stats.outage_since is not None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._wake.notify()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is waiting (one last attempt) and stop the thread."""
        self._stopping.set()
        with self._lock:
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the writing thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._write(batch)

    def _next_batch(self) -> Batch | None:
        """The next batch: `batch_rows` rows as soon as they wait, or whatever waits once the
        oldest of it has waited `flush_seconds` (no row waits longer for a fixed tick)."""
        with self._lock:
            while not self._stopping.is_set() and len(self._pending) < self.batch_rows:
                if self._oldest_at is None:
                    self._wake.wait()  # submit wakes us with the first row
                    continue
                remaining = self._oldest_at + self.flush_seconds - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
            if not self._pending:
                self._idle.notify_all()
                return None if self._stopping.is_set() else OrderedDict()
            batch = self._take_oldest(self.batch_rows)
            self._in_flight = len(batch)
            metrics.PENDING_ROWS.set(len(self._pending) + self._in_flight)
            return batch

    def _take_oldest(self, rows: int) -> Batch:
        """Up to `rows` of the oldest held rows, taken out of the buffer (lock held); rows
        left behind are due at once (they have waited as long as the batch's)."""
        if len(self._pending) <= rows:
            batch, self._pending = self._pending, OrderedDict()
            self._oldest_at = None
            return batch
        return OrderedDict(self._pending.popitem(last=False) for _ in range(rows))

    def _write(self, batch: Batch) -> None:
        try:
            try:
                results = self._commit(batch)
            except BAD_DATA as error:
                results = self._isolate_bad_rows(batch, error)
        except DATABASE_ERRORS as error:
            self._retry_later(batch, error)
            return
        except Exception as error:  # a bug must not end the writer: keep the rows, retry
            log.exception("writer failed unexpectedly; keeping the batch")
            self._retry_later(batch, error)
            return
        self._done(batch, results)

    def _commit(self, batch: Batch, append: bool = True
                ) -> list[tuple[Run | None, MergeResult]]:
        """Write the batch in one transaction, per table (and run, for its counts): rows newer
        than anything written for their series are appended, the rest merged. Should one of
        the appended keys be there after all (another process wrote it), the transaction is
        rolled back and the whole batch merged."""
        groups: dict[tuple[str, Run | None], list[Record]] = {}
        for record, run in batch.values():
            groups.setdefault((record.table, run), []).append(record)
        results, merged, merged_final = [], [], []
        try:
            with self.engine.begin() as connection:
                for (table, run), records in groups.items():
                    parts = self._merge(connection, MERGES[table], records, append,
                                        merged_final)
                    results.append((run, _total(parts.values())))
                    merged += parts.items()
        except psycopg.errors.UniqueViolation:
            self._newest.forget(batch.values())
            if not append:
                raise
            return self._commit(batch, append=False)
        except BaseException:
            self._newest.forget(batch.values())  # what split and sort_live noted at once
            raise
        self._newest.note(merged_final)
        for table, result in merged:  # committed: count them
            metrics.count_merge(table, result.inserted, result.updated, result.skipped)
        return results

    def _merge(self, connection: Connection, spec: MergeSpec, records: list[Record],
               append: bool, merged_final: list[Record]) -> dict[str, MergeResult]:
        """Append the records whose keys are new, merge the others; rows not yet final go
        to the live table after them (so that a stored row they replace is retired beside
        the final rows of this batch, not before). What was done, per table; the final
        records merged are added to `merged_final`, for noting once committed."""
        late, moves, to_live = 0, False, []
        if spec.live is not None:
            records, to_live, late, moves = self._newest.sort_live(spec, records)
        new, known = self._newest.split(records) if append else ([], records)
        appended = copy_rows(connection, spec.table, [record.row for record in new])
        result = copy_merge(connection, spec.table, [record.row for record in known],
                            key=spec.key, update=spec.update, only_if=spec.only_if,
                            unique_keys=True)
        merged_final += known
        done = {spec.table.name: MergeResult(result.inserted + appended, result.updated,
                                             result.skipped)}
        if spec.live is not None and (to_live or late):
            kept, retired = merge_newest(
                connection, spec.live, [record.row for record in to_live],
                series=spec.key[:-1], time=spec.key[-1],
                retire_into=spec.table if moves else None, unique=True)
            done[spec.live.name] = MergeResult(kept.inserted, kept.updated,
                                               kept.skipped + late)
            if retired:  # rows new to spec.table: counted there, so counts match the rows
                stored = done[spec.table.name]
                done[spec.table.name] = MergeResult(stored.inserted + retired, stored.updated,
                                                    stored.skipped)
        return done

    def _isolate_bad_rows(self, batch: Batch, error: Exception
                          ) -> list[tuple[Run | None, MergeResult]]:
        """Split a batch the database refused until the bad rows stand alone; skip those."""
        if len(batch) == 1:
            self._reject(next(iter(batch.values())), error)
            return []
        items = list(batch.items())
        results = []
        for half in (dict(items[:len(items) // 2]), dict(items[len(items) // 2:])):
            try:
                results += self._commit(half)
            except BAD_DATA as half_error:
                results += self._isolate_bad_rows(half, half_error)
        return results

    def _reject(self, item: tuple[Record, Run | None], error: Exception) -> None:
        record, run = item
        reason = _reason(error)
        with self._lock:
            self.stats.rejected += 1
        metrics.ROWS_REJECTED.labels(record.table).inc()
        if run is not None:
            run.add(rejected=1)
            _safely(run.error, f"database refused a {record.table} row: {reason}",
                    repr(record.row))
        else:
            log.error("database refused a %s row: %s", record.table, reason)

    def _retry_later(self, batch: Batch, error: Exception) -> None:
        reason = _reason(error)
        with self._lock:
            self._hold_in_front(batch)
            self.stats.failures += 1
            self.stats.last_error = reason
            if self.stats.outage_since is None:
                self.stats.outage_since = time.time()
                self.stats.outages += 1
            held = len(self._pending)
            metrics.PENDING_ROWS.set(held)
        self._failures_in_a_row += 1
        delay = min(self.retry_max, self.retry_base * 2 ** (self._failures_in_a_row - 1))
        log.warning("writer cannot reach the database; holding %d rows, retrying in %.1f s: "
                    "%s", held, delay, reason, extra={"pending": held})
        if self._stopping.wait(delay * random.uniform(0.5, 1.0)):
            self._give_up_if_still_down()

    def _hold_in_front(self, batch: Batch) -> None:
        """Put a batch that failed back before the rows submitted since (lock held); a newer
        record for one of its keys keeps the older one's place, so order is kept."""
        newer, self._pending = self._pending, batch
        for slot, item in newer.items():
            self._pending[slot] = item
        self._in_flight = 0
        self._oldest_at = 0.0  # due as soon as the retry delay is over
        self._trim()

    def _give_up_if_still_down(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, OrderedDict()
            self._oldest_at = None
            self._in_flight = len(batch)
        try:
            self._done(batch, self._commit(batch))
        except DATABASE_ERRORS as error:
            for record, _run in batch.values():
                metrics.ROWS_DROPPED.labels(record.table).inc()
            with self._lock:
                self.stats.dropped += len(batch)
                self._in_flight = 0
                self._idle.notify_all()
            log.error("WRITER STOPPED WITH THE DATABASE UNREACHABLE: %d held rows not "
                      "written (%s)", len(batch), _reason(error),
                      extra={"dropped_total": self.stats.dropped})

    def _done(self, batch: Batch, results: list[tuple[Run | None, MergeResult]]) -> None:
        committed_at = time.time()
        self._failures_in_a_row = 0
        self._note_recovery(committed_at)
        for run, result in results:
            if run is not None:
                run.add(inserted=result.inserted, duplicates=result.skipped)
        with self._lock:
            for _run, result in results:
                self.stats.inserted += result.inserted
                self.stats.updated += result.updated
                self.stats.skipped += result.skipped
            self.stats.batches += 1
            self._in_flight = 0
            metrics.PENDING_ROWS.set(len(self._pending))
            dropped, self._outage.by_run = self._outage.by_run, Counter()
            self._idle.notify_all()
        self._report_drops(dropped)
        records = [record for record, _run in batch.values()]
        metrics.observe_lag(records, committed_at)
        if self.observe is not None:
            self.observe(records, committed_at)

    def _note_recovery(self, now: float) -> None:
        down_since, self.stats.outage_since = self.stats.outage_since, None
        if down_since is not None:
            log.warning("writer reached the database again after %.1f s; writing the %d held "
                        "rows, oldest first", now - down_since, self.pending,
                        extra={"dropped_total": self.stats.dropped})

    def _report_drops(self, dropped: Counter) -> None:
        for run, count in dropped.items():
            message = (f"writer dropped {count} rows while the database was unreachable "
                       f"(buffer limit {self.max_pending_rows}; the oldest went first)")
            if run is not None:
                _safely(run.error, message, None, "warning")
            else:
                log.warning(message)


def _reason(error: BaseException) -> str:
    """The first line of what the database (or anything else) said went wrong."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__


def _safely(action: Callable[..., object], *args: object) -> None:
    """Call a logging action that writes to the database; a failure there is only logged."""
    try:
        action(*args)
    except DATABASE_ERRORS as error:
        log.warning("could not record an ingest error: %s", _reason(error))
