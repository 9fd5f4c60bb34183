"""Dash pages, one module each: PATH, NAME, TITLE, ORDER, ROLES and a pure layout(**params)."""

from layouts import admin, candles, depth, home, overview, spread, volume

PAGES = [overview, spread, depth, volume, candles, home, admin]
