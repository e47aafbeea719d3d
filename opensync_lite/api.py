"""Read blueprint: sessions, search and exports as JSON (and files), and deleting a session."""

from flask import Blueprint, g

from . import context, evals, export, ingest, queries, responses, schemas, shares
from .auth import require_user
from .errors import ApiError
from .heavy import heavy

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(require_user)


def _session_or_404(ident=None, external_id=None):
    try:
        row = queries.find_session(g.user_id, ident, external_id)
    except queries.AmbiguousSession as err:
        by_id, by_external_id = err.rows
        raise ApiError(
            409,
            f"`{ident}` is the id of session {by_id['external_id']!r} and the externalId of session "
            f"{by_external_id['id']}: ask with `externalId=` or with that session's id.",
        ) from None
    if row is None:
        raise ApiError(404, "Session not found.")
    return row


def _session_from_query(args):
    return _session_or_404(args.get("id"), args.get("external_id"))


@bp.get("/sessions")
def list_sessions():
    args = schemas.read_query(schemas.sessions_query)
    rows, page = _page(args)
    return {"sessions": responses.session_out.dump(rows, many=True), **page}


def _page(args):
    """A page of the sessions ``args`` select (with their curation), and its total and cursors."""
    rows, total, next_key, previous_key = queries.session_page(g.user_id, args)
    cursor = lambda key: key and schemas.encode_cursor(args["sort"], args["descending"], key)  # noqa: E731
    return rows, {"total": total, "nextCursor": cursor(next_key),
                                         "previousCursor": cursor(previous_key)}


@bp.get("/files")
def touched_files():
    """The files at ``path`` (or all), and the sessions that read or changed them, newest first."""
    args = schemas.read_query(schemas.files_query)
    path, prefix = args.get("file"), args["file_prefix"]
    listing = responses.TouchedFile(many=True).dump(queries.touched_files(g.user_id, path, prefix, args["files_limit"]))
    if not path:
        return {"files": listing}
    rows, page = _page(args)
    found = queries.files_of([row["id"] for row in rows], g.user_id, path, prefix)
    for row in rows:
        row["files"] = found[row["id"]]
    return {"files": listing, "sessions": responses.session_with_files_out.dump(rows, many=True), **page}


@bp.get("/sessions/filters")
def session_filters():
    options = queries.filter_options(g.user_id)
    return {f"{dimension}s": values for dimension, values in options.items()}


@bp.get("/sessions/get")
def get_session():
    """The session and a page of its messages (``messagesLimit`` after ``messagesOffset``): one
    more is read to tell whether more remain."""
    args = schemas.read_query(schemas.session_get_query)
    row = _session_from_query(args)
    limit, offset = args["messages_limit"], args["messages_offset"]
    messages = queries.session_messages(row["id"], limit + 1, offset)
    more = len(messages) > limit
    return {
        "session": responses.session_out.dump(queries.with_curation([row])[0]),
        "subagents": responses.SubagentTotals().dump(queries.subagent_totals(g.user_id, row["external_id"])),
        "messages": responses.message_out.dump(messages[:limit], many=True),
        "moreMessages": more, "nextMessagesOffset": offset + limit if more else None,
        "files": responses.SessionFile(many=True).dump(queries.files_of([row["id"]], g.user_id)[row["id"]]),
    }


def _delete(row):
    ingest.delete_session(g.user_id, row["id"])
    return {"ok": True, "deleted": str(row["id"])}


@bp.delete("/sessions/<ident>")
def delete_session(ident):
    return _delete(_session_or_404(ident))


@bp.delete("/sessions")
def delete_session_by_query():
    """The same, by ``?id=`` or ``?externalId=`` (any externalId, slashes included)."""
    return _delete(_session_from_query(schemas.read_query(schemas.session_query)))


def _curate(row):
    ingest.curate(g.user_id, row["id"], schemas.read(schemas.session_patch))
    return {"session": responses.session_out.dump(queries.with_curation([row])[0])}


