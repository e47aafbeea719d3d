"""What each request body may hold, and how rows go back out.

The wire is camelCase and Python/SQL are snake_case: these schemas are the one place that maps
between them. Loading validates and returns snake_case dicts holding only the keys the client
sent (absent = keep the stored value); keys we do not model yet are gathered into ``extra``.
"""

import json
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


class Text(fields.String):
    """A string of bounded length with no NUL characters (they truncate text in many tools)."""

    def __init__(self, max_length, min_length=0, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(validate=validate.Length(min_length, max_length), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
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
    """Any JSON value, checked to be storable: re-encodable and without NUL characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (ValueError, RecursionError):
            raise ValidationError("Not a storable JSON value.") from None
        if "\\u0000" in encoded:
            raise ValidationError("Must not contain NUL characters.")
        return value


# --- request bodies -------------------------------------------------------------------------

class _Body(Schema):
    """Base for sync bodies: unknown keys are kept in ``extra``, nulls mean "not sent"."""

    class Meta:
        unknown = INCLUDE

    @pre_load
    def _must_be_object(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("Expected a JSON object.", "_schema")
        return data

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


class ListQuery(Schema):
    """Query string of GET /api/sessions."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


list_query = ListQuery()
