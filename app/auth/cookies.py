"""Cookies over HTTPS: every cookie p2pdash sets is marked Secure when the request was.

Flask sets the session cookie and flask-login the remember cookie after every
after_request hook has run, so this works one level down, on the WSGI headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class SecureCookiesOverHttps:
    """WSGI middleware: add `Secure` to each Set-Cookie of a response to an HTTPS request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if environ.get("wsgi.url_scheme") != "https":
            return self.app(environ, start_response)

        def secure_start_response(status: str, headers: list[tuple[str, str]], *args: Any):
            return start_response(status, [_secure(name, value) for name, value in headers],
                                  *args)

        return self.app(environ, secure_start_response)


def _secure(name: str, value: str) -> tuple[str, str]:
    if name.lower() == "set-cookie" and "; secure" not in value.lower():
        return name, f"{value}; Secure"
    return name, value
