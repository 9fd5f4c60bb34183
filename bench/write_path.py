"""Write-path benchmark: the writer's ways into a hypertable beside binary COPY, in one run.

    .venv/bin/python bench/write_path.py [--rows 100000] [--symbols 500] [--rounds 5]

Starts its own PostgreSQL + TimescaleDB (db.embedded.EmbeddedPostgres in a temporary
directory, default settings, fsync on) and times rows/s, in 5000-row transactions, for
candles and book tickers:

- binary COPY: rows with distinct keys copied straight into the hypertable (the baseline);
- text COPY: the same as text (what the writer's append path uses: measured no slower in
  the server, and cheaper in this process);
- copy_merge text: text COPY into a staging table + INSERT ... ON CONFLICT (db.bulk's
  default, as before);
- copy_merge binary: the same with a binary COPY into the staging table;
- unnest merge: INSERT ... SELECT FROM unnest(binary array parameters) ON CONFLICT, no
  staging table (tried and left here, slower);
- writer: Writer._write on each batch, as the writing thread runs it: rows whose keys are
  later than the newest the writer wrote for their series appended by COPY, the rest merged
  (its first batch is merged whole: a fresh writer knows nothing yet); an open candle goes
  to the unlogged candles_live, one row per series (migration 0011);
- writer, logged candles_live (candles): the same with candles_live a logged table;
- writer, live upsert by ON CONFLICT (candles): the open candles merged into candles_live
  by one INSERT ... ON CONFLICT DO UPDATE, as before the UPDATE ... FROM of db.bulk's
  merge_newest;
- writer before 0011 (candles): every candle in the hypertable, the open one updated in
  place, pages 30 % free (migration 0010): what the writer did before.

Each way writes into a database of its own in the same cluster; batch by batch the ways
take turns in a shuffled order, so a busy moment of a shared machine falls on all alike.

The merges get realistic batches. Book tickers: one sample per symbol per second, new keys
mostly, and a share of rows repeating a key of the previous batch (a second split across
two flushes). Candles: every batch updates each symbol's open candle (1m and 5m), and every
few batches the candles close (the closed row, then the next open one) and a late live
update of a closed candle arrives (skipped: a closed candle is never reopened).
Every round starts from emptied tables; the table shows the median of `--rounds` rounds
and its ratio to binary COPY.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, Engine, Table, text

import ingest.writer
from db.bulk import (
    MergeResult,
    _action,
    _quote,
    _stage,
    _types,
    copy_merge,
    copy_rows,
    merge_newest,
)
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade
from ingest.spot_records import book_ticker_record, kline_record
from ingest.writer import MERGES, Batch, Writer

BATCH = 5000
BOOK_REPEATS = 0.05  # share of a book ticker batch repeating a key of the batch before
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@contextmanager
def temporary_database() -> Iterator[str]:
    """The URL of a database in a throw-away TimescaleDB cluster."""
    root = Path(tempfile.mkdtemp(prefix="p2pdash-bench-"))
    root.chmod(0o755)
    cluster = EmbeddedPostgres(root, settings={"timescaledb.max_background_workers": "0"})
    try:
        yield cluster.ensure_running()
    finally:
        cluster.stop(force=True)
        shutil.rmtree(root, ignore_errors=True)


# -- workloads -------------------------------------------------------------------------

def _price(rng: random.Random) -> str:
    return f"{rng.uniform(0.5, 60_000):.8f}"


def _book_ticker(symbol: str, second: int, rng: random.Random):
    bid = _price(rng)
    event = {"u": 1, "s": symbol, "b": bid, "B": f"{rng.uniform(0, 9):.4f}",
             "a": str(Decimal(bid) + Decimal("0.01")), "A": f"{rng.uniform(0, 9):.4f}"}
    return book_ticker_record(event, T0.timestamp() + second + 0.5)


def book_ticker_batches(rows: int, symbols: Sequence[str], repeat_share: float = BOOK_REPEATS,
                        seed: int = 1) -> list[Batch]:
    """Samples a second per symbol, in batches; `repeat_share` of each batch after the
    first re-sends a key of the previous batch's last second with a newer value."""
    rng = random.Random(seed)
    batches: list[Batch] = []
    fresh = ((s, symbol) for s in range(10**9) for symbol in symbols)
    made = 0
    while made < rows:
        batch: Batch = OrderedDict()
        repeats = int(BATCH * repeat_share) if batches else 0
        if repeats:
            last = list(batches[-1].values())[-repeats:]
            for record, _run in last:
                second = int(record.row["ts"].timestamp() - T0.timestamp())
                again = _book_ticker(record.row["symbol"], second, rng)
                batch[again.key] = (again, None)
        while len(batch) < min(BATCH, rows - made):
            second, symbol = next(fresh)
            record = _book_ticker(symbol, second, rng)
            batch[record.key] = (record, None)
        made += len(batch)
        batches.append(batch)
    return batches


