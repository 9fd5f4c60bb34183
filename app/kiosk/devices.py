"""Kiosk devices: create one with a setup link, give it another playlist or a new link,
revoke it. Each action validates, acts and audits in one transaction (as app/auth/commands).

A setup link carries a 256-bit random token, shown once and stored as its SHA-256. It is
single-use and expires (P2PDASH_KIOSK_LINK_HOURS): a link travels through chats, e-mails
and browser histories, and a reusable one would sign in whoever finds it as the device for
as long as the device lives. Used once, the screen holds its own revocable session; a
screen replaced or wiped gets a new link, which also ends the old screen's session.
"""

from __future__ import annotations

import secrets
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from app import audit
from app.auth.sessions import token_hash
from app.config import USERNAME, Settings
from app.kiosk import playlists
from db import kiosk as store

SETUP_PATH = "/kiosk/setup/"


class DeviceError(ValueError):
    """A device action cannot be done; the message says why."""


def validate_name(name: str) -> str:
    """The trimmed device name if it is acceptable."""
    value = name.strip()
    if not USERNAME.match(value):
        raise DeviceError("device names are 1-64 letters, digits, '.', '_' or '-', starting "
                          "with a letter or digit")
    return value


def public_base(settings: Settings) -> str:
    """The address screens reach p2pdash at: P2PDASH_EXTERNAL_URL, else the served host."""
    if settings.alerts.external_url:
        return settings.alerts.external_url
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # every interface: this machine's name reaches one
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def setup_url(settings: Settings, token: str) -> str:
    """The setup link of a token."""
    return f"{public_base(settings)}{SETUP_PATH}{token}"


def _playlist_id(connection: Connection, name: str | None) -> int | None:
    if not name or name.strip().lower() == playlists.WALL:
        return None
    found = store.playlist_named(connection, name.strip().lower())
    if found is None:
        raise DeviceError(f"no playlist named {name!r}")
    return found["id"]


def _link_values(settings: Settings) -> tuple[str, dict[str, Any]]:
    token = secrets.token_urlsafe(32)
    return token, {"setup_token_hash": token_hash(token), "setup_used_at": None,
                   "setup_expires_at": datetime.now(UTC)
                   + timedelta(hours=settings.kiosk.link_hours)}


def create(engine: Engine, settings: Settings, actor: str, name: str,
           playlist: str | None = None) -> tuple[dict[str, Any], str]:
    """Create a device; the device and its setup link (the token is never stored)."""
    name = validate_name(name)
    token, link = _link_values(settings)
    with engine.begin() as connection:
        playlist_id = _playlist_id(connection, playlist)
        try:
            with connection.begin_nested():
                device_id = store.insert_device(connection, name=name, playlist_id=playlist_id,
                                                created_by=actor, **link)
        except IntegrityError:
            raise DeviceError(f"a device named {name!r} exists already") from None
        audit.record(connection, actor, "kiosk.create", name,
                     {"playlist": playlist or playlists.WALL,
                      "link_expires_at": link["setup_expires_at"].isoformat()})
        device = store.device_by_id(connection, device_id)
    return device or {}, setup_url(settings, token)


def _existing(connection: Connection, name: str) -> dict[str, Any]:
    device = store.device_named(connection, name.strip())
    if device is None:
        raise DeviceError(f"no device named {name!r}")
    return device


def new_link(engine: Engine, settings: Settings, actor: str, name: str) -> str:
    """A new setup link for a device (revoked ones get none); the old link stops working."""
    token, link = _link_values(settings)
    with engine.begin() as connection:
        device = _existing(connection, name)
        if device["revoked_at"]:
            raise DeviceError(f"device {device['name']!r} is revoked: create a new device")
        store.change_device(connection, device["id"], **link)
        audit.record(connection, actor, "kiosk.link", device["name"],
                     {"link_expires_at": link["setup_expires_at"].isoformat()})
    return setup_url(settings, token)


def revoke(engine: Engine, actor: str, name: str) -> int:
    """Revoke a device: its link and sessions stop; how many sessions were live."""
    with engine.begin() as connection:
        device = _existing(connection, name)
        if device["revoked_at"]:
            return 0
        store.change_device(connection, device["id"], revoked_at=datetime.now(UTC),
                            setup_token_hash=None)
        ended = store.end_device_sessions(connection, device["id"], "device revoked")
        audit.record(connection, actor, "kiosk.revoke", device["name"],
                     {"sessions_ended": ended})
    return ended


def set_playlist(engine: Engine, actor: str, name: str, playlist: str | None) -> None:
    """Show another playlist on a device (None or "wall": the wall); it follows at its next
    check-in."""
    with engine.begin() as connection:
        device = _existing(connection, name)
        store.change_device(connection, device["id"],
                            playlist_id=_playlist_id(connection, playlist))
        audit.record(connection, actor, "kiosk.set_playlist", device["name"],
                     {"from": device["playlist"] or playlists.WALL,
                      "to": playlist or playlists.WALL})


def save_playlist(engine: Engine, actor: str, name: str, text: str) -> list[dict[str, Any]]:
    """Create or replace a playlist from its text; its views."""
    name = playlists.validate_name(name)
    views = playlists.parse(text)
    with engine.begin() as connection:
        store.save_playlist(connection, name, views)
        audit.record(connection, actor, "kiosk.playlist.save", name, {"views": len(views)})
    return views


def delete_playlist(engine: Engine, actor: str, name: str) -> None:
    """Delete a playlist; devices showing it show the wall."""
    with engine.begin() as connection:
        if not store.delete_playlist(connection, name):
            raise DeviceError(f"no playlist named {name!r}")
        audit.record(connection, actor, "kiosk.playlist.delete", name)
