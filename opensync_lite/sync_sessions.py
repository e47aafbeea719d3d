"""Sync blueprint for sessions: what the plugins call to create and update sessions."""

from flask import Blueprint, g

from . import ingest, queries, schemas
from .auth import require_user

bp = Blueprint("sync_sessions", __name__)
bp.before_request(require_user)


@bp.post("/sync/session")
def sync_session():
    data = schemas.read(schemas.session_in)
    session_id = ingest.upsert_session(g.user_id, data, g.default_source)
    return {"ok": True, "sessionId": str(session_id)}


@bp.get("/sync/sessions/list")
def list_session_ids():
    """The externalIds already stored (the opencode plugin's `sync --all` skips these)."""
    return {"sessionIds": queries.session_external_ids(g.user_id)}
