"""The query strings of OpenSync's own routes (``opensync_api``), as OpenSync names them.

OpenSync reads only the parameters it knows and ignores the rest, so these schemas do too
(``EXCLUDE``): a script that works against OpenSync must work here. A value we cannot read
is a 400 naming the field; where OpenSync has its own error text for it, that is the message.
"""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from .errors import ApiError
from .schemas import DateParam, EvalStatus, SourceFilter, Text, describe

EVAL_FORMATS = ("deepeval", "openai", "promptfoo", "filesystem")
TURN_MODES = ("per_turn", "full", "final_only")  # opensync_evals._query maps them to our grains
SEARCH_TYPES = ("fulltext", "semantic", "hybrid")

# OpenSync's own messages for what it checks itself.
MISSING_ID = "Missing session ID"
MISSING_Q = "Missing query parameter 'q'"
BAD_EVAL_FORMAT = "Invalid format. Use: deepeval, openai, promptfoo, filesystem"


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE  # OpenSync ignores parameters it does not know


# OpenSync has no pages and takes any limit, so scripts ask for many at once: the caps are
# higher than our own routes' (whose pages have cursors), and still bound the answer.
class SessionsQuery(_Query):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 5000))


class SessionQuery(_Query):
    """OpenSync answers a session with all its messages; here a page of them (ours: the first
    thousand), so one 50 000-message session cannot take a request's seconds and tens of MB."""
    id = Text(256, 1, required=True)
    messages_limit = fields.Integer(data_key="messagesLimit", load_default=1000, validate=validate.Range(1, 5000))
    messages_offset = fields.Integer(data_key="messagesOffset", load_default=0, validate=validate.Range(0, 2**63 - 1))


class SearchQuery(_Query):
    q = Text(500, 1, required=True)
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 1000))
    type = fields.String(load_default="fulltext", validate=validate.OneOf(SEARCH_TYPES))


class ContextQuery(_Query):
    q = Text(500, 1, required=True)
    limit = fields.Integer(load_default=5, validate=validate.Range(1, 20))
    format = fields.String(load_default="text", validate=validate.OneOf(("text", "messages")))
    max_chars = fields.Integer(data_key="maxChars", load_default=40_000, validate=validate.Range(1000, 200_000))


class ExportQuery(SessionQuery):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "jsonl", "markdown")))
    redact = fields.Boolean(load_default=True)  # ours: exports mask secrets unless told not to


class CommaList(fields.String):
    """`a,b,c` → ["a", "b", "c"] (empty items dropped, as OpenSync does)."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = [item.strip() for item in super()._deserialize(value, attr, data, **kwargs).split(",")]
        items = [item for item in items if item]
        if len(items) > 50 or any(len(item) > 64 for item in items):
            raise ValidationError("Give up to 50 tags of up to 64 characters, separated by commas.")
        return items


class EvalsQuery(_Query):
    """/api/export/evals with OpenSync's parameters; ``redact`` is ours (on by default)."""

    format = fields.String(load_default="deepeval", validate=validate.OneOf(EVAL_FORMATS, error=BAD_EVAL_FORMAT))
    tool = SourceFilter()
    model = Text(256, 1)
    date_from = DateParam()
    date_to = DateParam(end=True)
    tags = CommaList()
    min_tokens = fields.Integer(validate=validate.Range(0, 10**12))
    status = EvalStatus()
    include_metadata = fields.Boolean(load_default=True)
    anonymize = fields.Boolean(load_default=True)
    turn_mode = fields.String(load_default="per_turn", validate=validate.OneOf(TURN_MODES))
    redact = fields.Boolean(load_default=True)

    @post_load
    def _range(self, data, **kwargs):
        if data.get("date_from") is not None and data.get("date_to") is not None and data["date_from"] >= data["date_to"]:
            raise ValidationError("`date_from` must be before `date_to`.", "date_to")
        return data


def read(schema, args, missing=None):
    """``args`` loaded by ``schema``; a failure is a 400 naming each bad field. ``missing``
    (field, OpenSync's message) is checked first: OpenSync's answer when it is absent or empty."""
    if missing and not args.get(missing[0]):
        raise ApiError(400, missing[1], fields={missing[0]: ["Missing data for required field."]})
    try:
        return schema.load(args)
    except ValidationError as err:
        bad_format = schema is evals_query and "format" in err.messages
        raise ApiError(400, BAD_EVAL_FORMAT if bad_format else describe(err), fields=err.messages) from None


sessions_query = SessionsQuery()
session_query = SessionQuery()
search_query = SearchQuery()
context_query = ContextQuery()
export_query = ExportQuery()
evals_query = EvalsQuery()
