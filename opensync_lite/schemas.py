"""What each request body and query string may hold (answers are in ``responses``).

The wire is camelCase and Python/SQL are snake_case: the schemas here and in ``responses`` are
the one place that maps between them. Loading validates and returns snake_case dicts holding
only the keys the client sent (absent = keep the stored value); keys we do not model yet are
gathered into ``extra``.
"""

import base64
import json
import logging
import math
import re
from datetime import datetime, timedelta, timezone

from flask import request
from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    post_load,
    pre_load,
    validate,
    validates,
)

from .errors import ApiError

# Upper bounds far past any real session (a trillion tokens, 31 years, a billion dollars) that
# keep sums over millions of sessions inside SQLite's 64-bit integers and finite floats.
MAX_COUNT = 10**12
MAX_COST = 1e9
MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
MIN_EPOCH_MS = -62135596800000  # 0001-01-01T00:00:00Z
INT64 = 2**63
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ROLES = ("user", "assistant", "system", "tool", "unknown")
UNKNOWN_SOURCE = "unknown"  # the filter value for sessions with no source
MAX_PARTS = 10_000
MAX_DEPTH = 64
MAX_TEXT = 16 * 1024 * 1024
# A batch holds at most this many items (sessions + messages): a long session's messages fit
# many times over, and a bigger one would hold the write lock for seconds.
MAX_BATCH_ITEMS = 10_000
EVAL_STATUSES = ("golden", "correct", "incorrect", "needs-review")
# OpenSync's spellings of what we store otherwise: read as ours wherever they come in.
EVAL_STATUS_ALIASES = {"needs_review": "needs-review"}
SOURCE_ALIASES = {"cursor-sync": "cursor"}  # OpenSync's name for what its cursor plugin sends


# --- fields ---------------------------------------------------------------------------------

# These fields check their bounds in _deserialize and state them in metadata for /openapi.json,
# rather than through marshmallow validators: a batch runs them thousands of times per request.

class Count(fields.Integer):
    """A whole number from 0 to MAX_COUNT; booleans, floats and strings are refused rather
    than coerced."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, allow_none=True, metadata={"minimum": 0, "maximum": MAX_COUNT}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not int:  # bool is a subclass of int, and is refused too
            raise self.make_error("invalid")
        if not 0 <= value <= MAX_COUNT:
            raise ValidationError(f"Must be from 0 to {MAX_COUNT}.")
        return value


class Amount(fields.Float):
    """A JSON number from 0 to MAX_COST (cost in USD)."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, allow_none=True, metadata={"minimum": 0, "maximum": MAX_COST}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float):
            raise self.make_error("invalid")
        if not 0 <= value <= MAX_COST:  # NaN fails this too
            raise ValidationError(f"Must be a number from 0 to {MAX_COST:.0f}.")
        return float(value)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
repairs = logging.getLogger("opensync_lite.repairs")


