"""What the API answers: marshmallow schemas that dump snake_case rows as camelCase JSON, and
document every answer in /openapi.json."""

from marshmallow import Schema, fields, post_dump


# --- sessions and messages ------------------------------------------------------------------------------

class PartOut(Schema):
    type = fields.String()
    content = fields.Raw()
    extra = fields.Dict(metadata={"description": "The part's other keys, as sent; only when it had some."})

    @post_dump
    def _omit_empty_extra(self, data, **kwargs):
        # Parts are many and most have no other keys: leave the key out rather than send null.
        if data.get("extra") is None:
            data.pop("extra", None)
        return data


class MessageOut(Schema):
    id = fields.String()
    external_id = fields.String(data_key="externalId")
    role = fields.String()
    text_content = fields.String(data_key="textContent")
    model = fields.String(allow_none=True)
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    input_tokens = fields.Integer(data_key="inputTokens")
    output_tokens = fields.Integer(data_key="outputTokens")
    cache_write_tokens = fields.Integer(data_key="cacheWriteTokens")
    cache_read_tokens = fields.Integer(data_key="cacheReadTokens")
    duration_ms = fields.Integer(data_key="durationMs")
    created_at = fields.Integer(data_key="createdAt")
    extra = fields.Dict(allow_none=True)
    parts = fields.List(fields.Nested(PartOut))


def _cost_basis(row):
    status = row.get("cost_status")
    if status is None:
        return "recorded" if row.get("cost") else None
    return {"estimated": "estimated", "unpriced": "unknown-model", "no-split": "no-token-split"}.get(status)


class SessionOut(Schema):
    id = fields.String()
    external_id = fields.String(data_key="externalId")
    source = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    project_path = fields.String(data_key="projectPath", allow_none=True)
    project_name = fields.String(data_key="projectName", allow_none=True)
    model = fields.String(allow_none=True)
    provider = fields.String(allow_none=True)
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    total_tokens = fields.Integer(data_key="totalTokens")
    input_tokens = fields.Integer(data_key="inputTokens")
    output_tokens = fields.Integer(data_key="outputTokens")
    cache_write_tokens = fields.Integer(data_key="cacheWriteTokens")
    cache_read_tokens = fields.Integer(data_key="cacheReadTokens")
    cost = fields.Float()
    cost_estimated = fields.Function(lambda row: row.get("cost_status") == "estimated", data_key="costEstimated",
                                     metadata={"type": "boolean", "description": "cost priced here, the client sent none"})
    unpriced = fields.Function(lambda row: row.get("cost_status") in ("unpriced", "no-split"),
                               metadata={"type": "boolean", "description": "cost unknown (see costBasis)"})
    cost_basis = fields.Function(lambda row: _cost_basis(row), data_key="costBasis", metadata={
        "type": "string", "nullable": True, "enum": ["recorded", "estimated", "unknown-model", "no-token-split", None],
        "description": "what cost was made from: recorded by the agent or its client; estimated here from the four "
                       "token kinds; unknown: a model with no known price, or tokens sent without their "
                       "input/cache split (waiting for the transcript or telemetry)"})
    duration_ms = fields.Integer(data_key="durationMs")
    message_count = fields.Integer(data_key="messageCount")
    tool_call_count = fields.Integer(data_key="toolCallCount")
    end_reason = fields.String(data_key="endReason", allow_none=True)
    parent_external_id = fields.String(data_key="parentExternalId", allow_none=True)
    extra = fields.Dict(allow_none=True)
    created_at = fields.Integer(data_key="createdAt")
    updated_at = fields.Integer(data_key="updatedAt")
    # What the user said of it (in lists and single sessions).
    starred = fields.Boolean()
    note = fields.String(allow_none=True)
    eval_status = fields.String(data_key="evalStatus", allow_none=True)
    tags = fields.List(fields.String())


session_out = SessionOut()
message_out = MessageOut()


# --- stats responses ----------------------------------------------------------------------------

