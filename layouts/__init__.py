"""Dash pages, one module each: PATH, NAME, TITLE, ORDER, ROLES and a pure layout(**params)."""

from layouts import (
    admin,
    alerts,
    candles,
    depth,
    export_page,
    home,
    kiosk,
    overview,
    spread,
    volume,
)

PAGES = [overview, spread, depth, volume, candles, alerts, export_page, home, admin, kiosk]
