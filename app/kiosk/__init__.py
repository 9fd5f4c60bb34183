"""Kiosk wall screens: devices signed in by a setup link, their check-ins, their playlists.

`register(server)` adds the routes (app/kiosk/views.py) and fixes the build id screens
compare at every check-in.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.kiosk import build

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


def register(server: Flask) -> None:
    """Add the setup link, check-in and stop routes, and note the build screens compare."""
    from app.kiosk.views import bp

    server.extensions[build.EXTENSION] = build.compute(ASSETS)
    server.register_blueprint(bp)
