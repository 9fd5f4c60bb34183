"""Where a py-spy profile's samples go: self and inclusive share per function.

    .venv/bin/python bench/profile_summary.py DIR/p2pdash-1000.txt [--top 25]

Reads py-spy's collapsed stacks (`--format raw`, as bench/ingest.py --profile writes
them), drops line numbers so a function is one row, and prints the functions with the
largest share of samples where they were running (self) and anywhere on the stack
(inclusive), and the share of each thread.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
_THREAD = re.compile(r"^thread \(0x[0-9A-Fa-f]+\)$")


def frames(stack: str) -> tuple[str, list[str]]:
    """(thread, functions outermost first) of one collapsed stack."""
    parts = [_LINE.sub(")", part.strip()) for part in stack.split(";")]
    parts = [part for part in parts if not part.startswith("process ")]
    thread = parts[0] if parts and (_THREAD.match(parts[0]) or "(" not in parts[0]) else "-"
    return thread, parts[1:] if thread != "-" else parts


def summary(path: Path) -> tuple[int, Counter, Counter, Counter]:
    total, own, anywhere, threads = 0, Counter(), Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        thread, functions = frames(stack)
        total += samples
        threads[thread] += samples
        if functions:
            own[functions[-1]] += samples
        for function in set(functions):
            anywhere[function] += samples
    return total, own, anywhere, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, own, anywhere, threads = summary(args.profile)
    print(f"{total:,} samples holding the GIL in {args.profile}")
    for title, counter in (("self", own), ("inclusive", anywhere), ("thread", threads)):
        print(f"\n{title:>9}  function")
        for function, samples in counter.most_common(args.top):
            print(f"{100 * samples / max(1, total):8.1f}%  {function[:150]}")


if __name__ == "__main__":
    main()