class _Metrics(Schema):
    sessions = fields.Integer()
    messages = fields.Integer()
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    total_tokens = fields.Integer(data_key="totalTokens")
    cache_write_tokens = fields.Integer(data_key="cacheWriteTokens")
    cache_read_tokens = fields.Integer(data_key="cacheReadTokens")
    cost = fields.Float()
    unpriced_sessions = fields.Integer(data_key="unpricedSessions")
    duration_ms = fields.Integer(data_key="durationMs")
    last_active = fields.Integer(data_key="lastActive", allow_none=True)


class SubagentTotals(_Metrics):
    with_subagents = fields.Nested(_Metrics, data_key="withSubagents", metadata={
        "description": "the session's own totals plus its subagents'"})


PROJECT_LABEL = "the folder's last component (its whole path when two folders share it), or the name"


def group_schema(name, plural):
    """The answer of a grouped stats route: ``{plural: [rows]}``, each row with the group's
    value under ``name`` (source, model, ...) and the metrics."""
    extra = {"label": fields.String(allow_none=True, metadata={"description": PROJECT_LABEL})} if name == "project" else {}
    row = type(f"{name.title()}Stats", (_Metrics,), {name: fields.Raw(attribute="key", allow_none=True), **extra})
    return type(f"{plural.title()}Stats", (Schema,), {plural: fields.List(fields.Nested(row), required=True)})


class DayStats(_Metrics):
    date = fields.String(metadata={"description": "the first day of the bucket inside the range"})
    until = fields.String(metadata={"description": "its last day inside the range (= date for a day)"})


class ModelUsage(Schema):
    tokens = fields.Integer(attribute="total_tokens")
    cost = fields.Float()
    sessions = fields.Integer()


class Summary(Schema):
    session_count = fields.Integer(attribute="sessions", data_key="sessionCount")
    message_count = fields.Integer(attribute="messages", data_key="messageCount")
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    total_tokens = fields.Integer(data_key="totalTokens")
    cache_write_tokens = fields.Integer(data_key="cacheWriteTokens")
    cache_read_tokens = fields.Integer(data_key="cacheReadTokens")
    total_cost = fields.Float(attribute="cost", data_key="totalCost")
    unpriced_sessions = fields.Integer(data_key="unpricedSessions",
                                       metadata={"description": "sessions with tokens of a model that has no known price"})
    total_duration_ms = fields.Integer(attribute="duration_ms", data_key="totalDurationMs")
    unique_models = fields.Integer(data_key="uniqueModels")
    unique_projects = fields.Integer(data_key="uniqueProjects")
    avg_tokens_per_session = fields.Float(data_key="avgTokensPerSession")
    avg_cost_per_session = fields.Float(data_key="avgCostPerSession")
    model_usage = fields.Dict(keys=fields.String(), values=fields.Nested(ModelUsage), data_key="modelUsage")


class SearchMatch(Schema):
    kind = fields.String(metadata={"description": "session (its title or project) or message"})
    message_id = fields.String(data_key="messageId", allow_none=True)
    found_in = fields.String(data_key="foundIn", metadata={
        "description": "title, prompt, answer, tool, thinking, or message (a text of another role)"})
    snippet = fields.String(metadata={"description": "HTML: the text escaped, the matched words in <mark>"})
    rank = fields.Float(metadata={"description": "lower is better"})


class SearchHit(SearchMatch):
    """A matching session, with its best match's fields and its best matches (``matches``)."""

    session_id = fields.String(data_key="sessionId")
    external_id = fields.String(data_key="externalId")
    source = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    project_name = fields.String(data_key="projectName", allow_none=True)
    project_path = fields.String(data_key="projectPath", allow_none=True)
    model = fields.String(allow_none=True)
    created_at = fields.Integer(data_key="createdAt")
    updated_at = fields.Integer(data_key="updatedAt")
    matches = fields.List(fields.Nested(SearchMatch))


summary_out = Summary()
day_stats_out = DayStats(many=True)