def _storable_text(text):
    """Refuse what SQLite or other tools cannot keep: NUL characters (C strings end there) and
    lone UTF-16 surrogates, which JSON escapes can carry but UTF-8 cannot encode."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    if LONE_SURROGATE.search(text):
        raise ValidationError("Must be valid Unicode (no lone surrogates).") from None


def repaired(text, name):
    """``text`` with each lone surrogate replaced by U+FFFD. Real clients send them: the
    claude-code-sync plugin cuts titles at 80 UTF-16 units, through an emoji's pair. (JSON
    decoding has already joined every valid pair, so a surrogate left in a str is a lone one.)"""
    fixed, count = LONE_SURROGATE.subn("\ufffd", text)
    if count:
        repairs.warning("repaired %d lone UTF-16 surrogate(s) in %s", count, name)
    return fixed


class Text(fields.String):
    """A string of bounded length that can be stored as UTF-8 text. A lone surrogate is
    repaired (``repair``, the default) or, in ids, refused: repairing could make two ids one."""

    def __init__(self, max_length, min_length=0, repair=True, **kwargs):
        kwargs.setdefault("allow_none", True)
        # The pattern documents the NUL rule; a description given beside it is kept.
        kwargs["metadata"] = {"minLength": min_length, "maxLength": max_length, "pattern": "^[^\x00]*$",
                              **kwargs.get("metadata", {})}
        self.min_length, self.max_length, self.repair = min_length, max_length, repair
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not str:
            raise self.make_error("invalid")
        if not self.min_length <= len(value) <= self.max_length:
            raise ValidationError(f"Length must be from {self.min_length} to {self.max_length}.")
        if self.repair:
            value = repaired(value, self.data_key or attr)
        _storable_text(value)
        return value


class Source(Text):
    """A session's source. "unknown" is what the filters call a session without one, so a
    client sending it has said nothing: it is read as not sent, and never stored."""

    def __init__(self, **kwargs):
        super().__init__(64, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        return None if value == UNKNOWN_SOURCE else SOURCE_ALIASES.get(value, value)


class SourceFilter(Text):
    """A source to filter on: OpenSync's names read as ours (``cursor-sync`` is ``cursor``)."""

    def __init__(self, **kwargs):
        super().__init__(64, 1, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        return SOURCE_ALIASES.get(value, value)


class EvalStatus(fields.String):
    """golden, correct, incorrect or needs-review; OpenSync's ``needs_review`` is read as
    ``needs-review``."""

    def __init__(self, extra=(), **kwargs):
        self.choices = (*EVAL_STATUSES, *extra)
        kwargs.setdefault("metadata", {"enum": [*self.choices, *EVAL_STATUS_ALIASES]})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        value = EVAL_STATUS_ALIASES.get(value, value)
        if value not in self.choices:
            raise ValidationError(f"Must be one of: {', '.join(self.choices)}.")
        return value


ISO_FRACTION = re.compile(r"(\.\d{1,6})\d*")
# A leap second (23:59:60) is read as :59; 60 anywhere else is an error, as is a 60-minute offset.
LEAP_SECOND = re.compile(r"(T\d\d:?\d\d:?)60(?=[.,+-]|$)")
OFFSET_MINUTES = re.compile(r"[+-]\d\d:?(\d\d)$")


def parse_iso(value):
    """ISO 8601 / RFC 3339 text → aware datetime (UTC when no offset is given); accepts a
    lowercase t/z, more than 6 fractional digits and a leap second (read as :59)."""
    text = value.strip().upper().replace("Z", "+00:00")
    text = ISO_FRACTION.sub(r"\1", text, count=1)
    text = LEAP_SECOND.sub(r"\g<1>59", text, count=1)
    offset = OFFSET_MINUTES.search(text) if "T" in text else None
    if offset and int(offset.group(1)) > 59:
        raise ValueError("offset minutes must be in 0..59")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


class EpochMs(fields.Field):
    """A point in time: epoch milliseconds, or an ISO 8601 string (UTC if no offset).
    Loads to integer epoch milliseconds; dumps as-is."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {"oneOf": [
            {"type": "number", "minimum": 0, "maximum": MAX_EPOCH_MS},
            {"type": "string", "format": "date-time"},
        ]})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid timestamp.")
        if isinstance(value, (int, float)):
            ms = value
            if ms != ms or not 0 <= ms <= MAX_EPOCH_MS:
                raise ValidationError("Epoch milliseconds out of range.")
        elif isinstance(value, str) and len(value) <= 64:
            try:
                ms = (parse_iso(value) - EPOCH) // timedelta(milliseconds=1)
            except (ValueError, OverflowError):
                raise ValidationError("Not a valid ISO 8601 date or epoch milliseconds.") from None
            if not MIN_EPOCH_MS <= ms <= MAX_EPOCH_MS:
                raise ValidationError("Timestamp out of range.")
        else:
            raise ValidationError("Not a valid timestamp.")
        return int(ms)


class JsonValue(fields.Raw):
    """Any JSON value at most MAX_DEPTH levels deep (reading deeper JSON back would run into
    Python's recursion limit). It is stored as ASCII JSON text, where NULs and lone
    surrogates are escapes, so any string in it is kept as sent."""

    def _deserialize(self, value, attr, data, **kwargs):
        pending = [(value, 1)]
        while pending:  # without recursion: the value may be nested deeper than we allow
            item, depth = pending.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise ValidationError("Numbers must be finite.")
            if isinstance(item, (dict, list)):
                if depth > MAX_DEPTH:
                    raise ValidationError(f"Nested more than {MAX_DEPTH} levels deep.")
                pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
        return value


# --- request bodies -------------------------------------------------------------------------

EXTRA = "extra"  # where the keys a schema does not model are gathered


class _Body(Schema):
    """Base for sync bodies: unknown keys are kept in ``extra``, nulls mean "not sent".

    Known fields are matched by their wire (camelCase) names only. Every other key, including
    a field's Python name (``prompt_tokens``) and a client's own ``extra``, is moved into
    ``extra`` before the fields run, so nothing reaches the model unvalidated."""

    class Meta:
        # The only key left unknown is `extra`, made by _gather_extra, which INCLUDE passes
        # through untouched (and /openapi.json then documents that any other key is welcome).
        unknown = INCLUDE
        # marshmallow itself refuses a body that is not an object ("Invalid input type.").

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._wire_names = frozenset(field.data_key or name for name, field in self.load_fields.items())
        # A field without validators or load functions of its own is its _deserialize for any
        # value sent (not missing, not null): Field.deserialize adds nothing else to it.
        self._by_wire = tuple((field.data_key or name, name, field,
                               not (field.validators or field.pre_load or field.post_load))
                              for name, field in self.load_fields.items())

    def load(self, data, *, many=None, partial=None, unknown=None):
        """Schema.load, in one pass for a valid body: the same hooks and each field's own
        ``deserialize`` (its rules, validators and default), without the bookkeeping marshmallow
        keeps to report every error at once. An import loads a body per message, and this is
        several times faster. A body with an error is loaded again by Schema.load, so the
        errors answered are marshmallow's own."""
        if many or partial or unknown is not None or type(data) is not dict:
            return super().load(data, many=many, partial=partial, unknown=unknown)
        try:
            known = self._gather_extra(data)
            out = {}
            for key, name, field, plain in self._by_wire:
                value = known.get(key, missing)
                if plain and value is not missing and value is not None:
                    value = field._deserialize(value, key, known)
                else:
                    value = field.deserialize(value, key, known)
                if value is not missing:
                    out[name] = value
            if EXTRA in known:  # unknown = INCLUDE: _gather_extra leaves only `extra` unknown
                out[EXTRA] = known[EXTRA]
            return self._drop_nulls(out)
        except ValidationError:
            return super().load(data)

    def _prepare(self, data):
        """Wire-level renames and cheap early refusals (before the fields run)."""
        return data

    @pre_load
    def _gather_extra(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow answers "Invalid input type."
        data = self._prepare(data)
        wire = self._wire_names
        if wire.issuperset(data):
            return data  # the usual case: nothing to gather
        known = {k: v for k, v in data.items() if k in wire}
        known[EXTRA] = {k: v for k, v in data.items() if k not in wire}
        return known

    @post_load
    def _drop_nulls(self, data, **kwargs):
        extra = data.pop(EXTRA, None)
        out = {k: v for k, v in data.items() if v is not None}
        if extra:
            try:
                JsonValue().deserialize(extra)
            except ValidationError as err:
                raise ValidationError({k: err.messages for k in extra}) from None
            out[EXTRA] = extra
        return self._finish(out)

    def _finish(self, data):
        """What a schema derives from the loaded body (after `extra` is gathered)."""
        return data


class SessionIn(_Body):
    external_id = Text(256, 1, repair=False, data_key="externalId", required=True, allow_none=False)
    source = Source()
    title = Text(4096)
    project_path = Text(4096, data_key="projectPath")
    project_name = Text(1024, data_key="projectName")
    model = Text(256)
    provider = Text(256)
    prompt_tokens = Count(data_key="promptTokens")
    completion_tokens = Count(data_key="completionTokens")
    total_tokens = Count(data_key="totalTokens")  # counts when larger than prompt + completion
    input_tokens = Count(data_key="inputTokens")
    output_tokens = Count(data_key="outputTokens")
    cache_write_tokens = Count(data_key="cacheWriteTokens")
    cache_read_tokens = Count(data_key="cacheReadTokens")
    cost = Amount()
    duration_ms = Count(data_key="durationMs")
    message_count = Count(data_key="messageCount")
    tool_call_count = Count(data_key="toolCallCount")
    end_reason = Text(256, data_key="endReason")
    parent_external_id = Text(256, 1, repair=False, data_key="parentExternalId")
    created_at = EpochMs(data_key="createdAt", allow_none=True)

    def _prepare(self, data):
        # Some clients name the session's id `sessionId`; `externalId` wins when both are sent.
        if "externalId" not in data and "sessionId" in data:
            data = dict(data)
            data["externalId"] = data.pop("sessionId")
        return data


class PartIn(_Body):
    type = Text(64, 1, required=True, allow_none=False)
    content = JsonValue(allow_none=True)


class MessageIn(_Body):
    session_external_id = Text(256, 1, repair=False, data_key="sessionExternalId", required=True, allow_none=False)
    external_id = Text(256, 1, repair=False, data_key="externalId", required=True, allow_none=False)
    role = fields.String(validate=validate.OneOf(ROLES), allow_none=True)
    text_content = Text(MAX_TEXT, data_key="textContent")
    model = Text(256)
    prompt_tokens = Count(data_key="promptTokens")
    completion_tokens = Count(data_key="completionTokens")
    input_tokens = Count(data_key="inputTokens")
    output_tokens = Count(data_key="outputTokens")
    cache_write_tokens = Count(data_key="cacheWriteTokens")
    cache_read_tokens = Count(data_key="cacheReadTokens")
    duration_ms = Count(data_key="durationMs")
    source = Source()
    created_at = EpochMs(data_key="createdAt", allow_none=True)
    parts = fields.List(fields.Nested(PartIn), validate=validate.Length(max=MAX_PARTS), allow_none=True)

    def _finish(self, data):
        # The cursor plugin says when a message happened as `timestamp` (kept in extra, as
        # sent): without createdAt that is its time, never the arrival time.
        stamp = data.get("extra", {}).get("timestamp")
        if "created_at" not in data and stamp is not None:
            if type(stamp) in (int, float) and 0 < stamp < 10**11:
                stamp *= 1000  # seconds
            try:
                data["created_at"] = EpochMs().deserialize(stamp)
            except ValidationError:
                pass  # not a time: it stays in extra only
        return data

    def _prepare(self, data):
        # Count before validating each part: a million parts would cost seconds to refuse.
        parts = data.get("parts")
        if isinstance(parts, list) and len(parts) > MAX_PARTS:
            raise ValidationError(f"Longer than maximum length {MAX_PARTS}.", "parts")
        return data


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
        sizes = {name: len(data[name]) for name in ("sessions", "messages") if isinstance(data.get(name), list)}
        if sum(sizes.values()) > MAX_BATCH_ITEMS:
            # Counted before any item is looked at: refusing a huge batch must stay cheap.
            raise ValidationError(f"At most {MAX_BATCH_ITEMS} items (sessions and messages together) per batch; "
                                  "send the rest in another batch.", max(sizes, key=sizes.get))
        return data


class BatchDoc(Schema):
    """The batch body as documented: lists of session and message bodies (other keys are
    ignored)."""

    class Meta:
        unknown = INCLUDE

    # Items are checked one by one, an invalid one answered in `errors` while the rest are
    # stored, so any value is a valid item here.
    sessions = fields.List(fields.Raw(allow_none=True), metadata={"description": "SessionIn bodies"})
    messages = fields.List(fields.Raw(allow_none=True), metadata={"description": "MessageIn bodies"})


session_in = SessionIn()
message_in = MessageIn()
# The fields an importer's message has (a schema with fewer fields loads a quarter faster, and
# a history is many thousands of messages); the same rules, unknown keys kept in extra.
message_from_file = MessageIn(only=("session_external_id", "external_id", "source", "role", "text_content",
                                    "created_at", "model", "parts"))
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


# A 400 names at most this many bad fields (the first ones, in order) and counts the rest in
# `fieldErrorCount`: 10 000 invalid parts must not answer ten thousand errors.
MAX_FIELD_ERRORS = 20


def bound_errors(messages, limit=MAX_FIELD_ERRORS):
    """``messages`` (marshmallow's nested errors) cut to their first ``limit`` fields' errors,
    and how many fields' errors there were."""
    if not isinstance(messages, dict):
        return messages, 1
    kept, total = {}, 0
    for name, value in messages.items():
        if isinstance(value, dict):
            inner, count = bound_errors(value, max(limit - total, 0))
            if inner:
                kept[name] = inner
        else:
            count = 1
            if total < limit:
                kept[name] = value
        total += count
    return kept, total


def load(schema, data):
    """Validate ``data`` with ``schema``; a failure becomes a 400 naming each bad field (the
    first MAX_FIELD_ERRORS of them; ``field_error_count`` says how many there were if more)."""
    try:
        return schema.load(data)
    except ValidationError as err:
        fields_, count = bound_errors(err.messages)
        raise ApiError(400, describe(err), fields=fields_,
                       field_error_count=count if count > MAX_FIELD_ERRORS else None) from None


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


def read_query(schema):
    """Validate the current request's query string; each parameter may be given once."""
    repeated = {name: ["Give this parameter once."] for name, values in request.args.lists() if len(values) > 1}
    if repeated:
        raise ApiError(400, f"Invalid request: {', '.join(repeated)}.", fields=repeated)
    return load(schema, request.args.to_dict())


# --- query strings ----------------------------------------------------------------------------

SORTS = {
    "updatedAt": "updated_at",
    "createdAt": "created_at",
    "totalTokens": "total_tokens",
    "cost": "cost",
    "durationMs": "duration_ms",
    "messageCount": "message_count",
}


DATE_ONLY = re.compile(r"\d{4}-\d\d-\d\d|\d{8}")
EPOCH_MS_TEXT = re.compile(r"-?\d{9,16}")


class DateParam(fields.Field):
    """An ISO 8601 date or date-time, or epoch milliseconds (a plain number of 9 or more
    digits; 8 digits are a basic date, 20260131) → epoch ms. A bare date as ``to`` means the
    end of that day, so ``from=2026-01-01&to=2026-01-31`` covers all of January."""

    def __init__(self, end=False, **kwargs):
        self.end = end
        kwargs.setdefault("metadata", {"type": "string", "oneOf": [
            {"format": "date"}, {"format": "date-time"}, {"pattern": "^[0-9]{9,16}$"}]})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Not a valid ISO 8601 date or epoch milliseconds.")
        value = value.strip()
        if EPOCH_MS_TEXT.fullmatch(value):
            ms = EpochMs()._deserialize(int(value), attr, data)
        else:
            ms = EpochMs()._deserialize(value, attr, data)
        if not 0 <= ms < MAX_EPOCH_MS - 86_400_000:
            raise ValidationError("Dates run from 1970-01-01 to 9999-12-30.")
        if self.end and DATE_ONLY.fullmatch(value):
            ms += 86_400_000
        return ms


class FiltersQuery(Schema):
    """The session filters every list, stats and export route takes."""

    class Meta:
        unknown = RAISE  # a misspelt parameter is an error, not silently ignored

    source = SourceFilter()
    model = Text(256, 1)
    provider = Text(256, 1)
    project = Text(4096, 1)
    parent = Text(256, 1, metadata={"description": "externalId of a session: its subagents' sessions"})
    q = Text(500)
    date_from = DateParam(data_key="from")
    date_to = DateParam(end=True, data_key="to")
    starred = fields.Boolean(metadata={"description": "true: starred sessions only; false: the others"})
    tag = Text(64, 1)
    eval_status = EvalStatus(data_key="evalStatus")
    file = Text(4096, 1, metadata={"description": (
        "sessions whose tool calls read or changed this file: an absolute path, or one inside the "
        "session's project (`src/parser.py`); ending in `/`, any file under that folder")})
    file_prefix = fields.Boolean(data_key="filePrefix", load_default=False,
                                 metadata={"description": "true: `file` matches every path that starts with it"})
    tests = fields.Boolean(metadata={"description": (
        "false: leave out claude-code-sync's connection tests (synctest's \"Connection Test\" session)")})

    @post_load
    def _range(self, data, **kwargs):
        if data.get("date_from") is not None and data.get("date_to") is not None:
            if data["date_from"] >= data["date_to"]:
                raise ValidationError("`from` must be before `to`.", "to")
        return data


class StatsQuery(FiltersQuery):
    # A connection test is no work done: stats leave it out unless asked (lists show it, marked).
    tests = fields.Boolean(load_default=False, metadata={"description": "true: count claude-code-sync's connection tests too"})
    days = fields.Integer(load_default=30, validate=validate.Range(1, 3660))
    bucket = fields.String(load_default="day", validate=validate.OneOf(("day", "week", "month")), metadata={
        "description": "/api/stats/daily: one row per UTC day, ISO week (from Monday) or calendar month"})


def encode_cursor(sort, descending, key):
    raw = json.dumps([sort, descending, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor, sort, descending, field="cursor"):
    """(value, id) from a cursor made by encode_cursor for the same sort, else ValidationError."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, got_desc, value, row_id = json.loads(raw)
    except (ValueError, TypeError):
        raise ValidationError("Not a cursor from this API.", field) from None
    numeric = type(value) in (int, float) and -INT64 <= value < INT64  # NaN and 1e400 fail too
    if (got_sort, got_desc) != (sort, descending) or not numeric or type(row_id) is not int or not 0 <= row_id < INT64:
        raise ValidationError("The cursor belongs to another sort order or was altered.", field)
    return value, row_id


class SessionsQuery(FiltersQuery):
    sort_by = fields.String(data_key="sortBy", load_default="updatedAt", validate=validate.OneOf(SORTS))
    sort_order = fields.String(data_key="sortOrder", load_default="desc", validate=validate.OneOf(("asc", "desc")))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=validate.Length(max=200), metadata={"description": "nextCursor of a page: the page after it"})
    before = fields.String(validate=validate.Length(max=200), metadata={"description": "previousCursor of a page: the page before it"})
    last = fields.Boolean(load_default=False, metadata={"description": "true: the last page"})
    subagents = fields.String(validate=validate.OneOf(("fold", "show")), metadata={
        "description": "fold: leave subagents' sessions out (their parents stay); show (the default): list them too"})

    @post_load
    def _keyset(self, data, **kwargs):
        data["sort"] = SORTS[data.pop("sort_by")]
        data["descending"] = data.pop("sort_order") == "desc"
        cursor, before = data.pop("cursor", None), data.pop("before", None)
        if cursor and before:
            raise ValidationError("Give `cursor` or `before`, not both.", "before")
        if data["last"] and (cursor or before):
            raise ValidationError("Give `last` without `cursor` or `before`.", "last")
        data["after"] = _decode_cursor(cursor, data["sort"], data["descending"]) if cursor else None
        data["before"] = _decode_cursor(before, data["sort"], data["descending"], "before") if before else None
        return data


class FilesQuery(SessionsQuery):
    """GET /api/files: the files at ``path`` (all files without it) and the sessions that
    touched them; the session filters and paging apply to those sessions."""

    path = Text(4096, 1)
    prefix = fields.Boolean(load_default=False, metadata={"description": "true: every path that starts with `path`"})
    files_limit = fields.Integer(data_key="filesLimit", load_default=200, validate=validate.Range(1, 1000))

    @post_load
    def _path_is_the_file_filter(self, data, **kwargs):
        if "path" in data:
            data["file"], data["file_prefix"] = data.pop("path"), data.pop("prefix")
        else:
            data.pop("prefix")
        return data


class IdList(fields.String):
    """Session ids as `1,2,3` (a query string may hold each parameter once)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items or len(items) > 1000 or not all(item.isascii() and item.isdigit() and len(item) < 19 for item in items):
            raise ValidationError("Give 1 to 1000 session ids, separated by commas.")
        return [int(item) for item in items]


class EvalsQuery(FiltersQuery):
    """An evals export of the filtered sessions (or of those in ``ids``)."""

    format = fields.String(load_default="deepeval", validate=validate.OneOf(("deepeval", "openai", "promptfoo", "text")))
    granularity = fields.String(load_default="turn", validate=validate.OneOf(("turn", "session", "final")),
                                metadata={"description": "a case per turn, per whole session, or of the final turn"})
    system = fields.Boolean(load_default=False, metadata={"description": "include system prompts"})
    tools = fields.Boolean(load_default=True, metadata={"description": "include tool calls and their results"})
    anonymize = fields.Boolean(load_default=False, metadata={"description": "project folder → <project>, home → ~"})
    redact = fields.Boolean(load_default=True, metadata={"description": "mask secrets (on unless turned off)"})
    ids = IdList(metadata={"description": "only these sessions (ids, comma-separated)"})


class BulkForm(Schema):
    """The sessions list's bulk action on the ticked sessions."""

    class Meta:
        unknown = EXCLUDE  # the form's csrf field

    ids = IdList(required=True, data_key="id", error_messages={"required": "Tick at least one session."})
    action = fields.String(required=True, validate=validate.OneOf(("star", "unstar", "grade", "tag")))
    eval_status = EvalStatus(data_key="setStatus", extra=("none",))
    tag = Text(64, 1, data_key="newTag")

    @post_load
    def _complete(self, data, **kwargs):
        if data["action"] == "grade" and "eval_status" not in data:
            raise ValidationError("Choose an eval status.", "setStatus")
        if data["action"] == "tag" and not data.get("tag", "").strip():
            raise ValidationError("Enter a tag.", "newTag")
        return data


class ShareIn(Schema):
    """POST /api/sessions/<id>/shares: ``confirm`` a link on a server only this machine reaches."""

    class Meta:
        unknown = RAISE

    confirm = fields.Boolean(truthy={True}, falsy={False}, load_default=False)


class KeyForm(Schema):
    """The settings page's new key: a label and the default source of its sessions."""

    class Meta:
        unknown = EXCLUDE  # the form's csrf field

    label = Text(100, load_default="")
    source = Source(allow_none=True)


class OverviewQuery(StatsQuery):
    """The dashboard overview: the filters, and what its chart shows."""

    metric = fields.String(load_default="tokens", validate=validate.OneOf(("tokens", "cost")))
    range = fields.String(load_default=None, validate=validate.OneOf(("today", "7d", "30d", "90d", "all")))
    bucket = fields.String(load_default=None, validate=validate.OneOf(("day", "week", "month")))
    stack = fields.String(load_default="source", validate=validate.OneOf(("source", "model", "project")))
    view = fields.String(load_default="bucket", validate=validate.OneOf(("bucket", "cumulative")), metadata={
        "description": "the chart per bucket, or each bucket as the total so far"})


class ExportSessionsQuery(SessionsQuery):
    """Every matching session unless ``limit`` is given; ``cursor`` continues after a page."""

    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "json")))
    limit = fields.Integer(load_default=None, validate=validate.Range(1, MAX_COUNT))
    redact = fields.Boolean(load_default=True, metadata={"description": "mask secrets (on unless turned off)"})


class SessionPatch(Schema):
    """What the user says of a session (PATCH /api/sessions/<id>): the fields sent are set,
    the others kept; ``tags`` replaces the session's whole set."""

    class Meta:
        unknown = RAISE  # our own API, not a plugin's: a misspelt field is an error

    starred = fields.Boolean(truthy={True}, falsy={False})  # JSON true or false, nothing else
    note = Text(10_000, allow_none=True)
    eval_status = EvalStatus(data_key="evalStatus", allow_none=True)
    tags = fields.List(Text(64, 1, allow_none=False), validate=validate.Length(max=50))

    @post_load
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Send at least one of starred, note, evalStatus, tags.", "starred")
        if "tags" in data:
            data["tags"] = [tag.strip() for tag in data["tags"] if tag.strip()]
        return data


class SessionQuery(Schema):
    """One session: ``id`` is its id or, failing that, its externalId (what scripts and clients
    have at hand); ``externalId`` only ever means the externalId. Give exactly one."""

    class Meta:
        unknown = RAISE  # a misspelt parameter is an error, not silently ignored

    id = Text(256, 1)
    external_id = Text(256, 1, data_key="externalId")

    @post_load
    def _one(self, data, **kwargs):
        if ("id" in data) == ("external_id" in data):
            raise ValidationError("Give either `id` or `externalId`.", "id")
        return data


# One session's messages come a page at a time: a session of 50 000 messages read whole took
# seconds and tens of MB per request.
SESSION_MESSAGES = 1000
MAX_SESSION_MESSAGES = 5000


class SessionGetQuery(SessionQuery):
    messages_limit = fields.Integer(data_key="messagesLimit", load_default=SESSION_MESSAGES,
                                    validate=validate.Range(1, MAX_SESSION_MESSAGES),
                                    metadata={"description": f"messages in the page (default {SESSION_MESSAGES})"})
    messages_offset = fields.Integer(data_key="messagesOffset", load_default=0, validate=validate.Range(0, INT64 - 1),
                                     metadata={"description": "messages to pass over first: the nextMessagesOffset "
                                                              "of the page before"})


class ExportQuery(SessionQuery):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "jsonl", "markdown", "html")))
    redact = fields.Boolean(load_default=True, metadata={"description": "mask secrets (on unless turned off)"})


