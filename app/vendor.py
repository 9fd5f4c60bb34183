"""Serve Bootstrap 5.3 and Bootstrap Icons from the installed bootstrap-flask wheel: no CDN."""

from pathlib import Path

import flask_bootstrap
from flask import Blueprint

STATIC = Path(flask_bootstrap.__file__).parent / "static" / "bootstrap5"
PREFIX = "/vendor/bootstrap"

bp = Blueprint("vendor", __name__, static_folder=str(STATIC), static_url_path=PREFIX)

STYLESHEETS = [f"{PREFIX}/css/bootstrap.min.css", f"{PREFIX}/css/font/bootstrap-icons.min.css"]
