"""Exports as a user takes them: checked, streamed, counted and audited (API and CLI alike).

`open_export` checks the request (ExportInvalid names the field, before any byte is sent)
and returns the file name, its content type and a generator of its bytes that records the
export in the audit log when it ends: who, what, the range, the rows, and whether it
completed (a client gone or a database error mid-stream is audited as cut short).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, abort, request, stream_with_context
from flask_login import current_user
from sqlalchemy import Engine

from app import access, audit, metrics, state
from db.export import ExportRequest, parse_request
from db.export_stream import CONTENT_TYPES, Tally, filename, stream

log = logging.getLogger(__name__)
EXPORTERS = ("analyst", "admin")
bp = Blueprint("exports", __name__)


@dataclass(frozen=True)
class OpenExport:
    """A checked export ready to stream."""

    request: ExportRequest
    filename: str
    content_type: str
    body: Iterator[bytes]
    tally: Tally  # rows sent so far


def open_export(engine: Engine, name: str, args: Mapping[str, str], *, actor: str,
                role: str, user_id: int | None = None, max_days: int | None = None
                ) -> OpenExport:
    """Check an export for `actor`; its bytes come from `body`, audited when they end."""
    request = parse_request(name, args, role=role, user_id=user_id, max_days=max_days)
    tally = Tally()
    return OpenExport(request, filename(request), CONTENT_TYPES[request.format],
                      _audited(engine, request, actor, tally), tally)


def _audited(engine: Engine, request: ExportRequest, actor: str, tally: Tally
             ) -> Iterator[bytes]:
    complete = False
    try:
        yield from stream(engine, request, tally)
        complete = True
    except Exception:
        log.exception("export broken off", extra={"dataset": request.dataset.name,
                                                  "actor": actor})
        raise
    finally:
        metrics.count_export(request.dataset.name, request.format, tally.rows, complete)
        details = {"dataset": request.dataset.name, "format": request.format,
                   "start": request.params["start"].isoformat(),
                   "end": request.params["end"].isoformat(), "complete": complete,
                   "rows": tally.rows,
                   **{key: value for key, value in request.params.items()
                      if key not in ("start", "end") and value}}
        audit.record(engine, actor, "export", request.query.filename, details)


def attachment(opened: OpenExport) -> Response:
    """A streamed download of an opened export."""
    return Response(stream_with_context(opened.body), content_type=opened.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{opened.filename}"',
                             "Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.get("/export/<name>")
@access.allow(*EXPORTERS)
def download(name: str):
    """The pages' downloads: the same export as the API, for a signed-in analyst or admin."""
    from db.export import ExportInvalid

    try:
        current = state.current()
        opened = open_export(current.engine, name[:40], request.args,
                             actor=current_user.username, role=current_user.role,
                             user_id=current_user.id,
                             max_days=current.settings.export_max_days.get(current_user.role))
    except ExportInvalid as invalid:
        abort(400, f"{invalid.field}: {invalid.message}")
    return attachment(opened)
