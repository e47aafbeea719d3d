"""Read blueprint: sessions, search and exports as JSON (and files), and deleting a session."""

from flask import Blueprint, Response, g, stream_with_context

from . import export, ingest, queries, responses, schemas
from .auth import require_user
from .errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(require_user)


def _session_or_404(ident):
    row = queries.find_session(g.user_id, ident)
    if row is None:
        raise ApiError(404, "Session not found.")
    return row


@bp.get("/sessions")
def list_sessions():
    args = schemas.read_query(schemas.sessions_query)
    rows, total, next_key = queries.list_sessions(
        g.user_id, args, sort=args["sort"], descending=args["descending"], limit=args["limit"], after=args["after"]
    )
    return {
        "sessions": responses.session_out.dump(rows, many=True),
        "total": total,
        "nextCursor": schemas.encode_cursor(args["sort"], args["descending"], next_key) if next_key else None,
    }


@bp.get("/sessions/filters")
def session_filters():
    options = queries.filter_options(g.user_id)
    return {f"{dimension}s": values for dimension, values in options.items()}


@bp.get("/sessions/get")
def get_session():
    args = schemas.read_query(schemas.session_query)
    row = _session_or_404(args["id"])
    return {
        "session": responses.session_out.dump(row),
        "messages": responses.message_out.dump(queries.session_messages(row["id"]), many=True),
    }


@bp.delete("/sessions/<ident>")
def delete_session(ident):
    row = _session_or_404(ident)
    ingest.delete_session(g.user_id, row["id"])
    return {"ok": True, "deleted": str(row["id"])}


@bp.get("/search")
def search():
    args = schemas.read_query(schemas.search_query)
    hits = queries.search(g.user_id, args["q"], limit=args["limit"], source=args.get("source"))
    return {"results": responses.search_hits_out.dump(hits)}


EXPORTS = {
    "json": (export.session_json, "application/json", "json"),
    "jsonl": (export.session_jsonl, "application/x-ndjson", "jsonl"),
    "markdown": (export.session_markdown, "text/markdown; charset=utf-8", "md"),
}


def _attachment(name):
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    return {"Content-Disposition": f'attachment; filename="{safe}"'}


@bp.get("/export")
def export_session():
    args = schemas.read_query(schemas.export_query)
    row = _session_or_404(args["id"])
    render, mimetype, suffix = EXPORTS[args["format"]]
    body = render(row, queries.session_messages(row["id"]))
    return Response(body, mimetype=mimetype, headers=_attachment(f"session-{row['external_id']}.{suffix}"))


@bp.get("/export/sessions")
def export_sessions():
    args = schemas.read_query(schemas.export_sessions_query)
    rows = queries.iter_sessions(g.user_id, args, sort=args["sort"], descending=args["descending"])
    if args["format"] == "csv":
        chunks, mimetype = export.sessions_csv(rows), "text/csv; charset=utf-8"
    else:
        chunks, mimetype = export.sessions_json(rows), "application/json"
    return Response(
        stream_with_context(chunks), mimetype=mimetype, headers=_attachment(f"sessions.{args['format']}")
    )