from .search.kinds import WHERE as SEARCH_WHERE  # noqa: E402  (beside the one schema that uses it)


class SearchQuery(Schema):
    class Meta:
        unknown = RAISE  # a misspelt parameter is an error, not silently ignored

    q = Text(500, 1, required=True, allow_none=False, metadata={"description": (
        "Words, each also the start of a longer word (`OOM` finds `OOMs`); `\"a phrase\"` as typed;"
        " `-word`, `-\"a phrase\"` or `NOT word` excludes; `a OR b` finds either.")})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 200), metadata={"description": "sessions per page"})
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000), metadata={
        "description": "sessions to skip: the previous page's `nextOffset`"})
    source = SourceFilter()
    where = fields.String(validate=validate.OneOf(SEARCH_WHERE), metadata={
        "description": "only prompts, answers, tool calls and their results, or thinking (default: everywhere,"
                       " session titles and projects too); it narrows the words' matches (hybrid's too), while"
                       " meaning is always compared on whole turns"})
    type = fields.String(load_default="fulltext", validate=validate.OneOf(("fulltext", "semantic", "hybrid")), metadata={
        "description": "fulltext: by the words; semantic: by meaning (paraphrases, misspellings); hybrid: both,"
                       " fused by reciprocal rank. semantic and hybrid need the `semantic` extra (else 503)"})