@bp.patch("/sessions/<ident>")
def curate_session(ident):
    """Star, tag, annotate or grade a session."""
    return _curate(_session_or_404(ident))


@bp.patch("/sessions")
def curate_session_by_query():
    """The same, by ``?id=`` or ``?externalId=``."""
    return _curate(_session_from_query(schemas.read_query(schemas.session_query)))


@bp.get("/search")
def search():
    """Sessions matching ``q``, one per session with its best matches, a page at a time."""
    args = schemas.read_query(schemas.search_query)
    hits, more = queries.search(g.user_id, args["q"], limit=args["limit"], source=args.get("source"),
                                where=args.get("where"), offset=args["offset"], kind=args["type"])
    return responses.SearchResults().dump(
        {"results": hits, "next_offset": args["offset"] + len(hits) if more else None})


@bp.get("/context")
def session_context():
    """What past sessions say about ``q``, ready for a prompt, as OpenSync's /api/context answers."""
    args = schemas.read_query(schemas.context_query)
    filters = {name: args[name] for name in ("source", "project", "date_from", "date_to") if name in args}
    return context.build(g.user_id, args["q"], args["limit"], args["format"], filters, args["type"], args["max_chars"])


@bp.get("/export")
@heavy
def export_session():
    args = schemas.read_query(schemas.export_query)
    row = _session_from_query(args)
    return export.session_download(row, queries.session_messages(row["id"]), args["format"], args["redact"])


@bp.get("/export/sessions")
@heavy
def export_sessions():
    args = schemas.read_query(schemas.export_sessions_query)
    rows = queries.iter_sessions(
        g.user_id, args, sort=args["sort"], descending=args["descending"], limit=args["limit"], after=args["after"]
    )
    return export.sessions_download(rows, args["format"], args["redact"])


@bp.get("/export/evals")
@heavy
def export_evals():
    """The filtered (or listed) sessions as an eval dataset, streamed."""
    args = schemas.read_query(schemas.evals_query)
    return evals.Export(g.user_id, args).download()


@bp.get("/export/evals/preview")
@heavy
def preview_evals():
    """What that download holds: counts, sessions left out and why, secrets masked, first cases."""
    args = schemas.read_query(schemas.evals_query)
    return evals.Export(g.user_id, args).preview()


# --- share links ------------------------------------------------------------------------------

def _share_rows(rows):
    return [{**row, "url": shares.url(row["slug"])} for row in rows]


@bp.post("/sessions/<ident>/shares")
def create_share(ident):
    """A share link to the session (see /s/<slug>); the server must allow sharing."""
    row = _session_or_404(ident)
    body = schemas.read(schemas.share_in)
    allowed, loopback = shares.state()
    if not allowed:
        raise ApiError(403, shares.OFF)
    if loopback and not body["confirm"]:
        raise ApiError(409, "This server listens on this computer only, so nobody else can open a share link: "
                            "send {\"confirm\": true} to make one anyway (for a tunnel or a proxy).",
                       fields={"confirm": ["Required on a loopback-only server."]})
    slug = shares.create(g.user_id, row["id"])
    (made,) = [r for r in shares.active(g.user_id, row["id"]) if r["slug"] == slug]
    return {"share": responses.share_out.dump(_share_rows([made])[0])}, 201


@bp.get("/shares")
def list_shares():
    """Your links that still work, newest first."""
    allowed, _ = shares.state()
    return {"sharing": allowed, "shares": responses.share_out.dump(_share_rows(shares.active(g.user_id)), many=True)}


@bp.delete("/shares/<int:share_id>")
def revoke_share(share_id):
    if not shares.revoke(g.user_id, share_id):
        raise ApiError(404, "No such active share link.")
    return {"ok": True, "revoked": str(share_id)}


# Limits live in their own modules: the status line's snapshots under /api/limits, budgets
# under /api/budgets.
from . import budgets_api, limits_api  # noqa: E402

bp.register_blueprint(limits_api.bp)
bp.register_blueprint(budgets_api.bp)
