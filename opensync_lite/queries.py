"""THE read path: what the JSON API (and, later, the dashboard) shows. Every function takes
the user id, so no query can reach another user's rows. Rows come back as snake_case dicts;
the schemas turn them into wire JSON."""

from .models import Message, Part, Session


def list_sessions(user_id, limit=50):
    """The user's sessions, most recently active first."""
    query = (
        Session.select()
        .where(Session.user == user_id)
        .order_by(Session.updated_at.desc(), Session.id.desc())
        .limit(limit)
    )
    return list(query.dicts())


def session_external_ids(user_id):
    query = Session.select(Session.external_id).where(Session.user == user_id).order_by(Session.id)
    return [external_id for (external_id,) in query.tuples()]


def find_session(user_id, ident):
    """A session of this user by internal id or externalId, or None."""
    query = Session.select().where(Session.user == user_id)
    if ident.isdigit() and len(ident) < 19:
        row = query.where(Session.id == int(ident)).dicts().first()
        if row is not None:
            return row
    return query.where(Session.external_id == ident).dicts().first()


def session_messages(session_id):
    """A session's messages in creation order, each with its parts (two queries in all)."""
    messages = list(
        Message.select()
        .where(Message.session == session_id)
        .order_by(Message.created_at, Message.id)
        .dicts()
    )
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        m["parts"] = []
    if by_id:
        parts = (
            Part.select(Part.message, Part.type, Part.content)
            .join(Message)
            .where(Message.session == session_id)
            .order_by(Part.message, Part.order)
            .dicts()
        )
        for part in parts:
            by_id[part.pop("message")]["parts"].append(part)
    return messages
