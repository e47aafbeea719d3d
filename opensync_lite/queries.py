"""THE read path: what the JSON API and the dashboard show. Every function takes the user id,
so no query can reach another user's rows, and every aggregate is computed by the database.
Rows come back as snake_case dicts; the schemas turn them into wire JSON.

``filters`` is the dict loaded by ``schemas.FiltersQuery``: source, model, provider, project,
q, date_from, date_to (epoch ms; from inclusive, to exclusive), each optional; OpenSync's routes
(``opensync_api``) add sources, tags, min_tokens and graded.
"""

from datetime import datetime, timedelta, timezone

from flask import current_app, g
from peewee import SQL, Case, Tuple, fn

from . import files, projects
from . import search as fts
from .db import MAX_ID, prepared, slot
from .models import Curation, FileTouch, Message, Part, Session, SessionTag, Setting, Tag
from .schemas import UNKNOWN_SOURCE  # the filter value that selects sessions with no source
DAY_MS = 86_400_000
DAY = SQL(str(DAY_MS))  # inline: GROUP BY must repeat the SELECT's expression, bound values would differ

def _mod(a, b):
    # a % b, spelled so that every dialect reads it alike (peewee's `%` is LIKE, and a bare
    # % would be a placeholder to psycopg): integer division truncates in SQLite and PostgreSQL.
    return a - (a / b) * b


# Every stats route groups by one of these. `day` is an integer day number, turned into a date
# after the query. Integer division truncates toward zero in SQLite and PostgreSQL alike, so
# the remainder is taken off first: days before 1970 get their own (negative) numbers.
DIMENSIONS = {
    "source": Session.source,
    "model": Session.model,
    "provider": Session.provider,
    "project_name": Session.project_name,
    "project_path": Session.project_path,
    "day": (Session.created_at - _mod(_mod(Session.created_at, DAY) + DAY, DAY)) / DAY,
}


# --- connection tests -------------------------------------------------------------------------
# claude-code-sync's `synctest` checks a server by posting one session, always
# {"externalId": "test-<ms>", "title": "Connection Test", "projectName": "synctest"}: it is
# neither a project nor work done. Lists show it, marked; the overview and the filter options
# leave it out (filters ``{"tests": False}``). These two are the rule, the one in SQL and the
# one for a row read already.
TEST_TITLE, TEST_PROJECT, TEST_ID_PREFIX = "Connection Test", "synctest", "test-"


def is_connection_test(row):
    return (row.get("project_name") == TEST_PROJECT and row.get("title") == TEST_TITLE
            and (row.get("external_id") or "").startswith(TEST_ID_PREFIX) and not row.get("project_path"))


def _not_a_test():
    # The project first: for every other session it settles the test from the covering index
    # alone, and the table row (title, externalId) is never read.
    return ((fn.COALESCE(Session.project_name, "") != TEST_PROJECT) | Session.project_path.is_null(False)
            | (fn.COALESCE(Session.title, "") != TEST_TITLE)
            | (fn.SUBSTR(Session.external_id, 1, len(TEST_ID_PREFIX)) != TEST_ID_PREFIX))