def _candle(symbol: str, interval: str, open_time: datetime, closed: bool,
            rng: random.Random):
    start = int(open_time.timestamp() * 1000)
    minutes = 1 if interval == "1m" else 5
    o, c = Decimal(_price(rng)), Decimal(_price(rng))
    return kline_record({
        "t": start, "T": start + minutes * 60_000 - 1, "s": symbol, "i": interval,
        "o": str(o), "h": str(max(o, c) + 1), "l": str(min(o, c)), "c": str(c),
        "v": f"{rng.uniform(0, 999):.6f}", "n": rng.randrange(10_000), "x": closed,
        "q": f"{rng.uniform(0, 9e6):.6f}", "V": f"{rng.uniform(0, 99):.6f}",
        "Q": f"{rng.uniform(0, 9e5):.6f}"}, start)


def candle_batches(rows: int, symbols: Sequence[str], roll_every: int = 4,
                   seed: int = 2) -> list[Batch]:
    """Each batch updates every symbol's open 1m and 5m candle; every `roll_every` batches
    the candles close and the next ones open, and late live updates of the closed
    candles come in the batch after."""
    rng = random.Random(seed)
    batches: list[Batch] = []
    made, tick, minute, late = 0, 0, 0, []
    while made < rows:
        batch: Batch = OrderedDict()
        for record in late:
            batch[record.key] = (record, None)
        late = []
        rolling = tick % roll_every == roll_every - 1
        for symbol in symbols:
            for interval in ("1m", "5m"):
                open_time = T0 + timedelta(minutes=minute * (1 if interval == "1m" else 5))
                current = _candle(symbol, interval, open_time, rolling, rng)
                batch[current.key] = (current, None)
                if rolling:
                    after = open_time + timedelta(minutes=1 if interval == "1m" else 5)
                    following = _candle(symbol, interval, after, False, rng)
                    batch[following.key] = (following, None)
                    if rng.random() < 0.02:
                        late.append(_candle(symbol, interval, open_time, False, rng))
        minute += rolling
        tick += 1
        made += len(batch)
        items = list(batch.items())  # a roll doubles the rows: at most BATCH a batch
        batches += [OrderedDict(items[n:n + BATCH]) for n in range(0, len(items), BATCH)]
    return batches


def distinct_batches(batches: list[Batch]) -> list[list[dict]]:
    """The same number of rows in the same batch sizes, every key new (for COPY)."""
    result, shift = [], 0
    for batch in batches:
        rows = []
        for record, _run in batch.values():
            row = dict(record.row)
            time_column = "open_time" if record.table == "candles" else "ts"
            row[time_column] = row[time_column] + timedelta(microseconds=shift)
            shift += 1
            rows.append(row)
        result.append(rows)
    return result


# -- ways in ---------------------------------------------------------------------------

class Way:
    """One way of writing the batches, into its own database; `write(n)` writes batch n."""

    tables: tuple[str, ...] = ("candles", "book_tickers")

    def __init__(self, engine: Engine, table: str, batches: list[Batch]) -> None:
        self.engine, self.table, self.batches = engine, table, batches
        self.spec = MERGES[table]

    def reset(self) -> None:
        """Empty the table (and forget what was written), before a round."""
        with self.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {self.table}"))

    def write(self, n: int) -> None:
        raise NotImplementedError


class Copy(Way):
    """COPY straight into the hypertable, every key new: the baseline."""

    binary = True

    def __init__(self, engine: Engine, table: str, batches: list[Batch]) -> None:
        super().__init__(engine, table, batches)
        self.copies = distinct_batches(batches)

    def write(self, n: int) -> None:
        with self.engine.begin() as connection:
            copy_rows(connection, self.spec.table, self.copies[n], binary=self.binary)


class TextCopy(Copy):
    binary = False


class Merge(Way):
    """db.bulk's merge of each batch, as a caller outside the writer uses it."""

    merge: Callable[..., MergeResult] = staticmethod(copy_merge)
    options: dict = {}

    def write(self, n: int) -> None:
        rows = [record.row for record, _run in self.batches[n].values()]
        spec = self.spec
        with self.engine.begin() as connection:
            self.merge(connection, spec.table, rows, key=spec.key, update=spec.update,
                       only_if=spec.only_if, unique_keys=True, **self.options)


