"""Per-app state (settings and engine), reachable from any request or callback."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from flask import Flask, current_app
from sqlalchemy import Engine

from app.config import Settings


@dataclass
class AppState:
    """What the factory built for one app: its settings and its database engine."""

    settings: Settings
    engine: Engine


def current() -> AppState:
    """The state of the app handling this request."""
    return current_app.extensions["p2pdash"]


def current_of(app: Flask) -> AppState:
    """The state of a given app, outside any request."""
    return app.extensions["p2pdash"]


def app_version() -> str:
    """The installed p2pdash version."""
    try:
        return version("p2pdash")
    except PackageNotFoundError:
        return "0+unknown"