# --- acknowledgements and errors (documented in /openapi.json) -----------------------------------

class Error(Schema):
    error = fields.String(required=True)
    field_error_count = fields.Integer(data_key="fieldErrorCount",
                                       metadata={"description": "how many bad fields in all, when `fields` holds only the first"})
    limit = fields.Integer(metadata={"description": "a 413's body limit, in bytes"})
    setting = fields.String(metadata={"description": "a 413's setting that moves the limit"})
    fields = fields.Dict(metadata={"description": "the bad fields (the first 20 when there are more)"})


class SessionAck(Schema):
    ok = fields.Boolean(required=True)
    session_id = fields.String(data_key="sessionId", required=True)


class MessageAck(Schema):
    ok = fields.Boolean(required=True)
    message_id = fields.String(data_key="messageId", required=True)


class BatchItemError(Schema):
    index = fields.Integer()
    kind = fields.String()
    error = fields.String()
    field_error_count = fields.Integer(data_key="fieldErrorCount",
                                       metadata={"description": "how many bad fields in all, when `fields` holds only the first 20"})
    fields = fields.Dict(allow_none=True)


class BatchAck(Schema):
    ok = fields.Boolean(required=True)
    sessions = fields.Integer(required=True)
    messages = fields.Integer(required=True)
    errors = fields.List(fields.Nested(BatchItemError), required=True,
                         metadata={"description": "the first 100 invalid items; errorCount says how many in all"})
    error_count = fields.Integer(data_key="errorCount", required=True)


class Health(Schema):
    status = fields.String(required=True)
    timestamp = fields.Integer(required=True)


class SessionIds(Schema):
    session_ids = fields.List(fields.String(), data_key="sessionIds", required=True)


class SessionPage(Schema):
    sessions = fields.List(fields.Nested(SessionOut), required=True)
    total = fields.Integer(required=True)
    next_cursor = fields.String(data_key="nextCursor", allow_none=True, required=True)
    previous_cursor = fields.String(data_key="previousCursor", allow_none=True, required=True)


class CuratedSession(Schema):
    session = fields.Nested(SessionOut, required=True)


class SessionFile(Schema):
    path = fields.String(required=True)
    rel_path = fields.String(data_key="relPath", allow_none=True,
                             metadata={"description": "inside the session's project; null when outside it"})
    changed = fields.Boolean(required=True, metadata={"description": "written, edited or patched (else only read)"})
    messages = fields.Integer(required=True, metadata={"description": "tool calls of the session on it"})


class SessionDetail(Schema):
    session = fields.Nested(SessionOut, required=True)
    subagents = fields.Nested(SubagentTotals, required=True, metadata={
        "description": "the totals of the sessions it ran as subagents (every level down; their own sessions, "
                       "with parentExternalId set), and withSubagents: its own totals plus theirs. The session's "
                       "own fields never include its subagents."})
    messages = fields.List(fields.Nested(MessageOut), required=True,
                           metadata={"description": "a page of its messages, in order (messagesLimit after messagesOffset)"})
    more_messages = fields.Boolean(data_key="moreMessages", required=True,
                                   metadata={"description": "more messages follow this page"})
    next_messages_offset = fields.Integer(data_key="nextMessagesOffset", allow_none=True, required=True,
                                          metadata={"description": "the messagesOffset of the next page, or null"})
    files = fields.List(fields.Nested(SessionFile), required=True,
                        metadata={"description": "the files its tool calls read or changed"})


class TouchedFile(Schema):
    path = fields.String(required=True)
    rel_path = fields.String(data_key="relPath", allow_none=True)
    sessions = fields.Integer(required=True, metadata={"description": "sessions that read or changed it"})
    changed_sessions = fields.Integer(data_key="changedSessions", required=True)
    last_active = fields.Integer(data_key="lastActive", allow_none=True)
    project = fields.String(allow_none=True, metadata={"description": "the project (its name, else its folder)"})


