"""Dash pages, one module each: PATH, NAME, TITLE, ORDER, ROLES and a pure layout(**params)."""

from layouts import admin, candles, depth, home, overview, volume

PAGES = [overview, depth, volume, candles, home, admin]
