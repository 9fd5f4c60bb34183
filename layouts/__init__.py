"""Dash pages, one module each: PATH, NAME, TITLE, ORDER, ROLES and a pure layout(**params)."""

from layouts import admin, candles, home, overview

PAGES = [overview, candles, home, admin]
