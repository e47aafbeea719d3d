"""THE read path: what the JSON API and the dashboard show. Every function takes the user id,
so no query can reach another user's rows, and every aggregate is computed by the database.
Rows come back as snake_case dicts; the schemas turn them into wire JSON.

``filters`` is the dict loaded by ``schemas.FiltersQuery``: source, model, provider, project,
q, date_from, date_to (epoch ms; from inclusive, to exclusive), each optional.
"""

from datetime import datetime, timedelta, timezone

from peewee import Expression, Tuple, fn

from . import search as fts
from .models import Message, Part, Session
from .schemas import UNKNOWN_SOURCE  # the filter value that selects sessions with no source
DAY_MS = 86_400_000

def _mod(a, b):
    return Expression(a, "%", b)  # peewee's own `%` operator means GLOB on SQLite


# Every stats route groups by one of these. `day` is an integer day number, turned into a date
# after the query. Integer division truncates toward zero in SQLite and PostgreSQL alike, so
# the remainder is taken off first: days before 1970 get their own (negative) numbers.
DIMENSIONS = {
    "source": Session.source,
    "model": Session.model,
    "provider": Session.provider,
    "project": fn.COALESCE(Session.project_name, Session.project_path),
    "day": (Session.created_at - _mod(_mod(Session.created_at, DAY_MS) + DAY_MS, DAY_MS)) / DAY_MS,
}


def conditions(user_id, filters):
    """The WHERE clause shared by lists, stats and exports."""
    where = [Session.user == user_id]
    source = filters.get("source")
    if source == UNKNOWN_SOURCE:
        where.append(Session.source.is_null())
    elif source:
        where.append(Session.source == source)
    if filters.get("model"):
        where.append(Session.model == filters["model"])
    if filters.get("provider"):
        where.append(Session.provider == filters["provider"])
    if filters.get("project"):
        where.append((Session.project_name == filters["project"]) | (Session.project_path == filters["project"]))
    if filters.get("date_from") is not None:
        where.append(Session.created_at >= filters["date_from"])
    if filters.get("date_to") is not None:
        where.append(Session.created_at < filters["date_to"])
    match = fts.match_expression(filters.get("q"))
    if match:
        where.append(Session.id.in_(fts.matching_session_ids(match)))
    return where


# --- session lists ----------------------------------------------------------------------------

def _ordered(query, sort, descending):
    column = getattr(Session, sort)
    if descending:
        return query.order_by(column.desc(), Session.id.desc())
    return query.order_by(column.asc(), Session.id.asc())


def page_query(user_id, filters, sort="updated_at", descending=True, limit=50, after=None):
    """One page by keyset: ``after`` is the (sort value, id) of the previous page's last row,
    so the database seeks straight to it and page 1000 costs what page 1 costs."""
    return _page(conditions(user_id, filters), sort, descending, limit, after)


def _page(where, sort, descending, limit, after):
    query = Session.select().where(*where)
    if after is not None:
        key, beyond = Tuple(getattr(Session, sort), Session.id), Tuple(*after)
        query = query.where(key < beyond if descending else key > beyond)
    return _ordered(query, sort, descending).limit(limit)


def list_sessions(user_id, filters, sort="updated_at", descending=True, limit=50, after=None):
    """A page of sessions, the total matching, and the key to the next page (or None)."""
    where = conditions(user_id, filters)
    rows = list(_page(where, sort, descending, limit + 1, after).dicts())
    next_key = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_key = (rows[-1][sort], rows[-1]["id"])
    total = Session.select(fn.COUNT(Session.id)).where(*where).scalar()
    return rows, total, next_key


def iter_sessions(user_id, filters, sort="updated_at", descending=True, limit=None, after=None):
    """Matching sessions streamed from the cursor (for exports): all, or ``limit`` of them
    after the keyset ``after``."""
    query = _page(conditions(user_id, filters), sort, descending, limit, after)
    return query.dicts().iterator()


def session_external_ids(user_id):
    query = Session.select(Session.external_id).where(Session.user == user_id).order_by(Session.id)
    return [external_id for (external_id,) in query.tuples()]


class AmbiguousSession(Exception):
    """An ``id`` that is one session's id and another's externalId."""

    def __init__(self, by_id, by_external_id):
        super().__init__(by_id, by_external_id)
        self.rows = (by_id, by_external_id)


def find_session(user_id, ident=None, external_id=None):
    """A session of this user by ``external_id``, or by ``ident`` (an id or an externalId),
    or None. Raises AmbiguousSession when ``ident`` names two different sessions."""
    query = Session.select().where(Session.user == user_id)
    if external_id is not None:
        return query.where(Session.external_id == external_id).dicts().first()
    by_external_id = query.where(Session.external_id == ident).dicts().first()
    if ident.isascii() and ident.isdigit() and len(ident) < 19:
        by_id = query.where(Session.id == int(ident)).dicts().first()
        if by_id is not None and by_external_id is not None and by_id["id"] != by_external_id["id"]:
            raise AmbiguousSession(by_id, by_external_id)
        return by_id or by_external_id
    return by_external_id


