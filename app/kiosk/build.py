"""What a deployed build is: the app's version and a hash of the assets a screen loads.

A wall screen compares it with the one its page was built with at every check-in and
reloads itself when they differ, so a deploy reaches every screen without a touch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask

from app.state import app_version

EXTENSION = "p2pdash.kiosk.build"


def assets_hash(folder: Path) -> str:
    """A hash of every file's name and content under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def compute(folder: Path) -> str:
    """The build id of this version with the assets in `folder`."""
    return hashlib.sha256(f"{app_version()}|{assets_hash(folder)}".encode()).hexdigest()[:16]


def current(server: Flask) -> str:
    """The build id this server runs (set once when the kiosk routes are registered)."""
    return server.extensions.get(EXTENSION, "")
