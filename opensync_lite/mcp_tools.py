"""The MCP server: tools that let an agent search and read the user's past sessions, on the
official SDK (the ``mcp`` extra). One server, two transports: stdio (``opensync-lite mcp``, one
user chosen by key) and streamable HTTP at /mcp (``mcp_http``, the user of each request's key).

Everything is read through ``queries``, ``context`` and the search package, as the JSON API
reads it; every result passes the exports' redaction step, and is sized for a model's context:
lists are short pages, long texts are cut with a note saying which call gives the rest."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from . import __version__, context, db, queries, schemas
from .errors import ApiError
from .export import iso, to_json
from .redact import Redactor
from .search.texts import TOOL_CALLS

PAGE_CHARS = 30_000  # of messages in one get_session answer
INSTRUCTIONS = (
    "Past coding-agent sessions of this user (Claude Code, OpenCode, Codex, ...), kept by opensync-lite. "
    "search_sessions finds sessions by their words, or by meaning (type=semantic or hybrid); get_context gives the last messages of the sessions that "
    "match a task, ready to read; get_session reads one session a page at a time (offset); recent_sessions, "
    "stats and sessions_for_file answer what was worked on, what it cost, and which sessions touched a file.")

Limit = Annotated[int, Field(ge=1, le=50, description="how many at most")]
Offset = Annotated[int, Field(ge=0, le=100_000, description="how many to skip: a previous answer's nextOffset")]
Source = Annotated[str | None, Field(description="only this agent: claude-code, opencode, codex, ... ('unknown': none)")]
Project = Annotated[str | None, Field(description="only this project (its name or folder)")]
DateFrom = Annotated[str | None, Field(description="only sessions started from this ISO date or date-time")]
DateTo = Annotated[str | None, Field(description="only sessions started before the end of this ISO date")]
SearchType = Annotated[Literal["fulltext", "semantic", "hybrid"], Field(
    description="how sessions are found: by their words (fulltext), by meaning (semantic), or both (hybrid)")]


def _filters(**given):
    """The sessions-list filters, checked by the API's own schema (its messages name the fields)."""
    wire = {"from": given.pop("date_from", None), "to": given.pop("date_to", None), **given}
    loaded = schemas.load(schemas.stats_query, {k: v for k, v in wire.items() if v is not None})
    return {k: v for k, v in loaded.items() if k not in ("days", "bucket", "file_prefix")}


def _session(row):
    """A session as a model reads it: who, where, when, how big."""
    return {"id": str(row["id"]), "externalId": row["external_id"], "title": row["title"],
            "project": row["project_name"] or row["project_path"], "source": row["source"], "model": row["model"],
            "createdAt": iso(row["created_at"]), "updatedAt": iso(row["updated_at"]),
            "messages": row["message_count"], "totalTokens": row["total_tokens"], "cost": round(row["cost"] or 0, 4)}


def _tools_of(message):
    names = []
    for part in message["parts"]:
        if part["type"] in TOOL_CALLS and isinstance(part["content"], dict):
            content = part["content"]
            name = content.get("name") or content.get("toolName") or content.get("tool")
            if isinstance(name, str):
                names.append(name)
    return names


def _metrics(row):
    return {"sessions": row["sessions"], "messages": row["messages"], "totalTokens": row["total_tokens"],
            "cost": round(row["cost"] or 0, 4), "lastActive": iso(row["last_active"]) or None}


