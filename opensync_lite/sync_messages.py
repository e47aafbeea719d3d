"""Sync blueprint for messages: one at a time, or many sessions and messages in a batch."""

from flask import Blueprint, g

from . import ingest, schemas
from .auth import require_user
from .errors import ApiError

bp = Blueprint("sync_messages", __name__)
bp.before_request(require_user)


@bp.post("/sync/message")
def sync_message():
    data = schemas.read(schemas.message_in)
    message_id = ingest.upsert_message(g.user_id, data, g.default_source)
    return {"ok": True, "messageId": str(message_id)}


# Invalid items are reported up to this many (and counted in full): an answer must never be
# many times the size of the request that caused it.
MAX_ERRORS = 100


@bp.post("/sync/batch")
def sync_batch():
    """Every item is validated first; the valid ones are written (ingest_batch) and each
    invalid one is reported by its index, without stopping the others."""
    envelope = schemas.read(schemas.batch_in)
    errors = []
    error_count = 0
    valid = {}
    for kind, schema in (("session", schemas.session_in), ("message", schemas.message_in)):
        valid[kind] = []
        for index, item in enumerate(envelope[kind + "s"]):
            try:
                valid[kind].append(schemas.load(schema, item))
            except ApiError as err:
                error_count += 1
                if len(errors) < MAX_ERRORS:
                    errors.append({"index": index, "kind": kind, "error": err.message, "fields": err.fields})
                    if err.field_error_count is not None:  # only the first fields' errors are in it
                        errors[-1]["fieldErrorCount"] = err.field_error_count
    stored_sessions, stored_messages = ingest.ingest_batch(
        g.user_id, valid["session"], valid["message"], g.default_source
    )
    return {"ok": True, "sessions": stored_sessions, "messages": stored_messages, "errors": errors,
            "errorCount": error_count}
