"""The OpenAPI 3 document at /openapi.json, generated from the marshmallow schemas by apispec."""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from . import __version__, limits_wire, responses, schemas, stats

ERRORS = {
    "400": "Invalid body or query parameter: `fields` names each bad field.",
    "401": "Missing, malformed, unknown or revoked API key.",
    "404": "No such session for this key's user.",
    "403": "Share links are off on this server (serve --sharing turns them on).",
    "409": "The `id` is one session's id and another session's externalId (share links: also a loopback-only "
           "server without `confirm`).",
    "413": "Body over the size limit.",
    "429": "This key's user already runs as many exports or previews at once as the server allows: retry after "
           "the `Retry-After` seconds.",
}


HEAVY = ("400", "401", "429")  # the exports, bounded per user (heavy.py)


def _json(schema):
    return {"application/json": {"schema": schema}}


def _operation(summary, response, *, body=None, query=None, errors=("400", "401"), content=None, path_params=(),
               status="200"):
    op = {
        "summary": summary,
        "responses": {status: {"description": "OK", "content": content or _json(response)}},
        "security": [{"bearer": []}],
    }
    for code in errors:
        op["responses"][code] = {"description": ERRORS[code], "content": _json("Error")}
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    params = [{"in": "query", "schema": query}] if query is not None else []
    params += [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}} for name in path_params]
    if params:
        op["parameters"] = params
    return op


