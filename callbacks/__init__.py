"""Dash callbacks, one module per page (mirroring layouts/), registered on an app."""

from dash import Dash

from callbacks import (
    admin,
    alerts,
    candles,
    depth,
    download,
    export_page,
    home,
    kiosk,
    overview,
    shell,
    spread,
    volume,
)


def register(dash_app: Dash) -> None:
    """Attach every page's callbacks to `dash_app`."""
    for module in (shell, home, overview, spread, depth, volume, candles, alerts, download,
                   export_page, admin, kiosk):
        module.register(dash_app)
