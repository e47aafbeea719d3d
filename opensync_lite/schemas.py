"""What each request body may hold, and how rows go back out.

The wire is camelCase and Python/SQL are snake_case: these schemas are the one place that maps
between them. Loading validates and returns snake_case dicts holding only the keys the client
sent (absent = keep the stored value); keys we do not model yet are gathered into ``extra``.
"""

import base64
import json
import math
from datetime import datetime, timezone

from flask import request
from marshmallow import (
    EXCLUDE,
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
)

from .errors import ApiError

MAX_INT = 2**63 - 1  # SQLite INTEGER is a signed 64-bit value
MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
ROLES = ("user", "assistant", "system", "tool", "unknown")
MAX_PARTS = 10_000
MAX_DEPTH = 64
MAX_TEXT = 16 * 1024 * 1024


# --- fields ---------------------------------------------------------------------------------

class Count(fields.Integer):
    """A non-negative whole number that fits SQLite's INTEGER; booleans, floats and strings
    are refused rather than coerced."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, allow_none=True, validate=validate.Range(0, MAX_INT), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Amount(fields.Float):
    """A finite, non-negative JSON number (cost in USD)."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, allow_none=True, validate=validate.Range(0), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _storable_text(text):
    """Refuse what SQLite or other tools cannot keep: NUL characters (C strings end there) and
    lone UTF-16 surrogates, which JSON escapes can carry but UTF-8 cannot encode."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode (no lone surrogates).") from None


class Text(fields.String):
    """A string of bounded length that can be stored as UTF-8 text."""

    def __init__(self, max_length, min_length=0, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(validate=validate.Length(min_length, max_length), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        _storable_text(value)
        return value


class EpochMs(fields.Field):
    """A point in time: epoch milliseconds, or an ISO 8601 string (UTC if no offset).
    Loads to integer epoch milliseconds; dumps as-is."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid timestamp.")
        if isinstance(value, (int, float)):
            ms = value
        elif isinstance(value, str) and len(value) <= 64:
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("Not a valid ISO 8601 date or epoch milliseconds.") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ms = dt.timestamp() * 1000
        else:
            raise ValidationError("Not a valid timestamp.")
        if ms != ms or not 0 <= ms <= MAX_EPOCH_MS:
            raise ValidationError("Timestamp out of range.")
        return int(ms)


class JsonValue(fields.Raw):
    """Any JSON value that can be stored and served back: strings storable as UTF-8 text,
    finite numbers, and at most MAX_DEPTH levels deep (reading deeper JSON back would run
    into Python's recursion limit)."""

    def _deserialize(self, value, attr, data, **kwargs):
        pending = [(value, 1)]
        while pending:  # every string in it, keys included, without recursion
            item, depth = pending.pop()
            if isinstance(item, str):
                _storable_text(item)
            elif isinstance(item, float) and not math.isfinite(item):
                raise ValidationError("Numbers must be finite.")
            elif isinstance(item, (dict, list)):
                if depth > MAX_DEPTH:
                    raise ValidationError(f"Nested more than {MAX_DEPTH} levels deep.")
                children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
                pending.extend((child, depth + 1) for child in children)
        return value


# --- request bodies -------------------------------------------------------------------------

class _Body(Schema):
    """Base for sync bodies: unknown keys are kept in ``extra``, nulls mean "not sent"."""

    class Meta:
        unknown = INCLUDE
        # marshmallow itself refuses a body that is not an object ("Invalid input type.").

    @post_load
    def _split_extra(self, data, **kwargs):
        known = self.fields
        out = {k: v for k, v in data.items() if k in known and v is not None}
        extra = {k: v for k, v in data.items() if k not in known}
        if extra:
            try:
                JsonValue().deserialize(extra)
            except ValidationError as err:
                raise ValidationError({k: err.messages for k in extra}) from None
            out["extra"] = extra
        return out


class SessionIn(_Body):
    external_id = Text(256, 1, data_key="externalId", required=True, allow_none=False)
    source = Text(64)
    title = Text(4096)
    project_path = Text(4096, data_key="projectPath")
    project_name = Text(1024, data_key="projectName")
    model = Text(256)
    provider = Text(256)
    prompt_tokens = Count(data_key="promptTokens")
    completion_tokens = Count(data_key="completionTokens")
    cost = Amount()
    duration_ms = Count(data_key="durationMs")
    message_count = Count(data_key="messageCount")
    tool_call_count = Count(data_key="toolCallCount")
    end_reason = Text(256, data_key="endReason")
    created_at = EpochMs(data_key="createdAt", allow_none=True)

    @pre_load
    def _session_id_alias(self, data, **kwargs):
        # Some clients name the session's id `sessionId`; `externalId` wins when both are sent.
        if isinstance(data, dict) and "externalId" not in data and "sessionId" in data:
            data = dict(data)
            data["externalId"] = data.pop("sessionId")
        return data