class BinaryMerge(Merge):
    options = {"binary": True}


def unnest_merge(connection: Connection, table: Table, rows: Sequence[dict], *,
                 key: Sequence[str], update: Sequence[str] = (), only_if: str | None = None,
                 unique_keys: bool = True) -> MergeResult:
    """The merge with one binary array parameter per column and no staging table (tried,
    slower than copy_merge here)."""
    columns = list(rows[0])
    cols = ", ".join(map(_quote, columns))
    arrays = ", ".join(f"%b::{name}[]" for name in _types(table, tuple(columns)))
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(
        f"WITH merged AS (INSERT INTO {_quote(table.name)} ({cols}) "
        f"SELECT * FROM unnest({arrays}) ON CONFLICT ({', '.join(key)}) "
        f"{_action(update, only_if)} RETURNING (xmax = 0) AS fresh) "
        "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) FROM merged",
        [[row[column] for row in rows] for column in columns])
    inserted, updated = cursor.fetchone()
    return MergeResult(inserted, updated, len(rows) - inserted - updated)


class UnnestMerge(Merge):
    merge = staticmethod(unnest_merge)


class ThroughWriter(Way):
    """Each batch through the writer's own write step (Writer._write), in this thread."""

    def reset(self) -> None:
        super().reset()
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE candles_live"))
        self.writer = Writer(self.engine)

    def write(self, n: int) -> None:
        self.writer._write(OrderedDict(self.batches[n]))
        assert not self.writer.stats.rejected and not self.writer.stats.failures


class InPlaceWriter(Writer):
    """The writer as it was before migration 0011: open candles updated in the hypertable."""

    def _merge(self, connection, spec, records, append, merged_final):
        return super()._merge(connection, replace(spec, live=None), records, append,
                              merged_final)


class InPlaceWay(ThroughWriter):
    """The writer before 0011: every candle, open or closed, in the hypertable, whose pages
    kept 30 % free for the updates (0010)."""

    tables = ("candles",)

    def reset(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("ALTER TABLE candles SET (fillfactor = 70)"))
        super().reset()
        self.writer = InPlaceWriter(self.engine)


class LoggedLiveWay(ThroughWriter):
    """The writer with candles_live made a logged table: what UNLOGGED saves."""

    tables = ("candles",)

    def reset(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("ALTER TABLE candles_live SET LOGGED"))
        super().reset()


def conflict_merge_newest(connection: Connection, live: Table, rows: Sequence[dict], *,
                          series: Sequence[str], time: str, retire_into: Table | None = None,
                          unique: bool = True) -> tuple[MergeResult, int]:
    """db.bulk.merge_newest as it was: one INSERT ... ON CONFLICT DO UPDATE (unique rows)."""
    assert unique
    columns = list(rows[0])
    cols, keys, when = ", ".join(map(_quote, columns)), ", ".join(series), _quote(time)
    cursor = connection.connection.driver_connection.cursor()
    stage = _stage(cursor, live, rows, binary=False)
    update = [column for column in columns if column not in series]
    retire = ""
    if retire_into is not None:
        stored = ", ".join(f"l.{_quote(column)}" for column in columns)
        retire = (f"retired AS (INSERT INTO {retire_into.name} ({cols}) SELECT {stored} "
                  f"FROM {live.name} AS l JOIN {stage} AS s USING ({keys}) "
                  f"WHERE s.{when} > l.{when} ON CONFLICT DO NOTHING RETURNING 1), ")
    cursor.execute(
        f"WITH {retire}merged AS (INSERT INTO {live.name} ({cols}) SELECT {cols} FROM {stage} "
        f"ON CONFLICT ({keys}) {_action(update, f'{live.name}.{when} <= EXCLUDED.{when}')} "
        "RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh), "
        "count(*) FILTER (WHERE NOT fresh), "
        f"{'(SELECT count(*) FROM retired)' if retire else '0'} FROM merged")
    inserted, updated, retired = cursor.fetchone()
    cursor.execute(f"DELETE FROM {stage}")
    return MergeResult(inserted, updated, len(rows) - inserted - updated), retired


class ConflictLiveWay(ThroughWriter):
    """The writer with its open candles upserted by ON CONFLICT, as before."""

    tables = ("candles",)

    def write(self, n: int) -> None:
        ingest.writer.merge_newest = conflict_merge_newest
        try:
            super().write(n)
        finally:
            ingest.writer.merge_newest = merge_newest


