"""Where a py-spy profile's samples go: self and inclusive share per function.

    .venv/bin/python bench/profile_summary.py DIR/p2pdash-1000.txt [--top 25]

Reads py-spy's collapsed stacks (`--format raw`, as bench/ingest.py --profile writes
them), drops line numbers so a function is one row, and prints the functions with the
largest share of samples where they were running (self) and anywhere on the stack
(inclusive).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summary(path: Path) -> tuple[int, Counter, Counter]:
    """Samples in all, and per function (line numbers dropped) where it was running and
    anywhere on the stack."""
    total, own, anywhere = 0, Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        functions = [_LINE.sub(")", part.strip()) for part in stack.split(";")]
        total += samples
        own[functions[-1]] += samples
        for function in set(functions):
            anywhere[function] += samples
    return total, own, anywhere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, own, anywhere = summary(args.profile)
    print(f"{total:,} samples holding the GIL in {args.profile}")
    for title, counter in (("self", own), ("inclusive", anywhere)):
        print(f"\n{title:>9}  function")
        for function, samples in counter.most_common(args.top):
            print(f"{100 * samples / max(1, total):8.1f}%  {function[:150]}")


if __name__ == "__main__":
    main()