def conditions(user_id, filters):
    """The WHERE clause shared by lists, stats and exports."""
    where = [Session.user == user_id]
    if filters.get("tests") is False:
        where.append(_not_a_test())
    source = filters.get("source")
    if source == UNKNOWN_SOURCE:
        where.append(Session.source.is_null())
    elif source:
        where.append(Session.source == source)
    if filters.get("sources"):  # any of these (None: no source), for OpenSync's names (opensync_api)
        named = [value for value in filters["sources"] if value is not None]
        either = Session.source.in_(named)
        where.append(either | Session.source.is_null() if None in filters["sources"] else either)
    if filters.get("model"):
        where.append(Session.model == filters["model"])
    if filters.get("min_tokens"):
        where.append(Session.total_tokens >= filters["min_tokens"])
    if filters.get("provider"):
        where.append(Session.provider == filters["provider"])
    if filters.get("project"):
        where.append(_in_project(user_id, filters["project"]))
    if filters.get("ids"):
        where.append(Session.id.in_(filters["ids"]))
    if filters.get("parent"):
        where.append(Session.parent_external_id == filters["parent"])
    elif filters.get("subagents") == "fold":
        where.append(Session.parent_external_id.is_null())
    if filters.get("starred") is not None:
        starred = Curation.select(Curation.session).where(Curation.starred == True)  # noqa: E712 (SQL)
        where.append(Session.id.in_(starred) if filters["starred"] else Session.id.not_in(starred))
    if filters.get("eval_status"):
        where.append(Session.id.in_(Curation.select(Curation.session).where(Curation.eval_status == filters["eval_status"])))
    if filters.get("graded"):  # any eval status: what OpenSync's evals call eval-ready
        where.append(Session.id.in_(Curation.select(Curation.session).where(Curation.eval_status.is_null(False))))
    if filters.get("tags"):  # any of these tags
        where.append(Session.id.in_(SessionTag.select(SessionTag.session).join(Tag).where(
            Tag.user == user_id, Tag.name.in_(filters["tags"]))))
    if filters.get("tag"):
        where.append(Session.id.in_(SessionTag.select(SessionTag.session).join(Tag).where(
            Tag.user == user_id, Tag.name == filters["tag"])))
    if filters.get("file"):
        matching = FileTouch.select(FileTouch.session).where(_file_match(user_id, filters["file"], filters.get("file_prefix")))
        where.append(Session.id.in_(matching))
    if filters.get("date_from") is not None:
        where.append(Session.created_at >= filters["date_from"])
    if filters.get("date_to") is not None:
        where.append(Session.created_at < filters["date_to"])
    match = fts.match_expression(filters.get("q"))
    if match:
        where.append(Session.id.in_(fts.matching_session_ids(match, user_id)))
    return where


# --- projects ---------------------------------------------------------------------------------

def user_projects(user_id):
    """The user's ``projects.Projects`` (every name and path their sessions carry), read once
    per change of their sessions: one DISTINCT over the covering index, then remembered; the
    check for a change (two index reads) once per request, however many queries filter on it."""
    this_request = g.setdefault("opensync_projects", {})
    if user_id in this_request:
        return this_request[user_id]
    version = _sessions_version(user_id)
    held = current_app.extensions.setdefault("opensync.projects", {})
    if user_id not in held or held[user_id][0] != version:
        mine = Session.select().where(Session.user == user_id)
        pairs = mine.select(Session.project_name, Session.project_path).distinct().tuples()
        held[user_id] = (version, projects.Projects(pairs))
    this_request[user_id] = held[user_id][1]
    return this_request[user_id]


def _sessions_version(user_id, reuse=True):
    """(the latest write stamp, the latest delete's) of the user's sessions, read once per
    request (``reuse``): the projects and the data version both key on them. Two key reads; a
    COUNT to see deletes walked an index entry per session (12 ms at 100 000)."""
    this_request = g.setdefault("opensync_sessions_version", {})
    if user_id not in this_request or not reuse:
        latest = Session.select(fn.MAX(Session.written_at)).where(Session.user == user_id).scalar()
        deleted = Setting.select(Setting.value).where(Setting.name == Setting.sessions_deleted(user_id)).scalar()
        this_request[user_id] = (latest, deleted)
    return this_request[user_id]


def _in_project(user_id, value):
    """The sessions of the project ``value`` names (its key, its folder or its name)."""
    known = user_projects(user_id)
    paths, names = known.members(known.resolve(value))
    if not paths and not names:  # no session has it: match as sent, which finds nothing
        return (Session.project_name == value) | (Session.project_path == value)
    return Session.project_path.in_(sorted(paths)) | (Session.project_path.is_null() & Session.project_name.in_(sorted(names)))


def _by_project(user_id, rows):
    """Rows grouped by project_name and project_path, added up per project (``key``), with
    its ``label``, most sessions first."""
    known = user_projects(user_id)
    out = {}
    for row in rows:
        key = known.key(row.pop("project_name"), row.pop("project_path"))
        if key in out:
            _add(out[key], row)
        else:
            out[key] = {**row, "key": key}
    labels = known.labels(out)
    for key, row in out.items():
        row["label"] = labels[key]
    return sorted(out.values(), key=_group_order)


def _group_order(row):
    return (-row["sessions"], row["key"] is not None, row["key"] or "")  # SQL's order: NULL first


# --- files ------------------------------------------------------------------------------------

