"""GET /api/v1/me: who the presented key belongs to and what it may do."""

from __future__ import annotations

from pydantic import BaseModel
from spectree import Response

from app import access
from app.api import bp, principal, spec


class Me(BaseModel):
    """The key's owner and the scopes the key may use now."""

    username: str
    role: str
    scopes: list[str]


@bp.get("/me")
@access.api_key()
@spec.validate(resp=Response(HTTP_200=Me), tags=["account"])
def me():
    """Describe the calling key: username, role and scopes."""
    caller = principal()
    return Me(username=caller.username, role=caller.role, scopes=list(caller.scopes))