class SessionWithFiles(SessionOut):
    files = fields.List(fields.Nested(SessionFile), metadata={"description": "its files at the path asked for"})


session_with_files_out = SessionWithFiles()


class FilesPage(Schema):
    files = fields.List(fields.Nested(TouchedFile), required=True)
    sessions = fields.List(fields.Nested(SessionWithFiles), metadata={"description": "only when `path` is given"})
    total = fields.Integer()
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)
    previous_cursor = fields.String(data_key="previousCursor", allow_none=True)


class FilterOption(Schema):
    value = fields.String(allow_none=True, metadata={"description": (
        "what the filter takes; for projects the folder's path when a session tells it, else the name")})
    count = fields.Integer()
    label = fields.String(allow_none=True, metadata={"description": "projects only: " + PROJECT_LABEL})


class FilterOptions(Schema):
    sources = fields.List(fields.Nested(FilterOption))
    models = fields.List(fields.Nested(FilterOption))
    providers = fields.List(fields.Nested(FilterOption))
    projects = fields.List(fields.Nested(FilterOption))


class Deleted(Schema):
    ok = fields.Boolean(required=True)
    deleted = fields.String(required=True)


class SearchResults(Schema):
    results = fields.List(fields.Nested(SearchHit), required=True, metadata={
        "description": "one per session, best first, the newest first among equals"})
    next_offset = fields.Integer(data_key="nextOffset", allow_none=True, required=True, metadata={
        "description": "the `offset` of the next page; null on the last"})


class ContextMetadata(Schema):
    session_id = fields.String(data_key="sessionId", required=True)
    session_title = fields.String(data_key="sessionTitle", metadata={"description": "left out when it has none"})


class ContextMessage(Schema):
    role = fields.String(required=True)
    content = fields.String(required=True)
    metadata = fields.Nested(ContextMetadata, required=True)


class Context(Schema):
    """/api/context: ``text`` (format=text) or ``messages`` (format=messages), as OpenSync answers."""
    text = fields.String()
    messages = fields.List(fields.Nested(ContextMessage))
    session_count = fields.Integer(data_key="sessionCount", required=True)


class DailyStats(Schema):
    days = fields.List(fields.Nested(DayStats), required=True)


class Redacted(Schema):
    total = fields.Integer(required=True, metadata={"description": "secrets masked"})
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), data_key="byKind", required=True)


class EvalsPreview(Schema):
    sessions = fields.Integer(required=True, metadata={"description": "every session the download reads"})
    cases = fields.Integer(required=True, metadata={"description": "the cases of the sessions scanned"})
    partial = fields.Boolean(required=True, metadata={
        "description": "the preview read only the first `scanned` sessions (its time and size budget ran out): "
                       "cases, skipped, warnings and redacted count those"})
    scanned = fields.Integer(required=True, metadata={"description": "sessions read, the file's first"})
    of = fields.Integer(required=True, metadata={"description": "sessions matching, counted in SQL"})
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "sessions that gave no case, by reason"})
    warnings = fields.List(fields.String(), required=True)
    redacted = fields.Nested(Redacted, required=True)
    samples = fields.List(fields.Raw(), required=True, metadata={"description": "the first cases, as the file has them"})


class ShareOut(Schema):
    id = fields.String(required=True)
    url = fields.Function(lambda row: row["url"], required=True, metadata={"type": "string"})
    session_id = fields.String(data_key="sessionId", attribute="session", required=True)
    title = fields.String(allow_none=True)
    created_at = fields.Integer(data_key="createdAt", required=True)
    views = fields.Integer(required=True)


class ShareCreated(Schema):
    share = fields.Nested(ShareOut, required=True)


class ShareList(Schema):
    sharing = fields.Boolean(required=True, metadata={"description": "whether this server serves share links"})
    shares = fields.List(fields.Nested(ShareOut), required=True)


class Revoked(Schema):
    ok = fields.Boolean(required=True)
    revoked = fields.String(required=True)


share_out = ShareOut()
