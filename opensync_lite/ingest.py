"""THE write path. Every session and message, from HTTP or an importer, goes through here.

Input is what the schemas loaded: snake_case dicts holding only the keys the client sent.
Each public function runs in one BEGIN IMMEDIATE transaction, so a request is written whole
or not at all.
"""

from peewee import fn

from .auth import now_ms
from .db import database
from .models import Message, Part, Session

# A zero here never overwrites a stored non-zero value: the claude-code plugin sends zeros at
# SessionEnd when it has no transcript, which would otherwise wipe the real totals.
KEEP_IF_ZERO = ("prompt_tokens", "completion_tokens", "cost")


def upsert_session(user_id, data):
    """Create or partially update the session ``data['external_id']``; returns its id."""
    with database.atomic():
        return _upsert_session(user_id, data, now_ms())


def upsert_message(user_id, data):
    """Create or replace a message (and its parts); returns its id."""
    with database.atomic():
        message_id, session_id = _upsert_message(user_id, data, now_ms())
        _refresh_message_counts({session_id}, now_ms())
    return message_id


def ingest_batch(user_id, sessions, messages):
    """Write already-validated sessions, then messages, in one transaction.
    Returns (sessions stored, messages stored)."""
    now = now_ms()
    with database.atomic():
        for data in sessions:
            _upsert_session(user_id, data, now)
        touched = {_upsert_message(user_id, data, now)[1] for data in messages}
        _refresh_message_counts(touched, now)
    return len(sessions), len(messages)


def delete_session(user_id, session_id):
    """Delete a session of this user; its messages, parts and search rows go with it
    (foreign keys cascade, and the search triggers follow the cascade)."""
    with database.atomic():
        return Session.delete().where(Session.user == user_id, Session.id == session_id).execute()


def _upsert_session(user_id, data, now):
    fields = dict(data)
    external_id = fields.pop("external_id")
    created_at = fields.pop("created_at", None)
    stored = (
        Session.select(Session.id, Session.prompt_tokens, Session.completion_tokens, Session.extra)
        .where(Session.user == user_id, Session.external_id == external_id)
        .first()
    )
    if stored is None:
        fields["total_tokens"] = fields.get("prompt_tokens", 0) + fields.get("completion_tokens", 0)
        return Session.insert(
            user=user_id, external_id=external_id, created_at=created_at or now, updated_at=now, **fields
        ).execute()

    for name in KEEP_IF_ZERO:
        if fields.get(name) == 0:
            del fields[name]
    if "prompt_tokens" in fields or "completion_tokens" in fields:
        fields["total_tokens"] = fields.get("prompt_tokens", stored.prompt_tokens) + fields.get(
            "completion_tokens", stored.completion_tokens
        )
    if "extra" in fields and stored.extra:
        fields["extra"] = {**stored.extra, **fields["extra"]}
    if "message_count" in fields and _has_messages(stored.id):
        # Once messages are stored, the count is theirs (see _refresh_message_counts).
        del fields["message_count"]
    Session.update(updated_at=now, **fields).where(Session.id == stored.id).execute()
    return stored.id


def _session_for_message(user_id, external_id, source, now):
    """The id of the message's session, created if it does not exist yet (a later
    /sync/session fills it in). A message's source fills an unknown session source."""
    stored = (
        Session.select(Session.id, Session.source)
        .where(Session.user == user_id, Session.external_id == external_id)
        .first()
    )
    if stored is None:
        return Session.insert(
            user=user_id, external_id=external_id, source=source, created_at=now, updated_at=now
        ).execute()
    if source is not None and stored.source is None:
        Session.update(source=source).where(Session.id == stored.id).execute()
    return stored.id


def _upsert_message(user_id, data, now):
    fields = dict(data)
    session_id = _session_for_message(user_id, fields.pop("session_external_id"), fields.pop("source", None), now)
    external_id = fields.pop("external_id")
    parts = fields.pop("parts", None)
    stored = (
        Message.select(Message.id, Message.extra)
        .where(Message.session == session_id, Message.external_id == external_id)
        .first()
    )
    if stored is None:
        fields.setdefault("role", "unknown")
        fields.setdefault("created_at", now)
        message_id = Message.insert(session=session_id, external_id=external_id, **fields).execute()
    else:
        # A resend replaces what it carries and keeps the rest; it never duplicates.
        message_id = stored.id
        if "extra" in fields and stored.extra:
            fields["extra"] = {**stored.extra, **fields["extra"]}
        if fields:
            Message.update(**fields).where(Message.id == message_id).execute()
        if parts is not None:
            Part.delete().where(Part.message == message_id).execute()
    if parts:
        Part.insert_many(
            [
                {
                    "message": message_id,
                    "type": part["type"],
                    "content": part.get("content"),
                    "extra": part.get("extra"),
                    "order": index,
                }
                for index, part in enumerate(parts)
            ]
        ).execute()
    return message_id, session_id


def _has_messages(session_id):
    return Message.select().where(Message.session == session_id).exists()


def _refresh_message_counts(session_ids, now):
    """A session's message_count is the number of its stored messages; writing a message
    also marks the session as recently active."""
    if not session_ids:
        return
    count = Message.select(fn.COUNT(Message.id)).where(Message.session == Session.id)
    Session.update(message_count=count, updated_at=now).where(Session.id.in_(list(session_ids))).execute()
