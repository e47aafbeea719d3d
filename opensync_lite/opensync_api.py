"""OpenSync's own API, answered as OpenSync answers it, under ``/opensync``: a script written
for OpenSync works here by setting its base URL to ``http://HOST:PORT/opensync``.

Our own routes keep their shapes; these answer OpenSync's (convex/http.ts and convex/api.ts
of OpenSync): its parameter names, its field names, keys it leaves out when a value is
missing, its error texts (with our ``fields`` beside them). Everything is read through the
same query layer as our API (``queries``, ``context``, ``evals``) with the same Bearer check.
Where we differ (search types not built yet, eval-ready sessions, redaction) the README's
table says so.
"""

import re
from importlib import import_module

from flask import Blueprint, Response, current_app, g, has_app_context, request

from . import context, opensync_evals, queries, shares, sync_messages, sync_sessions
from . import opensync_schemas as schemas
from .auth import now_ms, require_user
from .errors import ApiError
from .export import REDACTED_HEADER, to_json
from .heavy import heavy
from .redact import Redactor
from .search.kinds import AVAILABLE_TYPES

bp = Blueprint("opensync_compat", __name__, url_prefix="/opensync")

# The engine that answered a search (or context): a client that asked for semantic or
# hybrid can tell it got full-text results until the semantic engine is in.
SEARCH_HEADER = "X-Search-Type"


@bp.before_request
def _key():
    if not (request.endpoint or "").endswith(f"{bp.name}.health"):  # the one route without a key, as ours
        require_user()


def _args(schema, missing=None):
    return schemas.read(schema, request.args.to_dict(), missing)


# --- shapes ---------------------------------------------------------------------------------

def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _shape(row, required, optional=()):
    """OpenSync's object for ``row``: the ``required`` fields always, the ``optional`` ones
    only when set (JSON.stringify drops an undefined field)."""
    out = {_camel(name): row[name] for name in required}
    out.update({_camel(name): row[name] for name in optional if row.get(name) is not None})
    return out


SESSION_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "cost", "duration_ms")
SESSION_TEXTS = ("title", "project_path", "project_name", "model", "provider")


def _public_ids(user_id):
    """The sessions a working share link shows (OpenSync's ``isPublic``)."""
    allowed, _ = shares.state()
    return {row["session"] for row in shares.active(user_id)} if allowed else set()


def _session(row, public):
    """listSessions' and getSession's session."""
    out = {"id": str(row["id"]), "externalId": row["external_id"]}
    out.update(_shape(row, (), SESSION_TEXTS))
    out.update(_shape(row, SESSION_COUNTS))
    out.update(isPublic=row["id"] in public, messageCount=row["message_count"],
               createdAt=row["created_at"], updatedAt=row["updated_at"])
    return out


def _message(m):
    out = {"id": str(m["id"]), "externalId": m["external_id"], "role": m["role"]}
    out.update(_shape(m, (), ("text_content", "model")))
    out.update(_shape(m, ("prompt_tokens", "completion_tokens", "duration_ms", "created_at")))
    out["parts"] = [{"type": p["type"], "content": p["content"]} for p in m["parts"]]
    return out


def _found(row, public, kind):
    """A search result: fullTextSearch's shape; semanticSearch's (``_id``, more fields) for
    type=semantic; both at once for hybrid, whose OpenSync results mix the two."""
    fulltext = {"id": str(row["id"]), "externalId": row["external_id"], **_shape(row, (), ("title", "project_path", "model")),
                "totalTokens": row["total_tokens"], "cost": row["cost"], "messageCount": row["message_count"],
                "createdAt": row["created_at"]}
    if kind == "fulltext":
        return fulltext
    semantic = {"_id": str(row["id"]), **{k: v for k, v in fulltext.items() if k != "id"},
                **_shape(row, (), ("project_name",)), "isPublic": row["id"] in public, "updatedAt": row["updated_at"]}
    return semantic if kind == "semantic" else {**fulltext, **semantic}


def _session_or_404(user_id, ident):
    try:
        row = queries.find_session(user_id, ident)
    except queries.AmbiguousSession:
        raise ApiError(409, f"`{ident}` is one session's id and another's externalId: ask with the id.") from None
    if row is None:
        raise ApiError(404, "Session not found")
    return row


# --- sessions, search, context, stats -------------------------------------------------------

@bp.get("/api/sessions")
def list_sessions():
    args = _args(schemas.sessions_query)
    rows, *_ = queries.list_sessions(g.user_id, {}, sort="updated_at", descending=True, limit=args["limit"])
    public = _public_ids(g.user_id)
    return {"sessions": [_session(row, public) for row in rows]}


@bp.get("/api/sessions/get")
def get_session():
    args = _args(schemas.session_query, ("id", schemas.MISSING_ID))
    row = _session_or_404(g.user_id, args["id"])
    limit, offset = args["messages_limit"], args["messages_offset"]
    messages = queries.session_messages(row["id"], limit + 1, offset)
    answer = {"session": _session(row, _public_ids(g.user_id)), "messages": [_message(m) for m in messages[:limit]]}
    if len(messages) > limit:  # OpenSync's shape, and where the rest is (its clients ignore the keys)
        answer.update(moreMessages=True, nextMessagesOffset=offset + limit)
    return answer


def answering(kind):
    """The search that answers a request for ``kind`` (fulltext, semantic, hybrid): that one
    when this install can run it, else full text (OpenSync's clients get an answer, and the
    X-Search-Type header says which), where /api/search would say 503."""
    if kind == "fulltext" or kind not in AVAILABLE_TYPES:
        return "fulltext"
    return kind if _semantic_here() else "fulltext"