def _file_match(user_id, path=None, prefix=False):
    """The file_touches of this user (at ``path``, when given): absolute paths are matched as
    stored; a relative one is the path inside each session's project or any end of a path
    after a `/` (`stripe.ts` and `lib/stripe.ts` find src/lib/stripe.ts). A path ending in `/`
    (or ``prefix``) matches every path that starts with it."""
    mine = FileTouch.user == user_id
    if not path:
        return mine
    folder = path.rstrip().endswith(("/", "\\"))
    wanted = files.normal(path)
    absolute = files.is_absolute(wanted)
    column = FileTouch.path if absolute else FileTouch.rel_path
    if folder and not wanted.endswith("/"):
        wanted += "/"
    if prefix or folder:
        return mine & (fn.SUBSTR(column, 1, len(wanted)) == wanted)
    if absolute:
        return mine & (column == wanted)
    # SUBSTR from a position, not LIKE: exact case, and no wildcard in a file name to escape.
    ending = "/" + wanted
    return mine & ((column == wanted) | (fn.SUBSTR(FileTouch.path, fn.LENGTH(FileTouch.path) - (len(ending) - 1)) == ending))


CHANGED = fn.MAX(Case(None, [(FileTouch.changed == True, 1)], 0))  # noqa: E712 (SQL); MAX of a boolean is not portable


def touched_files(user_id, path=None, prefix=False, limit=200):
    """The user's files (those at ``path`` when given), the most sessions first: each with
    its path inside the project (when it is in one), its project (name, else folder), how many
    sessions read or changed it, how many changed it, and when the last of them was active."""
    per_session = (FileTouch.select(FileTouch.path, FileTouch.session, fn.MAX(FileTouch.rel_path).alias("rel_path"),
                                    CHANGED.alias("changed"))
                   .where(_file_match(user_id, path, prefix)).group_by(FileTouch.path, FileTouch.session).alias("t"))
    return list(
        FileTouch.select(per_session.c.path, fn.MAX(per_session.c.rel_path).alias("rel_path"),
                         fn.COUNT(per_session.c.session_id).alias("sessions"),
                         _sum(per_session.c.changed).alias("changed_sessions"),
                         fn.MAX(Session.updated_at).alias("last_active"),
                         fn.MAX(fn.COALESCE(Session.project_name, Session.project_path)).alias("project"))
        .from_(per_session).join(Session, on=(Session.id == per_session.c.session_id))
        .group_by(per_session.c.path)
        .order_by(fn.COUNT(per_session.c.session_id).desc(), per_session.c.path)
        .limit(limit).dicts()
    )


def files_of(session_ids, user_id, path=None, prefix=False):
    """{session id: [its files (at ``path`` when given): path, rel_path, changed, messages]},
    each session's files by path."""
    out = {session_id: [] for session_id in session_ids}
    for chunk in _chunks(list(out)):
        query = (FileTouch.select(FileTouch.session, FileTouch.path, fn.MAX(FileTouch.rel_path).alias("rel_path"),
                                  CHANGED.alias("changed"), fn.COUNT(FileTouch.message).alias("messages"))
                 .where(FileTouch.session.in_(chunk), _file_match(user_id, path, prefix))
                 .group_by(FileTouch.session, FileTouch.path).order_by(FileTouch.session, FileTouch.path).dicts())
        for row in query:
            row["changed"] = bool(row["changed"])
            out[row.pop("session")].append(row)
    return out


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


def _key(row, sort):
    return (row[sort], row["id"])


def _chunks(ids, size=500):
    """``ids`` in lists short enough for one IN (...)."""
    return (ids[start:start + size] for start in range(0, len(ids), size))


def session_page(user_id, query):
    """``list_sessions`` for a loaded ``schemas.SessionsQuery`` (its filters, sort, limit and
    cursors), the rows with what the user said of them."""
    rows, total, next_key, previous_key = list_sessions(
        user_id, query, sort=query["sort"], descending=query["descending"], limit=query["limit"],
        after=query["after"], before=query["before"], last=query.get("last", False))
    return with_curation(rows), total, next_key, previous_key