WAYS: dict[str, type[Way]] = {

    "binary COPY": Copy, "text COPY": TextCopy, "copy_merge text": Merge,
    "copy_merge binary": BinaryMerge, "unnest merge": UnnestMerge, "writer": ThroughWriter,
    "writer, logged candles_live": LoggedLiveWay,
    "writer, live upsert by ON CONFLICT": ConflictLiveWay,
    "writer before 0011 (in place)": InPlaceWay,
}


@contextmanager
def way_databases(database_url: str, count: int) -> Iterator[list[Engine]]:
    """`count` migrated databases beside the one at `database_url`, dropped after."""
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    names = [f"write_path_{n}" for n in range(count)]
    template = make_engine(admin.url.set(database="write_path_template"))
    with admin.connect() as connection:
        for name in ["write_path_template", *names]:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text("CREATE DATABASE write_path_template"))
        upgrade(template)
        template.dispose()
        for name in names:
            connection.execute(text(f"CREATE DATABASE {name} TEMPLATE write_path_template"))
    engines = [make_engine(admin.url.set(database=name)) for name in names]
    try:
        yield engines
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as connection:
            for name in ["write_path_template", *names]:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def _workloads(rows: int, symbols: int, book_repeats: float = BOOK_REPEATS
               ) -> dict[str, list[Batch]]:
    # A candle batch updates every symbol's open 1m and 5m candle: half a batch of symbols.
    candle_symbols = [f"CAN{n:04d}USDT" for n in range(BATCH // 2)]
    ticker_symbols = [f"SYM{n:04d}USDT" for n in range(symbols)]
    return {"candles": candle_batches(rows, candle_symbols),
            "book_tickers": book_ticker_batches(rows, ticker_symbols, book_repeats)}


def _race(ways: dict[str, Way], batches: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per round per way; batch by batch, the ways take turns in a shuffled order,
    so a busy moment of the machine falls on all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    order = list(ways)
    for _round in range(rounds):
        for way in ways.values():
            way.reset()
        spent = dict.fromkeys(ways, 0.0)
        for n in range(batches):
            random.shuffle(order)
            for name in order:
                started = time.perf_counter()
                ways[name].write(n)
                spent[name] += time.perf_counter() - started
        for name, value in spent.items():
            seconds[name].append(value)
    return seconds


def write_table(database_url: str, rows: int = 100_000, symbols: int = 500,
                rounds: int = 5, ways: Sequence[str] = tuple(WAYS), *,
                book_repeats: float = BOOK_REPEATS) -> list[dict]:
    """Rows/s per way for candles and book tickers (median of `rounds`), each with its ratio
    to binary COPY; one dict per table and way, ready to print. The ways write into
    databases of their own, created beside the one at `database_url` and dropped after."""
    names = ["binary COPY", *(name for name in ways if name != "binary COPY")]
    table_rows = []
    with way_databases(database_url, len(names)) as engines:
        for table, batches in _workloads(rows, symbols, book_repeats).items():
            count = sum(len(batch) for batch in batches)
            racers = {name: WAYS[name](engine, table, batches)
                      for name, engine in zip(names, engines, strict=True)
                      if table in WAYS[name].tables}
            seconds = _race(racers, len(batches), rounds)
            baseline = count / statistics.median(seconds["binary COPY"])
            for name in racers:
                rates = [count / value for value in seconds[name]]
                rate = statistics.median(rates)
                table_rows.append({"table": table, "way": name, "rows": count,
                                   "rows/s (median)": f"{rate:,.0f}",
                                   "min..max": f"{min(rates):,.0f}..{max(rates):,.0f}",
                                   "/ binary COPY": f"{rate / baseline:.2f}"})
    return table_rows


def print_table(title: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    print(f"\n{title}")
    print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS))
    parser.add_argument("--book-repeats", type=float, default=BOOK_REPEATS,
                        help="share of a book ticker batch re-sending a key of the batch "
                             "before (a second split across two flushes; the stream now "
                             "writes a second once, so 0 is what it sends while busy)")
    args = parser.parse_args()
    with temporary_database() as url:
        print_table(f"write path (rows/s, {BATCH}-row transactions, {args.symbols} "
                    f"book ticker symbols, {args.book_repeats:.0%} repeated)",
                    write_table(url, args.rows, args.symbols, args.rounds, args.ways,
                                book_repeats=args.book_repeats))


if __name__ == "__main__":
    main()