def _semantic_here():
    """The semantic extra is installed, or an embeddings endpoint is named (no model load)."""
    from .semantic.encoders import settings

    try:
        import_module("numpy")
        if settings(current_app.config if has_app_context() else None)["url"] is None:
            import_module("wordllama")
    except ImportError:
        return False
    return True


def find_sessions(user_id, q, limit, kind):
    """(the engine used, session rows best first) for OpenSync's search and context."""
    engine = answering(kind)
    hits, _ = context.find_sessions(user_id, q, limit, kind=engine)
    ids = [hit["session_id"] for hit in hits]
    by_id = {row["id"]: row for row in queries.iter_sessions(user_id, {"ids": ids})} if ids else {}
    return engine, [by_id[i] for i in ids if i in by_id]


@bp.get("/api/search")
def search():
    args = _args(schemas.search_query, ("q", schemas.MISSING_Q))
    engine, rows = find_sessions(g.user_id, args["q"], args["limit"], args["type"])
    public = _public_ids(g.user_id) if args["type"] != "fulltext" else set()
    return {"results": [_found(row, public, args["type"]) for row in rows]}, {SEARCH_HEADER: engine}


def _hint(session, index):
    return f"GET /opensync/api/sessions/get?id={session['id']} (message {index})"


@bp.get("/api/context")
def session_context():
    """OpenSync finds the sessions by meaning (semanticSearch); this by meaning and words at once
    (hybrid), so a session still waiting for its vectors, or an exact identifier, is found too."""
    args = _args(schemas.context_query, ("q", schemas.MISSING_Q))
    engine = answering("hybrid")
    answer = context.build(g.user_id, args["q"], args["limit"], args["format"], {}, engine, args["max_chars"], _hint)
    return answer, {SEARCH_HEADER: engine}


@bp.get("/api/stats")
def stats():
    totals = queries.summary(g.user_id, {})
    usage = {}
    for row in totals["by"]["model"]:  # a session with no model counts as "unknown", as OpenSync's do
        into = usage.setdefault(row["key"] or "unknown", {"tokens": 0, "cost": 0, "sessions": 0})
        into["tokens"] += row["total_tokens"]
        into["cost"] += row["cost"]
        into["sessions"] += row["sessions"]
    return {"sessionCount": totals["sessions"], "messageCount": totals["messages"], "totalTokens": totals["total_tokens"],
            "totalCost": totals["cost"], "totalDurationMs": totals["duration_ms"], "modelUsage": usage}


# --- exports --------------------------------------------------------------------------------

def _filename(title, suffix):
    return f"{re.sub(r'[^a-zA-Z0-9]', '-', title) if title else 'session'}.{suffix}"


def _markdown(session, messages):
    out = [f"# {session['title'] or 'Untitled'}\n\n",
           f"- **Project:** {session['project_path'] or 'N/A'}\n", f"- **Model:** {session['model'] or 'N/A'}\n",
           f"- **Tokens:** {session['total_tokens']}\n", f"- **Cost:** ${session['cost']:.4f}\n\n---\n\n"]
    for m in messages:
        out.append(f"## {'User' if m['role'] == 'user' else 'Assistant'}\n\n")
        text = context.message_text(m)
        if text:
            out.append(f"{text}\n\n")
    return "".join(out)


@bp.get("/api/export")
@heavy
def export_session():
    """One session: OpenAI messages (json), {content, filename} (jsonl) or a Markdown file;
    secrets masked as in all our exports (``redact=false`` turns that off)."""
    args = _args(schemas.export_query, ("id", schemas.MISSING_ID))
    row = _session_or_404(g.user_id, args["id"])
    redactor = Redactor(args["redact"])
    session, messages = redactor.value(row), redactor.value(queries.session_messages(row["id"]))
    said = [{"role": m["role"], "content": context.message_text(m)} for m in messages]
    headers = {REDACTED_HEADER: str(redactor.total)}
    if args["format"] == "markdown":
        name = _filename(session["title"], "md")
        return Response(_markdown(session, messages), mimetype="text/markdown",
                        headers={**headers, "Content-Disposition": f'attachment; filename="{name}"'})
    if args["format"] == "jsonl":
        lines = "\n".join(to_json(line, separators=(",", ":")) for line in said)
        return {"content": lines, "filename": _filename(session["title"], "jsonl")}, headers
    return {"session": {"id": str(row["id"]), **_shape(session, (), ("title", "model"))}, "messages": said}, headers


@bp.get("/api/export/evals")
@heavy
def export_evals():
    return opensync_evals.download(g.user_id, _args(schemas.evals_query))


# --- sync: the same routes as ours, under the same base URL ---------------------------------

bp.add_url_rule("/sync/session", "sync_session", sync_sessions.sync_session, methods=["POST"])
bp.add_url_rule("/sync/message", "sync_message", sync_messages.sync_message, methods=["POST"])
bp.add_url_rule("/sync/sessions/list", "list_session_ids", sync_sessions.list_session_ids, methods=["GET"])


@bp.post("/sync/batch")
def sync_batch():
    """Ours, with OpenSync's ``errors``: a list of texts (ours are objects; ``errorCount`` is kept)."""
    answer = sync_messages.sync_batch()
    answer["errors"] = [f"{e['kind']} {e['index']}: {e['error']}" for e in answer["errors"]]
    return answer


@bp.get("/health")
def health():
    return {"status": "ok", "timestamp": now_ms()}