def list_sessions(user_id, filters, sort="updated_at", descending=True, limit=50, after=None, before=None, last=False):
    """A page of sessions, the total matching, and the keys to the next and previous pages
    (None at either end). ``before`` (the first row's key of the page after) walks back;
    ``last`` reads the last page (walking back from the end)."""
    where = conditions(user_id, filters)
    if before is not None or last:
        rows = list(_page(where, sort, not descending, limit + 1, before).dicts())
        has_previous = len(rows) > limit
        rows = rows[:limit][::-1]
        next_key = _key(rows[-1], sort) if rows and not last else None
        previous_key = _key(rows[0], sort) if rows and has_previous else None
    else:
        rows = list(_page(where, sort, descending, limit + 1, after).dicts())
        next_key = _key(rows[limit - 1], sort) if len(rows) > limit else None
        rows = rows[:limit]
        previous_key = _key(rows[0], sort) if rows and after is not None else None
    return rows, _count(where), next_key, previous_key


def rows_before(user_id, filters, sort, descending, key):
    """How many of the sessions ``filters`` select come before the row at ``key`` (its sort
    value and id) in that order: the page's place in the list, by one indexed COUNT."""
    ahead = Tuple(getattr(Session, sort), Session.id) > Tuple(*key) if descending else \
        Tuple(getattr(Session, sort), Session.id) < Tuple(*key)
    return _count([*conditions(user_id, filters), ahead])


def list_totals(user_id, filters):
    """The sessions ``filters`` select, added up: how many (and how many of them are
    subagents), their tokens and cost; one aggregate over the covering index."""
    subagent = Case(None, [(Session.parent_external_id.is_null(False), 1)], 0)
    return (Session.select(fn.COUNT(Session.id).alias("sessions"), _sum(subagent).alias("subagents"),
                           _sum(Session.total_tokens).alias("total_tokens"),
                           fn.COALESCE(fn.SUM(Session.cost), 0).alias("cost"))
            .where(*conditions(user_id, filters)).dicts().get())


def _descendants(user_id, roots):
    """A recursive CTE ``tree(root, external_id)``: every session under each of ``roots``,
    subagents of subagents too, each once per root (UNION, not UNION ALL: a parent that names
    its own descendant as its parent ends the walk instead of looping)."""
    base = (Session.select(Session.parent_external_id.alias("root"), Session.external_id)
            .where(Session.user == user_id, Session.parent_external_id.in_(list(roots)))
            .cte("tree", recursive=True, columns=("root", "external_id")))
    child = Session.alias("child")
    step = (child.select(base.c.root, child.external_id).from_(base)
            .join(child, on=(child.user == user_id) & (child.parent_external_id == base.c.external_id)))
    return base.union(step)


def _under(user_id, roots, columns):
    """``columns(tree)`` of the sessions under ``roots`` (not the roots themselves), each
    beside its root, grouped by root: one query."""
    tree = _descendants(user_id, roots)
    return (Session.select(tree.c.root, *columns(tree)).from_(tree)
            .join(Session, on=(Session.user == user_id) & (Session.external_id == tree.c.external_id))
            .where(tree.c.external_id != tree.c.root).group_by(tree.c.root).with_cte(tree))


def subagent_rollups(user_id, external_ids):
    """{externalId: its direct subagents (``subagents``) and, every level down, how many
    sessions, tokens and cost run under it} for the sessions of a page: one query."""
    if not external_ids:
        return {}
    def columns(tree):
        direct = Case(None, [(Session.parent_external_id == tree.c.root, 1)], 0)
        return [_sum(direct).alias("subagents"), fn.COUNT(Session.id).alias("sessions"),
                _sum(Session.total_tokens).alias("total_tokens"), fn.COALESCE(fn.SUM(Session.cost), 0).alias("cost")]
    return {row.pop("root"): row for row in _under(user_id, external_ids, columns).dicts()}


def count_sessions(user_id, filters):
    """How many sessions ``filters`` select: one indexed COUNT, no row read."""
    return _count(conditions(user_id, filters))


def _count(where):
    return Session.select(fn.COUNT(Session.id)).where(*where).scalar()


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


