"""Kiosk devices and playlists: the queries behind app/kiosk (rows in, rows out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from db.schema import kiosk_devices, playlists, sessions

DEVICE_COLUMNS = (*kiosk_devices.c, playlists.c.name.label("playlist"))


def _devices_query():
    return select(*DEVICE_COLUMNS).select_from(
        kiosk_devices.outerjoin(playlists, playlists.c.id == kiosk_devices.c.playlist_id))


def all_devices(engine: Engine) -> list[dict[str, Any]]:
    """Every device with its playlist's name, by name."""
    with engine.connect() as connection:
        rows = connection.execute(_devices_query().order_by(kiosk_devices.c.name)).mappings()
        return [dict(row) for row in rows]


def device_named(bind: Connection, name: str) -> dict[str, Any] | None:
    """The device called `name` (any case), or None."""
    query = _devices_query().where(func.lower(kiosk_devices.c.name) == name.lower())
    row = bind.execute(query).mappings().first()
    return dict(row) if row else None


def device_by_id(bind: Connection, device_id: int) -> dict[str, Any] | None:
    """The device with this id, or None."""
    row = bind.execute(_devices_query().where(kiosk_devices.c.id == device_id)).mappings().first()
    return dict(row) if row else None


def device_by_setup_hash(bind: Connection, token_hash: str) -> dict[str, Any] | None:
    """The device whose setup link has this token hash, or None."""
    query = _devices_query().where(kiosk_devices.c.setup_token_hash == token_hash)
    row = bind.execute(query).mappings().first()
    return dict(row) if row else None


def insert_device(bind: Connection, **values: Any) -> int:
    """Insert a device; its id."""
    return bind.scalar(insert(kiosk_devices).values(**values).returning(kiosk_devices.c.id))


def change_device(bind: Connection, device_id: int, **values: Any) -> None:
    """Update columns of one device."""
    bind.execute(update(kiosk_devices).where(kiosk_devices.c.id == device_id).values(**values))


def use_setup_token(bind: Connection, device_id: int) -> bool:
    """Mark a device's setup link used, once: whether this call was the one that did."""
    statement = (update(kiosk_devices)
                 .where(kiosk_devices.c.id == device_id,
                        kiosk_devices.c.setup_used_at.is_(None),
                        kiosk_devices.c.revoked_at.is_(None),
                        kiosk_devices.c.setup_expires_at > func.now())
                 .values(setup_used_at=func.now()))
    return bind.execute(statement).rowcount == 1


def end_device_sessions(bind: Connection, device_id: int, reason: str) -> int:
    """End every live session of a device; how many were live."""
    statement = (update(sessions)
                 .where(sessions.c.device_id == device_id, sessions.c.revoked_at.is_(None))
                 .values(revoked_at=datetime.now(UTC), revoked_reason=reason[:100]))
    return bind.execute(statement).rowcount


def device_session(bind: Connection, token_hash: str) -> dict[str, Any] | None:
    """A device session by token hash, live or not, with its device's state."""
    query = (select(sessions.c.id.label("session_id"), sessions.c.revoked_at,
                    sessions.c.expires_at, sessions.c.last_seen_at,
                    kiosk_devices.c.id.label("device_id"), kiosk_devices.c.name,
                    kiosk_devices.c.created_at,
                    kiosk_devices.c.revoked_at.label("device_revoked_at"))
             .join(kiosk_devices, kiosk_devices.c.id == sessions.c.device_id)
             .where(sessions.c.token_hash == token_hash))
    row = bind.execute(query).mappings().first()
    return dict(row) if row else None


def touch_session(bind: Connection, session_id: int, device_id: int, ip: str | None) -> None:
    """Note that a device's session was just used, from `ip`."""
    now = datetime.now(UTC)
    bind.execute(update(sessions).where(sessions.c.id == session_id)
                 .values(last_seen_at=now, ip=ip))
    change_device(bind, device_id, last_seen_at=now, last_ip=ip)


def note_contact(bind: Connection, device_id: int, ip: str | None, user_agent: str | None,
                 showing: str | None) -> None:
    """Note a device's check-in: when, from where, with what browser, showing what."""
    change_device(bind, device_id, last_seen_at=datetime.now(UTC), last_ip=ip,
                  last_user_agent=user_agent, showing=showing)


def extend_session(bind: Connection, session_id: int, expires_at: datetime) -> None:
    """Move a session's absolute expiry."""
    bind.execute(update(sessions).where(sessions.c.id == session_id)
                 .values(expires_at=expires_at))


def all_playlists(engine: Engine) -> list[dict[str, Any]]:
    """Every playlist, by name."""
    with engine.connect() as connection:
        query = select(playlists).order_by(playlists.c.name)
        return [dict(row) for row in connection.execute(query).mappings()]


def playlist_named(bind: Connection, name: str) -> dict[str, Any] | None:
    """The playlist called `name`, or None."""
    row = bind.execute(select(playlists).where(playlists.c.name == name)).mappings().first()
    return dict(row) if row else None


def playlist_views(bind: Connection, name: str | None) -> list[dict[str, Any]] | None:
    """The views of the playlist called `name` (None or "wall": the wall alone), or None
    when there is no such playlist."""
    if not name or name == "wall":
        return [{"view": "wall", "dwell": 30}]
    found = playlist_named(bind, name)
    return found["views"] if found else None


def save_playlist(bind: Connection, name: str, views: list[dict[str, Any]]) -> int:
    """Create or replace the playlist called `name`; its id."""
    existing = playlist_named(bind, name)
    if existing is None:
        return bind.scalar(insert(playlists).values(name=name, views=views)
                           .returning(playlists.c.id))
    bind.execute(update(playlists).where(playlists.c.id == existing["id"])
                 .values(views=views, updated_at=func.now()))
    return existing["id"]


def delete_playlist(bind: Connection, name: str) -> bool:
    """Delete a playlist (its devices fall back to the wall); whether it existed."""
    return bind.execute(playlists.delete().where(playlists.c.name == name)).rowcount == 1