class PartIn(_Body):
    type = Text(64, 1, required=True, allow_none=False)
    content = JsonValue(allow_none=True)


class MessageIn(_Body):
    session_external_id = Text(256, 1, data_key="sessionExternalId", required=True, allow_none=False)
    external_id = Text(256, 1, data_key="externalId", required=True, allow_none=False)
    role = fields.String(validate=validate.OneOf(ROLES), allow_none=True)
    text_content = Text(MAX_TEXT, data_key="textContent")
    model = Text(256)
    prompt_tokens = Count(data_key="promptTokens")
    completion_tokens = Count(data_key="completionTokens")
    duration_ms = Count(data_key="durationMs")
    source = Text(64)
    created_at = EpochMs(data_key="createdAt", allow_none=True)
    parts = fields.List(fields.Nested(PartIn), validate=validate.Length(max=MAX_PARTS), allow_none=True)


class BatchIn(Schema):
    """The envelope only: each item is validated on its own so one bad item spares the rest."""

    class Meta:
        unknown = EXCLUDE

    sessions = fields.List(fields.Raw(allow_none=True), load_default=list)
    messages = fields.List(fields.Raw(allow_none=True), load_default=list)

    @pre_load
    def _must_be_object(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("Expected a JSON object with `sessions` and `messages` lists.", "_schema")
        return data


session_in = SessionIn()
message_in = MessageIn()
batch_in = BatchIn()


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def json_body():
    """The request body parsed as strict JSON (no NaN/Infinity), or a 400."""
    raw = request.get_data(cache=False)  # over the body limit: werkzeug raises 413
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "Request body is not valid JSON.") from None


def load(schema, data):
    """Validate ``data`` with ``schema``; a failure becomes a 400 naming each bad field."""
    try:
        return schema.load(data)
    except ValidationError as err:
        raise ApiError(400, describe(err), fields=err.messages) from None


def describe(err):
    messages = err.messages
    if isinstance(messages, dict):
        names = ", ".join(str(k) for k in messages if k != "_schema")
        if names:
            return f"Invalid request: {names}."
        return "Invalid request: " + " ".join(map(str, messages.get("_schema", [])))
    return "Invalid request."


def read(schema):
    """Parse and validate the current request's body."""
    return load(schema, json_body())


# --- responses ------------------------------------------------------------------------------

class PartOut(Schema):
    type = fields.String()
    content = fields.Raw()


class MessageOut(Schema):
    id = fields.String()
    external_id = fields.String(data_key="externalId")
    role = fields.String()
    text_content = fields.String(data_key="textContent")
    model = fields.String(allow_none=True)
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    duration_ms = fields.Integer(data_key="durationMs")
    created_at = fields.Integer(data_key="createdAt")
    extra = fields.Dict(allow_none=True)
    parts = fields.List(fields.Nested(PartOut))


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
    cost = fields.Float()
    duration_ms = fields.Integer(data_key="durationMs")
    message_count = fields.Integer(data_key="messageCount")
    tool_call_count = fields.Integer(data_key="toolCallCount")
    end_reason = fields.String(data_key="endReason", allow_none=True)
    extra = fields.Dict(allow_none=True)
    created_at = fields.Integer(data_key="createdAt")
    updated_at = fields.Integer(data_key="updatedAt")


session_out = SessionOut()
message_out = MessageOut()


# --- query strings ----------------------------------------------------------------------------

SORTS = {
    "updatedAt": "updated_at",
    "createdAt": "created_at",
    "totalTokens": "total_tokens",
    "cost": "cost",
    "durationMs": "duration_ms",
    "messageCount": "message_count",
}