from .search.kinds import AVAILABLE_TYPES, TYPES as SEARCH_TYPES  # noqa: E402


class ContextQuery(Schema):
    """/api/context (and the MCP tool get_context): OpenSync's q, limit and format, with the
    filters of the sessions list and a cap on the answer's size."""

    class Meta:
        unknown = RAISE  # a misspelt parameter is an error, not silently ignored

    q = Text(500, 1, required=True, allow_none=False, metadata={"description": "what the agent is working on"})
    limit = fields.Integer(load_default=5, validate=validate.Range(1, 20), metadata={"description": "sessions"})
    format = fields.String(load_default="text", validate=validate.OneOf(("text", "messages")), metadata={
        "description": "text: one prompt-ready text; messages: OpenAI-style messages, each with its session"})
    type = fields.String(load_default="fulltext", validate=validate.OneOf(SEARCH_TYPES), metadata={
        "description": "how sessions are found: fulltext, semantic or hybrid (those two need the `semantic` extra)"})
    source = SourceFilter()
    project = Text(4096, 1)
    date_from = DateParam(data_key="from")
    date_to = DateParam(end=True, data_key="to")
    max_chars = fields.Integer(data_key="maxChars", load_default=40_000, validate=validate.Range(1000, 200_000),
                               metadata={"description": "the answer's length at most (long texts are cut with a note)"})

    @validates("type")
    def _available(self, value, **kwargs):
        if value not in AVAILABLE_TYPES:
            raise ValidationError(f"`{value}` search is not available on this server yet: use type=fulltext.")

    @post_load
    def _range(self, data, **kwargs):
        if data.get("date_from") is not None and data.get("date_to") is not None:
            if data["date_from"] >= data["date_to"]:
                raise ValidationError("`from` must be before `to`.", "to")
        return data


sessions_query = SessionsQuery()
evals_query = EvalsQuery()
files_query = FilesQuery()
export_sessions_query = ExportSessionsQuery()
session_query = SessionQuery()
session_get_query = SessionGetQuery()
session_patch = SessionPatch()
export_query = ExportQuery()
stats_query = StatsQuery()
search_query = SearchQuery()
context_query = ContextQuery()
overview_query = OverviewQuery()
key_form = KeyForm()
share_in = ShareIn()
bulk_form = BulkForm()
