"""Where the real exchange captures are: tests/captures, a byte-for-byte copy of the
project's shared captures (../shared/fixtures beside the repository), so a fresh clone
anywhere runs the whole suite. P2PDASH_FIXTURES points the tests at another copy;
tests/test_captures.py checks the copy against the shared original whenever that is there.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
COPY = REPOSITORY / "tests" / "captures"
ORIGINAL = REPOSITORY.parent / "shared" / "fixtures"


def shared_fixtures() -> Path:
    """The captures directory; fail with what to do when it is not there."""
    chosen = os.environ.get("P2PDASH_FIXTURES")
    path = Path(chosen) if chosen else COPY
    if not (path / "README.md").is_file():
        raise RuntimeError(f"the exchange captures are not at {path}: restore tests/captures "
                           "from git, or set P2PDASH_FIXTURES")
    return path