def server(app, user_of):
    """The MCP server over ``app``'s database; ``user_of(ctx)`` is the id of the user a call
    reads for (stdio: the key's; HTTP: the request's)."""
    mcp = MCPServer("opensync-lite", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def read(ctx, body):
        user_id = user_of(ctx)
        with app.app_context():
            db.connect()
            try:
                result = Redactor().value(body(user_id))
                # Compact JSON: the SDK would indent a dict, spending the model's context on blanks.
                return result if isinstance(result, str) else to_json(result, separators=(",", ":"))
            except ApiError as err:
                fields = "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in (err.fields or {}).items())
                raise ToolError(f"{err.message} {fields}".strip()) from None

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def search_sessions(ctx: Context, query: Annotated[str, Field(min_length=1, max_length=500, description=(
            "words to find (each also the start of a longer word); \"a phrase\"; -word excludes; a OR b"))],
            limit: Limit = 10, offset: Offset = 0, source: Source = None, project: Project = None,
            date_from: DateFrom = None, date_to: DateTo = None, type: SearchType = "fulltext") -> str:
        """Find past sessions by what was said in them (prompts, answers, tool calls, titles): the best
        first, each with its best matching passages."""
        def body(user_id):
            _searchable(type)
            filters = _filters(source=source, project=project, date_from=date_from, date_to=date_to)
            hits, more = context.find_sessions(user_id, query, limit, filters, type, offset)
            results = [{"id": str(hit["session_id"]), "externalId": hit["external_id"], "title": hit["title"],
                        "project": hit["project_name"] or hit["project_path"], "source": hit["source"],
                        "model": hit["model"], "updatedAt": iso(hit["updated_at"]),
                        "matches": [{"foundIn": m["found_in"], "messageId": m["message_id"] and str(m["message_id"]),
                                     "text": context.plain_snippet(m["snippet"])} for m in hit["matches"]]}
                       for hit in hits]
            return {"results": results, "nextOffset": offset + len(hits) if more else None}
        return read(ctx, body)

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def get_session(ctx: Context, id: Annotated[str, Field(min_length=1, max_length=256, description=(
            "the session's id or externalId"))], offset: Offset = 0,
            limit: Annotated[int, Field(ge=1, le=200, description="messages at most")] = 20,
            max_chars: Annotated[int, Field(ge=200, le=100_000, description=(
                "characters of one message at most; longer ones are cut with a note"))] = context.MESSAGE_CHARS) -> str:
        """One session: what it was (project, agent, model, tokens, cost) and its messages in order, a page
        at a time (offset, limit); nextOffset is where the next page starts."""
        def body(user_id):
            row = _find(user_id, id)
            total = queries.message_count(row["id"])
            page, left, index = [], PAGE_CHARS, offset
            for index, message in enumerate(queries.session_messages(row["id"], limit, offset), start=offset):
                if left <= 0:
                    break
                more = f"call get_session with id={row['id']}, offset={index}, limit=1, max_chars=100000"
                text = context.cut(context.message_text(message), min(max_chars, max(left, 200)), more)
                left -= len(text)
                page.append({"index": index, "role": message["role"], "createdAt": iso(message["created_at"]),
                             "text": text, **({"tools": tools} if (tools := _tools_of(message)) else {})})
            following = offset + len(page)
            return {"session": _session(row), "totalMessages": total, "offset": offset, "messages": page,
                    "nextOffset": following if following < total else None}
        return read(ctx, body)

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def get_context(ctx: Context, query: Annotated[str, Field(min_length=1, max_length=500, description=(
            "what you are working on: the words past sessions would use"))],
            limit: Annotated[int, Field(ge=1, le=20, description="sessions at most")] = 5,
            format: Literal["text", "messages"] = "text", source: Source = None, project: Project = None,
            date_from: DateFrom = None, date_to: DateTo = None, type: SearchType = "fulltext",
            max_chars: Annotated[int, Field(ge=1000, le=200_000, description="the answer's length at most")] = 40_000,
            ) -> str:
        """The last messages of the past sessions that match a task, as one text ready to read (or as
        JSON messages, each with its session: format=messages), as OpenSync's /api/context gives them."""
        def body(user_id):
            wire = {"q": query, "limit": limit, "format": format, "type": type, "source": source,
                    "project": project, "from": date_from, "to": date_to, "maxChars": max_chars}
            args = schemas.load(schemas.context_query, {k: v for k, v in wire.items() if v is not None})
            filters = {k: args[k] for k in ("source", "project", "date_from", "date_to") if k in args}
            hint = lambda session, index: f"call get_session with id={session['id']}, offset={index}, limit=1"  # noqa: E731
            answer = context.build(user_id, args["q"], args["limit"], args["format"], filters, args["type"],
                                   args["max_chars"], hint)
            return answer["text"] if "text" in answer else answer  # the text as it is: ready to read
        return read(ctx, body)

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def recent_sessions(ctx: Context, limit: Limit = 10, project: Project = None, source: Source = None) -> str:
        """The sessions active most recently, newest first (of one project or agent, when given)."""
        def body(user_id):
            filters = _filters(project=project, source=source)
            rows, total, _, _ = queries.list_sessions(user_id, filters, sort="updated_at", descending=True, limit=limit)
            return {"sessions": [_session(row) for row in rows], "total": total}
        return read(ctx, body)

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def stats(ctx: Context, source: Source = None, project: Project = None, date_from: DateFrom = None,
              date_to: DateTo = None) -> str:
        """Totals (sessions, messages, tokens, cost) and the same per agent, model and project, the
        most sessions first (the first 15 of each)."""
        def body(user_id):
            totals = queries.summary(user_id, _filters(source=source, project=project, date_from=date_from,
                                                       date_to=date_to))
            # (a project is keyed by its folder and labelled by its name)
            by = {f"by{name.title()}": [{"key": row["key"], **({"label": row["label"]} if "label" in row else {}),
                                         **_metrics(row)} for row in totals["by"][name][:15]]
                  for name in ("source", "model", "project")}
            return {"totals": _metrics(totals), **by}
        return read(ctx, body)

    @mcp.tool(structured_output=False)  # the text is the answer: no copy of it as {"result": ...}
    def sessions_for_file(ctx: Context, path: Annotated[str, Field(min_length=1, max_length=4096, description=(
            "an absolute path, or one inside the project (src/app.py); ending in /, every file under it"))],
            limit: Limit = 10) -> str:
        """The sessions whose tool calls read or changed a file (newest first), with what each did to
        it, and the files that path matches."""
        def body(user_id):
            filters = _filters(file=path)
            files = queries.touched_files(user_id, path, False, 20)
            rows = queries.list_sessions(user_id, filters, sort="updated_at", descending=True, limit=limit)[0]
            touched = queries.files_of([row["id"] for row in rows], user_id, path)
            return {
                "files": [{"path": f["path"], "project": f["project"], "sessions": f["sessions"],
                           "changedIn": f["changed_sessions"], "lastActive": iso(f["last_active"])} for f in files],
                "sessions": [{**_session(row), "touched": [{"path": t["path"], "changed": t["changed"],
                                                            "messages": t["messages"]} for t in touched[row["id"]]]}
                             for row in rows],
            }
        return read(ctx, body)

    return mcp


def _searchable(kind):
    if kind not in context.AVAILABLE_TYPES:
        raise ToolError(f"type: `{kind}` search is not available on this server yet: use type=fulltext.")


def _find(user_id, ident):
    try:
        row = queries.find_session(user_id, ident)
    except queries.AmbiguousSession as err:
        by_id, by_external_id = err.rows
        raise ToolError(f"`{ident}` is the id of one session and the externalId of another: give the id "
                        f"{by_external_id['id']} or {by_id['id']}.") from None
    if row is None:
        raise ToolError("Session not found: give an id or externalId from search_sessions or recent_sessions.")
    return row


def run_stdio(app, user_id):
    """Serve the tools on stdin/stdout for one user until the client hangs up."""
    server(app, lambda ctx: user_id).run("stdio")
