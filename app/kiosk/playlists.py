"""Playlists: an ordered list of views, each a page of the app (with its URL state) or the
wall, shown for its dwell time.

Stored as JSON ([{"view": "/spread?market=binance:USDT/ARS&range=1d", "dwell": 20}, ...])
and edited as text, one view a line: `VIEW [DWELL]`, e.g. `wall 30` or
`/candles?symbol=BTCUSDT&interval=1h 20`. Whether a page or market still exists is checked
when the playlist is shown, so one removed later shows a notice and the playlist goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

WALL = "wall"
DEFAULT_DWELL = 30
MIN_DWELL, MAX_DWELL = 2, 86400
MAX_VIEWS = 50
MAX_VIEW = 500
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# The playlist of a device that has none: the wall alone.
WALL_ONLY = ({"view": WALL, "dwell": DEFAULT_DWELL},)


class PlaylistError(ValueError):
    """A playlist's name or text is not acceptable; the message says which line."""


def validate_name(name: str) -> str:
    """The playlist name, lowercased, if it is acceptable (it is part of a URL)."""
    value = name.strip().lower()
    if value == WALL or not NAME.match(value):
        raise PlaylistError("playlist names are 1-64 lowercase letters, digits, '-' or '_' "
                            f"(and not {WALL!r}, the built-in wall)")
    return value


def parse(text: str) -> list[dict[str, Any]]:
    """The views of a playlist's text, one `VIEW [DWELL]` a line (blank lines and # skipped)."""
    views = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        views.append(_entry(number, *line.rsplit(None, 1)))
    if not views:
        raise PlaylistError("a playlist needs at least one view (e.g. `wall 30`)")
    if len(views) > MAX_VIEWS:
        raise PlaylistError(f"a playlist has at most {MAX_VIEWS} views")
    return views


def _entry(number: int, view: str, dwell: str | None = None) -> dict[str, Any]:
    if dwell is not None and not dwell.isdigit():
        view, dwell = f"{view} {dwell}", None  # not a number: part of the view
    if len(view) > MAX_VIEW or not (view == WALL or view.startswith((f"{WALL}?", "/"))) \
            or view.startswith("//") or any(char.isspace() or ord(char) < 0x20 for char in view):
        raise PlaylistError(f"line {number}: a view is `wall`, `wall?market=...` or a page "
                            "path like /spread?market=binance:USDT/ARS")
    seconds = int(dwell) if dwell else DEFAULT_DWELL
    if not MIN_DWELL <= seconds <= MAX_DWELL:
        raise PlaylistError(f"line {number}: the dwell is {MIN_DWELL} to {MAX_DWELL} seconds")
    return {"view": view, "dwell": seconds}


def as_text(views: list[dict[str, Any]]) -> str:
    """The views as the text an admin edits."""
    return "\n".join(f"{entry['view']} {entry['dwell']}" for entry in views)


def fingerprint(views: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    """A short hash of the views: a screen showing another one reloads."""
    return hashlib.sha256(json.dumps(list(views), sort_keys=True).encode()).hexdigest()[:16]


def split(view: str) -> tuple[str, dict[str, list[str]]]:
    """A view's path (or "wall") and its query parameters."""
    parts = urlsplit(view)
    return parts.path, parse_qs(parts.query)
