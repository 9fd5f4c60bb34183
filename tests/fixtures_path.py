"""Where the shared, real exchange captures are: ../shared/fixtures beside the repository.

That is where developers' machines and CI keep them; P2PDASH_FIXTURES overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def shared_fixtures() -> Path:
    """The fixtures directory; fail with what to do when it is not there."""
    chosen = os.environ.get("P2PDASH_FIXTURES")
    path = Path(chosen) if chosen else REPOSITORY.parent / "shared" / "fixtures"
    if not (path / "README.md").is_file():
        raise RuntimeError(f"the shared exchange captures are not at {path}: clone the "
                           "repository beside shared/, or set P2PDASH_FIXTURES")
    return path
