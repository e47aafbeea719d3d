"""Read blueprint: the user's sessions and messages as JSON."""

from flask import Blueprint, g, request

from . import queries, schemas
from .auth import require_user
from .errors import ApiError

bp = Blueprint("api", __name__)
bp.before_request(require_user)


@bp.get("/api/sessions")
def list_sessions():
    args = schemas.load(schemas.list_query, request.args)
    rows = queries.list_sessions(g.user_id, limit=args["limit"])
    return {"sessions": schemas.session_out.dump(rows, many=True)}


@bp.get("/api/sessions/get")
def get_session():
    ident = request.args.get("id", "").strip()
    if not ident:
        raise ApiError(400, "Missing query parameter: id.", fields={"id": ["Missing data for required field."]})
    row = queries.find_session(g.user_id, ident)
    if row is None:
        raise ApiError(404, "Session not found.")
    return {
        "session": schemas.session_out.dump(row),
        "messages": schemas.message_out.dump(queries.session_messages(row["id"]), many=True),
    }