def find_session(user_id, ident=None, external_id=None, session_id=None):
    """A session of this user by ``session_id``, by ``external_id``, or by ``ident`` (an id or
    an externalId), or None. Raises AmbiguousSession when ``ident`` names two sessions."""
    if external_id is not None:
        return _by_external_id(user_id, external_id)
    query = Session.select().where(Session.user == user_id)
    if session_id is not None:
        return query.where(Session.id == session_id).dicts().first()
    by_external_id = query.where(Session.external_id == ident).dicts().first()
    if ident.isascii() and ident.isdigit() and len(ident) < 19:
        by_id = query.where(Session.id == int(ident)).dicts().first()
        if by_id is not None and by_external_id is not None and by_id["id"] != by_external_id["id"]:
            raise AmbiguousSession(by_id, by_external_id)
        return by_id or by_external_id
    return by_external_id


def _by_external_id(user_id, external_id):
    """A session by externalId, as a prepared statement: importers ask for every session
    they meet, and Peewee would render the SQL anew each time."""
    cursor = prepared(
        "session_by_external_id",
        lambda: Session.select().where(Session.user == slot("user"), Session.external_id == slot("external_id")).limit(1),
        {"user": user_id, "external_id": external_id},
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    return {name: Session._meta.columns[name].python_value(value) for name, value in zip(names, row)}


def with_curation(rows):
    """``rows`` (session dicts) with what the user said of each: starred, note, eval_status
    and tags (sorted). Two queries for any number of rows."""
    by_id = {row["id"]: row for row in rows}
    for row in rows:
        row.update(starred=False, note=None, eval_status=None, tags=[])
    for chunk in _chunks(list(by_id)):
        for c in Curation.select().where(Curation.session.in_(chunk)).dicts():
            by_id[c["session"]].update(starred=c["starred"], note=c["note"], eval_status=c["eval_status"])
        tags = (SessionTag.select(SessionTag.session, Tag.name).join(Tag).where(SessionTag.session.in_(chunk))
                .order_by(Tag.name).tuples())
        for session_id, name in tags:
            by_id[session_id]["tags"].append(name)
    return rows


# A message as readers see it: not the copies of its parts' text kept for search (up to 32 000
# characters each), which would be read for nothing and redacted, and counted, a second time.
MESSAGE_FIELDS = [f for f in Message._meta.sorted_fields if f.name not in ("tool_text", "thinking_text")]


def session_messages(session_id, limit=None, offset=0):
    """A session's messages in creation order (``limit`` of them after the first ``offset``),
    each with its parts (two queries in all)."""
    ordered = Message.select(*MESSAGE_FIELDS).where(Message.session == session_id).order_by(Message.created_at, Message.id)
    if offset and limit is None:
        limit = MAX_ID  # SQL has no OFFSET without a LIMIT
    ordered = ordered.offset(offset or None)
    messages = list(ordered.limit(limit).dicts())
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        m["parts"] = []
    if by_id:
        wanted = Message.session == session_id
        if limit is not None:  # the parts of those messages only
            wanted &= Message.id.in_(ordered.select(Message.id).limit(limit).offset(offset or None))
        parts = (
            Part.select(Part.message, Part.type, Part.content, Part.extra)
            .join(Message)
            .where(wanted)
            .order_by(Part.message, Part.order)
            .dicts()
        )
        for part in parts:
            by_id[part.pop("message")]["parts"].append(part)
    return messages


def message_count(session_id):
    """How many messages a session holds (what readers page through)."""
    return Message.select(fn.COUNT(Message.id)).where(Message.session == session_id).scalar()


def last_messages(session_id, count):
    """A session's last ``count`` messages, in creation order, with their parts."""
    return session_messages(session_id, count, max(0, message_count(session_id) - count))


# --- stats ------------------------------------------------------------------------------------

def subagent_totals(user_id, external_id):
    """The metrics of a session's subagents (every level down, each session once), and of the
    session with them: a subagent's tokens and cost are its own session's, which the parent's
    own totals do not include."""
    below = _under(user_id, [external_id], lambda tree: _metrics()).dicts().first() or {}
    below.pop("root", None)
    subagents = {**_empty_day(), **below}
    own = Session.select(*_metrics()).where(Session.user == user_id, Session.external_id == external_id).dicts().get()
    together = _empty_day()
    for row in (subagents, own):
        _add(together, row)
    return {**subagents, "with_subagents": together}

def _sum(column):
    # SUM of a BIGINT is NUMERIC (a Python Decimal) on PostgreSQL: cast back to whole numbers.
    return fn.COALESCE(fn.SUM(column), 0).cast("BIGINT")


def _metrics():
    return [
        fn.COUNT(Session.id).alias("sessions"),
        _sum(Session.message_count).alias("messages"),
        _sum(Session.prompt_tokens).alias("prompt_tokens"),
        _sum(Session.completion_tokens).alias("completion_tokens"),
        _sum(Session.total_tokens).alias("total_tokens"),
        _sum(Session.cache_write_tokens).alias("cache_write_tokens"),
        _sum(Session.cache_read_tokens).alias("cache_read_tokens"),
        fn.COALESCE(fn.SUM(Session.cost), 0).alias("cost"),
        _sum(Case(None, [(Session.cost_status.in_(("unpriced", "no-split")), 1)], 0)).alias("unpriced_sessions"),
        _sum(Session.duration_ms).alias("duration_ms"),
        fn.MAX(Session.updated_at).alias("last_active"),
    ]


def stats_query(user_id, filters, *dimensions, counts_only=False):
    """THE stats query builder: one GROUP BY over the filtered sessions, by one dimension
    (its value as ``key``) or several (each under its own name); every metric, or only the
    number of sessions."""
    keys = [DIMENSIONS[d] for d in dimensions]
    aliases = ["key"] if len(keys) == 1 else list(dimensions)
    metrics = [fn.COUNT(Session.id).alias("sessions")] if counts_only else _metrics()
    query = (
        Session.select(*(k.alias(a) for k, a in zip(keys, aliases)), *metrics)
        .where(*conditions(user_id, filters))
        .group_by(*keys)
    )
    # Sessions with no source (model, ...) first among equals, as SQLite sorts NULL.
    keys = [key.asc(nulls="first") for key in keys]
    if dimensions[0] == "day":
        return query.order_by(*keys)
    return query.order_by(fn.COUNT(Session.id).desc(), *keys)


def grouped_stats(user_id, filters, dimension):
    if dimension == "project":
        return _by_project(user_id, stats_query(user_id, filters, "project_name", "project_path").dicts())
    return list(stats_query(user_id, filters, dimension).dicts())


def _days(filters, days):
    """(first day, last day, the filters bounded to them) for ``days`` UTC days up to ``to``
    (default today), or from ``from`` when it is given; at most MAX_DAYS days."""
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
    return first, last, {**filters, "date_from": date_from, "date_to": date_to}


def _empty_day():
    return dict.fromkeys(_METRIC_NAMES, 0) | {"last_active": None}


BUCKETS = ("day", "week", "month")


def bucket_start(day, bucket):
    """The first day of the UTC day, ISO week (Monday) or calendar month holding ``day``."""
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _buckets(first, last, bucket):
    """[(bucket start, first day in range, last day in range)] covering first..last."""
    out = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        start = bucket_start(day, bucket)
        if out and out[-1][0] == start:
            out[-1] = (start, out[-1][1], day)
        else:
            out.append((start, day, day))
    return out


def _fold(by_day, buckets):
    """Per-day metric rows (keyed by day number) added up per bucket; empty buckets are zeros."""
    rows = []
    for start, first, last in buckets:
        row = _empty_day()
        for number in range(_ms_of(first) // DAY_MS, _ms_of(last) // DAY_MS + 1):
            if number in by_day:
                _add(row, by_day[number])
        rows.append(row)
    return rows


def daily_stats(user_id, filters, days, bucket="day"):
    """One row per UTC day (or ISO week, or month), ascending, empty ones included; each
    bucket's ``date`` is its first day (the range's first day for a bucket it cuts)."""
    first, last, bounded = _days(filters, days)
    found = {row.pop("key"): row for row in grouped_stats(user_id, bounded, "day")}
    buckets = _buckets(first, last, bucket)
    return [{"date": begin.isoformat(), "until": end.isoformat(), **row}
            for (_, begin, end), row in zip(buckets, _fold(found, buckets))]


def daily_by(user_id, filters, days, dimension="source", bucket="day"):
    """The same buckets, split by ``dimension``: ([(first day, last day)], {value: [metrics per
    bucket]}), values with the most cost (then sessions) first (None = not reported)."""
    first, last, bounded = _days(filters, days)
    buckets = _buckets(first, last, bucket)
    per_value = {}
    if dimension == "project":
        known = user_projects(user_id)
        for row in stats_query(user_id, bounded, "project_name", "project_path", "day").dicts():
            key = known.key(row.pop("project_name"), row.pop("project_path"))
            day = per_value.setdefault(key, {})
            _add(day.setdefault(row.pop("day"), _empty_day()), row)
    else:
        for row in stats_query(user_id, bounded, dimension, "day").dicts():
            per_value.setdefault(row.pop(dimension), {})[row.pop("day")] = row
    weight = lambda item: (-sum(r["cost"] for r in item[1].values()), -sum(r["sessions"] for r in item[1].values()))  # noqa: E731
    ordered = sorted(per_value.items(), key=weight)
    return [(begin.isoformat(), end.isoformat()) for _, begin, end in buckets], {
        value: _fold(by_day, buckets) for value, by_day in ordered
    }


def first_activity(user_id, filters):
    """When the first session ``filters`` select started (epoch ms), or None: one index seek."""
    return Session.select(fn.MIN(Session.created_at)).where(*conditions(user_id, filters)).scalar()


MAX_DAYS = 3660
_METRIC_NAMES = ("sessions", "messages", "prompt_tokens", "completion_tokens", "total_tokens", "cache_write_tokens",
                 "cache_read_tokens", "cost", "unpriced_sessions", "duration_ms")


def _day_of(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date()


def _ms_of(day):
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


BREAKDOWN = ("source", "model", "provider", "project_name", "project_path")  # the covering index's order


def breakdown(user_id, filters, counts_only=False):
    """The filtered sessions' totals and their metrics per source, model, provider and
    project, from ONE scan: grouped by all four in the order of the covering (user, source,
    model, ...) index, then added up here (a user has hundreds of such groups, not the
    hundred thousands of sessions). Returns (totals, {dimension: rows like grouped_stats'}),
    rows with the most sessions first."""
    totals = _empty_day()
    per = {dimension: {} for dimension in ("source", "model", "provider", "project")}
    known = user_projects(user_id)
    for row in stats_query(user_id, filters, *BREAKDOWN, counts_only=counts_only).dicts():
        row["project"] = known.key(row["project_name"], row["project_path"])
        _add(totals, row)
        for dimension, rows in per.items():
            value = row[dimension]
            _add(rows.setdefault(value, {"key": value, **_empty_day()}), row)
    labels = known.labels(per["project"])
    for key, row in per["project"].items():
        row["label"] = labels[key]
    return totals, {dimension: sorted(rows.values(), key=_group_order) for dimension, rows in per.items()}


def _add(into, row):
    for name in _METRIC_NAMES:
        into[name] += row.get(name, 0)
    if row.get("last_active") is not None and (into["last_active"] is None or row["last_active"] > into["last_active"]):
        into["last_active"] = row["last_active"]


def summary(user_id, filters):
    """Totals, distinct counts, per-model usage, and under ``by`` the per-source, model,
    provider and project rows (one scan: ``breakdown``)."""
    totals, by = breakdown(user_id, filters)
    sessions = totals["sessions"]
    totals["unique_models"] = sum(1 for row in by["model"] if row["key"] is not None)
    totals["unique_projects"] = sum(1 for row in by["project"] if row["key"] is not None)
    totals["avg_tokens_per_session"] = totals["total_tokens"] / sessions if sessions else 0
    totals["avg_cost_per_session"] = totals["cost"] / sessions if sessions else 0
    totals["model_usage"] = {row["key"]: row for row in by["model"] if row["key"] is not None}
    totals["by"] = by
    return totals


def filter_options(user_id, by=None):
    """The distinct values of each filterable dimension with their session counts, most
    sessions first (connection tests left out); ``by`` is an unfiltered ``summary``'s (of
    ``{"tests": False}``), when the caller has one."""
    by = by or breakdown(user_id, {"tests": False}, counts_only=True)[1]
    return {dimension: [{"value": row["key"], "count": row["sessions"], **({"label": row["label"]} if "label" in row else {})}
                        for row in rows] for dimension, rows in by.items()}


def data_version(user_id, reuse=False):
    """A text that changes whenever the user's sessions do: every write stamps the sessions it
    touches with a time later than any before it (``ingest``), and so does a delete (stamped in
    settings);
    what the user says of them (stars, tags, ...) is stamped the same way on its own rows.
    Live pages poll it; the dashboard keys remembered pages on it. ``reuse``: what this request
    read already, if it did."""
    latest, deleted = _sessions_version(user_id, reuse)
    # From the curations, each checked by its session's key: joined the other way the database
    # walks every session of the user to find the few that were curated.
    own = Session.select(Session.id).where(Session.id == Curation.session, Session.user == user_id)
    curated = Curation.select(fn.MAX(Curation.updated_at)).where(fn.EXISTS(own)).scalar()
    return f"{latest or 0}-{deleted or 0}-{curated or 0}"


# --- search -----------------------------------------------------------------------------------

MATCHES_PER_SESSION = 3


def search(user_id, text, limit=20, source=None, where=None, offset=0, filters=None, kind="fulltext"):
    """One page of the sessions matching ``text`` (in the ``where`` kind of text, when given),
    best first and the newest first among equals: each with its best matches (up to
    MATCHES_PER_SESSION, best first), those of the best one on the session itself. ``filters``
    narrows the sessions as lists do (project, dates, ...). ``kind`` (search.kinds.TYPES): by
    words, by meaning (semantic: the best turns are the matches; ``where`` does not apply, a
    turn is compared whole), or both fused (hybrid: ``where`` narrows its words).
    Returns (sessions, whether more follow)."""
    if kind != "fulltext":
        from .semantic import load_ranking

        if kind == "semantic":
            return load_ranking().semantic(user_id, text, limit, offset, {"source": source, **(filters or {})})
        return load_ranking().hybrid(user_id, text, limit, offset, filters, source, where)
    match = fts.match_expression(text, where)
    if match is None:
        return [], False
    session_id, rank, message_id = fts.column("session_id"), fts.column("rank"), fts.column("message_id")
    # Each hit numbered within its session (best first), beside its session's best rank ...
    numbered = (
        Session.select(
            fts.column("kind").alias("kind"), Session.id.alias("session_id"), message_id.alias("message_id"),
            rank.alias("rank"), Session.external_id, Session.source, Session.title, Session.project_name,
            Session.project_path, Session.model, Session.created_at, Session.updated_at,
            fn.ROW_NUMBER().over(partition_by=[session_id], order_by=[rank, fn.COALESCE(message_id, 0).desc()]).alias("nth"),
            fn.MIN(rank).over(partition_by=[session_id]).alias("best"),
        )
        .from_(fts.hits(match, user_id), Session)
        .where(Session.id == session_id, *conditions(user_id, {"source": source, **(filters or {})}))
    ).alias("numbered")
    # ... then the sessions numbered in their order, so a page is a range of those numbers.
    place = fn.DENSE_RANK().over(order_by=[numbered.c.best, numbered.c.updated_at.desc(), numbered.c.session_id.desc()])
    columns = [getattr(numbered.c, name) for name in (
        "kind", "session_id", "message_id", "rank", "external_id", "source", "title", "project_name",
        "project_path", "model", "created_at", "updated_at", "nth")]
    placed = Session.select(*columns, place.alias("place")).from_(numbered).where(
        numbered.c.nth <= MATCHES_PER_SESSION).alias("placed")
    rows = list(
        Session.select(SQL("placed.*")).from_(placed)
        .where(placed.c.place > offset, placed.c.place <= offset + limit + 1)
        .order_by(placed.c.place, placed.c.nth).dicts()
    )
    found = fts.snippets(
        match,
        [r["session_id"] for r in rows if r["kind"] == "session"],
        [r["message_id"] for r in rows if r["kind"] == "message"],
    )
    sessions = {}
    for row in rows:
        snippet, found_in = found.get((row["kind"], row["message_id"] or row["session_id"]), ("", row["kind"]))
        hit = {"kind": row["kind"], "message_id": row["message_id"], "rank": row["rank"],
               "snippet": snippet, "found_in": found_in}
        if row["session_id"] not in sessions:
            sessions[row["session_id"]] = {
                **{k: v for k, v in row.items() if k not in ("nth", "place", "best", "message_id", "kind", "rank")},
                **hit, "matches": []}
        sessions[row["session_id"]]["matches"].append(hit)
    page = list(sessions.values())
    return page[:limit], len(page) > limit
