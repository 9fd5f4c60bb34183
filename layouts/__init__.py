"""Dash pages, one module each: PATH, NAME, TITLE, ORDER, ROLES and a pure layout(**params)."""

from layouts import admin, alerts, candles, depth, home, overview, spread, volume

PAGES = [overview, spread, depth, volume, candles, alerts, home, admin]