def session_messages(session_id):
    """A session's messages in creation order, each with its parts (two queries in all)."""
    messages = list(
        Message.select().where(Message.session == session_id).order_by(Message.created_at, Message.id).dicts()
    )
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        m["parts"] = []
    if by_id:
        parts = (
            Part.select(Part.message, Part.type, Part.content, Part.extra)
            .join(Message)
            .where(Message.session == session_id)
            .order_by(Part.message, Part.order)
            .dicts()
        )
        for part in parts:
            by_id[part.pop("message")]["parts"].append(part)
    return messages


# --- stats ------------------------------------------------------------------------------------

def _metrics():
    return [
        fn.COUNT(Session.id).alias("sessions"),
        fn.COALESCE(fn.SUM(Session.message_count), 0).alias("messages"),
        fn.COALESCE(fn.SUM(Session.prompt_tokens), 0).alias("prompt_tokens"),
        fn.COALESCE(fn.SUM(Session.completion_tokens), 0).alias("completion_tokens"),
        fn.COALESCE(fn.SUM(Session.total_tokens), 0).alias("total_tokens"),
        fn.COALESCE(fn.SUM(Session.cost), 0).alias("cost"),
        fn.COALESCE(fn.SUM(Session.duration_ms), 0).alias("duration_ms"),
        fn.MAX(Session.updated_at).alias("last_active"),
    ]


def stats_query(user_id, filters, dimension):
    """THE stats query builder: one GROUP BY over the filtered sessions."""
    key = DIMENSIONS[dimension]
    query = Session.select(key.alias("key"), *_metrics()).where(*conditions(user_id, filters)).group_by(key)
    if dimension == "day":
        return query.order_by(key)
    return query.order_by(fn.COUNT(Session.id).desc(), key)


def grouped_stats(user_id, filters, dimension):
    return list(stats_query(user_id, filters, dimension).dicts())


def daily_stats(user_id, filters, days):
    """One row per UTC day, ascending, empty days included: the ``days`` days up to ``to``
    (default today), or from ``from`` when it is given; at most MAX_DAYS rows."""
    if filters.get("date_to") is not None:
        last = _day_of(filters["date_to"] - 1)
    else:
        last = datetime.now(timezone.utc).date()
    first = _day_of(filters["date_from"]) if filters.get("date_from") is not None else last - timedelta(days=days - 1)
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    # Whole days, but never more than the range asked for: a `from` at 05:00 leaves the
    # first day's earlier hours out.
    date_from, date_to = _ms_of(first), _ms_of(last) + DAY_MS
    if filters.get("date_from") is not None:
        date_from = max(date_from, filters["date_from"])
    if filters.get("date_to") is not None:
        date_to = min(date_to, filters["date_to"])
    bounded = {**filters, "date_from": date_from, "date_to": date_to}
    found = {row.pop("key"): row for row in grouped_stats(user_id, bounded, "day")}
    out = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = found.get(_ms_of(day) // DAY_MS) or dict.fromkeys(_METRIC_NAMES, 0) | {"last_active": None}
        out.append({"date": day.isoformat(), **row})
    return out


MAX_DAYS = 3660
_METRIC_NAMES = ("sessions", "messages", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "duration_ms")


def _day_of(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date()


def _ms_of(day):
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def summary(user_id, filters):
    """Totals, distinct counts and per-model usage (two queries)."""
    where = conditions(user_id, filters)
    project = DIMENSIONS["project"]
    totals = (
        Session.select(
            *_metrics(),
            fn.COUNT(Session.model.distinct()).alias("unique_models"),
            fn.COUNT(project.distinct()).alias("unique_projects"),
        )
        .where(*where)
        .dicts()
        .get()
    )
    sessions = totals["sessions"]
    totals["avg_tokens_per_session"] = totals["total_tokens"] / sessions if sessions else 0
    totals["avg_cost_per_session"] = totals["cost"] / sessions if sessions else 0
    totals["model_usage"] = {
        row["key"]: row for row in grouped_stats(user_id, filters, "model") if row["key"] is not None
    }
    return totals


def filter_options(user_id):
    """The distinct values of each filterable dimension, with their session counts."""
    return {
        dimension: [{"value": row["key"], "count": row["sessions"]} for row in grouped_stats(user_id, {}, dimension)]
        for dimension in ("source", "model", "provider", "project")
    }


# --- search -----------------------------------------------------------------------------------

def search(user_id, text, limit=20, source=None):
    """Sessions and messages matching ``text``, best first, each with its session's source."""
    match = fts.match_expression(text)
    if match is None:
        return []
    query = (
        Session.select(
            fts.column("kind"),
            Session.id.alias("session_id"),
            Session.external_id,
            Session.source,
            Session.title,
            fts.column("message_id"),
            fts.column("rank"),
        )
        .from_(fts.hits(match), Session)
        .where(Session.id == fts.column("session_id"), *conditions(user_id, {"source": source}))
        .order_by(fts.column("rank"), Session.id, fts.column("message_id"))
        .limit(limit)
    )
    rows = list(query.dicts())
    found = fts.snippets(
        match,
        [r["session_id"] for r in rows if r["kind"] == "session"],
        [r["message_id"] for r in rows if r["kind"] == "message"],
    )
    for row in rows:
        row["snippet"] = found.get((row["kind"], row["message_id"] or row["session_id"]), "")
    return rows
