"""Security headers on every answer: a Content-Security-Policy that Dash works under, no
framing by other sites, no MIME sniffing, no referrer sent elsewhere.

Scripts come only from this site, plus Dash's own inline scripts (the renderer's start and
the clientside callbacks) by their hashes.
Styles allow inline ones: Plotly and dbc set them at run time.
"""

from __future__ import annotations

from flask import Flask, Response

STATIC = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
POLICY = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
          "worker-src 'self' blob:; frame-ancestors 'self'; object-src 'none'; "
          "base-uri 'self'; form-action 'self'")


def register(server: Flask) -> None:
    """Add the headers to every response of `server` (its Dash app, if any, mounted)."""

    @server.after_request
    def secure(response: Response) -> Response:
        for name, value in STATIC.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", policy(server, response))
        return response


def policy(server: Flask, response: Response) -> str:
    """The policy, with the hashes of Dash's inline scripts on its pages. They are hashed
    per page (ten short strings): Dash registers some callbacks at its first request."""
    dash_app = server.extensions.get("dash")
    if dash_app is None or response.mimetype != "text/html":
        return POLICY.format(hashes="")
    return POLICY.format(hashes=" ".join(dash_app.csp_hashes()))