def build(server_url="/"):
    spec = APISpec(
        title="opensync-lite",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        servers=[{"url": server_url}],
        info={"description": "A local OpenSync server for AI coding-agent sessions."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "osk_…"})
    spec.components.schema("Error", schema=responses.Error)
    body_errors = ("400", "401", "413")
    spec.path("/health", operations={"get": {
        "summary": "Liveness, no key needed",
        "responses": {"200": {"description": "OK", "content": _json(responses.Health)}},
    }})
    spec.path("/sync/session", operations={"post": _operation(
        "Create or partially update a session", responses.SessionAck, body=schemas.SessionIn, errors=body_errors)})
    spec.path("/sync/message", operations={"post": _operation(
        "Create or replace a message", responses.MessageAck, body=schemas.MessageIn, errors=body_errors)})
    spec.path("/sync/batch", operations={"post": _operation(
        "Many sessions and messages in one transaction", responses.BatchAck, body=schemas.BatchDoc, errors=body_errors)})
    spec.path("/sync/sessions/list", operations={"get": _operation(
        "The externalIds already stored", responses.SessionIds, errors=("401",))})
    spec.path("/api/sessions", operations={
        "get": _operation(
            "Filtered, sorted sessions, one keyset page at a time", responses.SessionPage, query=schemas.SessionsQuery),
        "delete": _operation(
            "Delete a session by `id` or `externalId`", responses.Deleted, query=schemas.SessionQuery,
            errors=("400", "401", "404", "409")),
        "patch": _operation(
            "Star, tag, annotate or grade a session by `id` or `externalId`", responses.CuratedSession,
            query=schemas.SessionQuery, body=schemas.SessionPatch, errors=("400", "401", "404", "409")),
    })
    spec.path("/api/sessions/filters", operations={"get": _operation(
        "Distinct sources, models, providers and projects with counts", responses.FilterOptions, errors=("401",))})
    spec.path("/api/sessions/get", operations={"get": _operation(
        "One session with a page of its messages", responses.SessionDetail, query=schemas.SessionGetQuery,
        errors=("400", "401", "404", "409"))})
    spec.path("/api/sessions/{ident}", operations={
        "delete": _operation("Delete a session with its messages", responses.Deleted, errors=("401", "404", "409"),
                             path_params=("ident",)),
        "patch": _operation("Star, tag, annotate or grade a session", responses.CuratedSession, body=schemas.SessionPatch,
                            errors=("400", "401", "404", "409"), path_params=("ident",)),
    })
    spec.path("/api/files", operations={"get": _operation(
        "Files the sessions' tool calls read or changed, and the sessions that touched `path`",
        responses.FilesPage, query=schemas.FilesQuery)})
    spec.path("/api/search", operations={"get": _operation(
        "Full-text search over titles, projects, messages, tool calls and results, and thinking; one result per session", responses.SearchResults, query=schemas.SearchQuery)})
    spec.path("/api/context", operations={"get": _operation(
        "The last messages of the sessions that match `q`, as one prompt-ready text or as messages (OpenSync's "
        "shapes), secrets masked, cut to `maxChars`", responses.Context, query=schemas.ContextQuery)})
    spec.path("/api/export", operations={"get": _operation(
        "One session as JSON, JSON Lines or Markdown", None, query=schemas.ExportQuery,
        errors=("400", "401", "404", "409", "429"),
        content={"application/json": {"schema": responses.SessionDetail},
                 **{t: {"schema": {"type": "string"}} for t in ("application/x-ndjson", "text/markdown")}},
    )})
    spec.path("/api/export/sessions", operations={"get": _operation(
        "Filtered sessions as CSV or JSON, streamed", None, query=schemas.ExportSessionsQuery, errors=HEAVY,
        content={"text/csv": {"schema": {"type": "string"}},
                 "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/SessionOut"}}}},
    )})
    spec.path("/api/export/evals", operations={"get": _operation(
        "The filtered (or listed) sessions as an eval dataset: DeepEval JSON, OpenAI evals JSONL, Promptfoo JSONL "
        "or text, streamed, secrets masked", None, query=schemas.EvalsQuery, errors=HEAVY,
        content={"application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                 "application/x-ndjson": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}},
    )})
    spec.path("/api/export/evals/preview", operations={"get": _operation(
        "What that export holds: counts, sessions left out and why, secrets masked, its first cases",
        responses.EvalsPreview, query=schemas.EvalsQuery, errors=HEAVY)})
    spec.path("/api/sessions/{ident}/shares", operations={"post": _operation(
        "A share link to the session (/s/<slug>, no sign-in, redacted); 403 when the server does not allow "
        "sharing, 409 on a loopback-only server unless `confirm`", responses.ShareCreated, body=schemas.ShareIn,
        errors=("400", "401", "403", "404", "409"), path_params=("ident",), status="201")})
    spec.path("/api/shares", operations={"get": _operation(
        "Your share links that still work", responses.ShareList, errors=("401",))})
    spec.path("/api/shares/{share_id}", operations={"delete": _operation(
        "Revoke a share link (it then answers 404)", responses.Revoked, errors=("401", "404"), path_params=("share_id",))})
    spec.path("/api/stats", operations={"get": _operation(
        "Totals, distinct counts and usage per model", responses.Summary, query=schemas.StatsQuery)})
    for group, name in stats.GROUPS.items():
        spec.path(f"/api/stats/{group}", operations={"get": _operation(
            f"Usage per {name}", responses.group_schema(name, group), query=schemas.StatsQuery)})
    spec.path("/api/stats/daily", operations={"get": _operation(
        "Usage per UTC day, ISO week or month (`bucket`)", responses.DailyStats, query=schemas.StatsQuery)})
    spec.path("/api/stats/blocks", operations={"get": _operation(
        "5-hour billing blocks and weekly windows as ccusage 20 computes them: tokens per kind, cost, "
        "burn rate and the active block's projection", limits_wire.WindowsOut, query=limits_wire.BlocksQuery)})
    spec.path("/api/limits/snapshots", operations={
        "post": _operation("Keep what Claude Code's status line was given (rate_limits, cost, model; `machine`); "
                           "answers today's spend and this period's budget alerts", limits_wire.SnapshotStored,
                           body=limits_wire.SnapshotIn),
        "get": _operation("The status line's snapshots that carry quota figures, oldest first", limits_wire.SnapshotList,
                          query=limits_wire.SnapshotsQuery)})
    for name in ("BudgetOut", "AlertOut", "ChannelsOut"):
        spec.components.schema(name, schema=getattr(limits_wire, name))
    budget = {"type": "object", "properties": {"budget": {"$ref": "#/components/schemas/BudgetOut"}}}
    spec.path("/api/budgets", operations={
        "get": _operation("Your budgets with what was spent in their current period",
                          {"type": "object", "properties": {"budgets": {"type": "array", "items": {"$ref": "#/components/schemas/BudgetOut"}}}},
                          errors=("401",)),
        "post": _operation("A budget: alerts once at 80 % and 100 % of each period", budget, body=limits_wire.BudgetIn,
                           status="201")})
    spec.path("/api/budgets/{budget_id}", operations={
        "get": _operation("One budget", budget, errors=("401", "404"), path_params=("budget_id",)),
        "patch": _operation("Change a budget (the fields sent)", budget, body=limits_wire.BudgetIn,
                            errors=("400", "401", "404"), path_params=("budget_id",)),
        "delete": _operation("Delete a budget and its alerts", {"type": "object"}, errors=("401", "404"),
                             path_params=("budget_id",))})
    channels = {"type": "object", "properties": {"channels": {"$ref": "#/components/schemas/ChannelsOut"}}}
    spec.path("/api/budgets/channels", operations={
        "get": _operation("Where alerts go, and the webhook's signing secret", channels, errors=("401",)),
        "put": _operation("Set the webhook URL, the ntfy topic URL, the desktop switch", channels, body=limits_wire.ChannelsIn)})
    spec.path("/api/budgets/alerts", operations={"get": _operation(
        "The alerts that fired, newest first, with each delivery's state",
        {"type": "object", "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertOut"}}}},
        errors=("401",))})
    return spec.to_dict()