class DateParam(fields.Field):
    """An ISO 8601 date or date-time → epoch ms. A bare date as ``to`` means the end of that
    day, so ``from=2026-01-01&to=2026-01-31`` covers all of January."""

    def __init__(self, end=False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Not a valid ISO 8601 date.")
        ms = EpochMs()._deserialize(value, attr, data)
        if self.end and len(value) == 10:
            ms += 86_400_000
        return ms


class FiltersQuery(Schema):
    """The session filters every list, stats and export route takes."""

    class Meta:
        unknown = EXCLUDE

    source = Text(64, 1)
    model = Text(256, 1)
    provider = Text(256, 1)
    project = Text(4096, 1)
    q = Text(500)
    date_from = DateParam(data_key="from")
    date_to = DateParam(end=True, data_key="to")

    @post_load
    def _range(self, data, **kwargs):
        if data.get("date_from") is not None and data.get("date_to") is not None:
            if data["date_from"] >= data["date_to"]:
                raise ValidationError("`from` must be before `to`.", "to")
        return data


class StatsQuery(FiltersQuery):
    days = fields.Integer(load_default=30, validate=validate.Range(1, 3660))


def encode_cursor(sort, descending, key):
    raw = json.dumps([sort, descending, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor, sort, descending):
    """(value, id) from a cursor made by encode_cursor for the same sort, else ValidationError."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, got_desc, value, row_id = json.loads(raw)
    except (ValueError, TypeError):
        raise ValidationError("Not a cursor from this API.", "cursor") from None
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (got_sort, got_desc) != (sort, descending) or not numeric or type(row_id) is not int:
        raise ValidationError("The cursor belongs to another sort order or was altered.", "cursor")
    return value, row_id


class SessionsQuery(FiltersQuery):
    sort_by = fields.String(data_key="sortBy", load_default="updatedAt", validate=validate.OneOf(SORTS))
    sort_order = fields.String(data_key="sortOrder", load_default="desc", validate=validate.OneOf(("asc", "desc")))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=validate.Length(max=200))

    @post_load
    def _keyset(self, data, **kwargs):
        data["sort"] = SORTS[data.pop("sort_by")]
        data["descending"] = data.pop("sort_order") == "desc"
        cursor = data.pop("cursor", None)
        data["after"] = _decode_cursor(cursor, data["sort"], data["descending"]) if cursor else None
        return data


class ExportSessionsQuery(SessionsQuery):
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "json")))


class ExportQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    id = Text(256, 1, required=True, allow_none=False)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "jsonl", "markdown")))


class SearchQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    q = Text(500, 1, required=True, allow_none=False)
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 200))
    source = Text(64, 1)


sessions_query = SessionsQuery()
export_sessions_query = ExportSessionsQuery()
export_query = ExportQuery()
stats_query = StatsQuery()
search_query = SearchQuery()


# --- stats responses ----------------------------------------------------------------------------

class _Metrics(Schema):
    sessions = fields.Integer()
    messages = fields.Integer()
    prompt_tokens = fields.Integer(data_key="promptTokens")
    completion_tokens = fields.Integer(data_key="completionTokens")
    total_tokens = fields.Integer(data_key="totalTokens")
    cost = fields.Float()
    duration_ms = fields.Integer(data_key="durationMs")
    last_active = fields.Integer(data_key="lastActive", allow_none=True)


def group_schema(name):
    """Rows of a grouped stats query, the group value under ``name`` (source, model, ...)."""
    return type(f"{name.title()}Stats", (_Metrics,), {name: fields.Raw(attribute="key", allow_none=True)})(many=True)


class DayStats(_Metrics):
    date = fields.String()


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
    total_cost = fields.Float(attribute="cost", data_key="totalCost")
    total_duration_ms = fields.Integer(attribute="duration_ms", data_key="totalDurationMs")
    unique_models = fields.Integer(data_key="uniqueModels")
    unique_projects = fields.Integer(data_key="uniqueProjects")
    avg_tokens_per_session = fields.Float(data_key="avgTokensPerSession")
    avg_cost_per_session = fields.Float(data_key="avgCostPerSession")
    model_usage = fields.Dict(keys=fields.String(), values=fields.Nested(ModelUsage), data_key="modelUsage")


class SearchHit(Schema):
    kind = fields.String()
    session_id = fields.String(data_key="sessionId")
    external_id = fields.String(data_key="externalId")
    source = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    message_id = fields.String(data_key="messageId", allow_none=True)
    snippet = fields.String()
    rank = fields.Float()


summary_out = Summary()
day_stats_out = DayStats(many=True)
search_hits_out = SearchHit(many=True)
