"""THE write path. Every session and message, from HTTP or an importer, goes through here.

Input is what the schemas loaded: snake_case dicts holding only the keys the client sent.
Each public function runs in one write transaction (db.write_transaction), so a request is
written whole or not at all. The statements are Peewee queries run through ``prepared``:
rendered once, then executed with new values on every call.
"""

import re
import time

from peewee import Case, Value, fn

from . import files
from .auth import now_ms
from .db import (
    SCHEMA_LOCK, USER_LOCKS, database, inserted_id, is_postgres, prepared, prepared_many, slot, write_transaction,
)
from .search import texts
from .models import (
    Curation, FileTouch, ImportResponse, JSONText, Message, Part, Session, SessionTag, Setting, Tag,
)

# A zero here never overwrites a stored non-zero value: the claude-code plugin sends zeros at
# SessionEnd when it has no transcript, which would otherwise wipe the real totals.
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
KEEP_IF_ZERO = ("prompt_tokens", "completion_tokens", "total_tokens", "cost", *TOKEN_KINDS)
SESSION_COLUMNS = [f for f in Session._meta.sorted_fields if f is not Session.id]
MESSAGE_COLUMNS = [f for f in Message._meta.sorted_fields if f is not Message.id]
PART_COLUMNS = [f for f in Part._meta.sorted_fields if f is not Part.id]
TOUCH_COLUMNS = FileTouch._meta.sorted_fields
ROW_ID = "__row_id"  # the slot for the row an UPDATE targets, apart from any column name

_last_stamp = 0


def _stamp(user_id):
    """The time a write records as written_at: now in ms, but always later than the user's
    latest written_at (called under the user's write lock, one index seek), so every write
    moves it on, which is what ``queries.data_version`` watches, also when several server
    processes write in the same millisecond. (updated_at is the latest activity: now for a
    live client, the transcript's own times for an importer.)"""
    global _last_stamp
    latest = prepared("latest_write", lambda: Session.select(fn.MAX(Session.written_at)).where(
        Session.user == slot("user")), {"user": user_id}).fetchone()[0] or 0
    _last_stamp = max(now_ms(), _last_stamp + 1, latest + 1)
    return _last_stamp


def upsert_session(user_id, data, default_source=None):
    """Create or partially update the session ``data['external_id']``; returns its id.
    ``default_source`` (the key's) is the source of a session that has none and is sent none."""
    with write_transaction(user_id):
        return _upsert_session(user_id, data, _stamp(user_id), default_source)


def upsert_message(user_id, data, default_source=None):
    """Create or replace a message (and its parts); returns its id."""
    with write_transaction(user_id):
        (message_id,) = _upsert_messages(user_id, [data], _stamp(user_id), default_source)
    return message_id


# A batch is written in transactions of at most WRITE_CHUNK items, each sized to hold SQLite's
# one write lock for about WRITE_HOLD seconds: a large batch would otherwise hold it for seconds
# (longer on a loaded machine), and other users' writers queue behind it.
WRITE_CHUNK = 500
WRITE_HOLD = 0.15


def _in_transactions(user_id, items, write):
    """Call ``write(chunk, now)`` for consecutive chunks of ``items``, one transaction each;
    the next chunk's size follows how long the last one took."""
    start, size = 0, WRITE_CHUNK
    while start < len(items):
        began = time.perf_counter()
        with write_transaction(user_id):
            write(items[start:start + size], _stamp(user_id))
        start += size
        took = time.perf_counter() - began
        if start < len(items):
            time.sleep(0.002)  # a gap in which a waiting writer (this process or another) takes the lock
        size = max(25, min(WRITE_CHUNK, int(size * WRITE_HOLD / took))) if took > 0 else WRITE_CHUNK


def ingest_batch(user_id, sessions, messages, default_source=None):
    """Write already-validated sessions, then messages, in short transactions (each chunk
    whole; a client resending the batch after a failure duplicates nothing, as every write is
    an upsert). Returns (sessions stored, messages stored)."""
    _in_transactions(user_id, sessions, lambda chunk, now: [
        _upsert_session(user_id, data, now, default_source) for data in chunk])
    _in_transactions(user_id, messages, lambda chunk, now: _upsert_messages(user_id, chunk, now, default_source))
    return len(sessions), len(messages)


def delete_session(user_id, session_id):
    """Delete a session of this user; its messages, parts and search rows go with it
    (foreign keys cascade, and the search triggers follow the cascade)."""
    with write_transaction(user_id):
        deleted = Session.delete().where(Session.user == user_id, Session.id == session_id).execute()
        if deleted:  # what ``queries.data_version`` reads for a delete, instead of counting sessions
            stamp = str(_stamp(user_id))
            (Setting.insert(name=Setting.sessions_deleted(user_id), value=stamp)
             .on_conflict(conflict_target=[Setting.name], update={Setting.value: stamp}).execute())
        return deleted


def curate(user_id, session_id, fields):
    """Set what the user says of one of their sessions: any of ``starred``, ``note``,
    ``eval_status`` (the others stay), and ``tags`` (the whole set, replaced). Each change
    stamps the session's curation row later than the user's last one, which is what
    ``queries.data_version`` watches for these."""
    curate_many(user_id, [session_id], fields)


def curate_many(user_id, session_ids, fields, add_tags=()):
    """``curate`` for several sessions at once (those of ``session_ids`` that are the user's),
    in one transaction; ``add_tags`` joins each session's tags instead of replacing them.
    Returns how many sessions it changed."""
    with write_transaction(user_id):
        mine = [i for (i,) in Session.select(Session.id).where(Session.user == user_id, Session.id.in_(session_ids)).tuples()]
        latest = (Curation.select(fn.MAX(Curation.updated_at)).join(Session)
                  .where(Session.user == user_id).scalar()) or 0
        now = max(now_ms(), latest + 1)
        values = {k: fields[k] for k in ("starred", "note", "eval_status") if k in fields}
        for session_id in mine:
            Curation.insert(session=session_id, updated_at=now, **values).on_conflict(
                conflict_target=[Curation.session],
                update={**{getattr(Curation, k): v for k, v in values.items()}, Curation.updated_at: now},
            ).execute()
        if "tags" in fields:
            SessionTag.delete().where(SessionTag.session.in_(mine)).execute()
        names = list(dict.fromkeys([*fields.get("tags", ()), *add_tags]))
        if names and mine:
            Tag.insert_many([{"user": user_id, "name": n} for n in names]).on_conflict_ignore().execute()
            ids = [t for (t,) in Tag.select(Tag.id).where(Tag.user == user_id, Tag.name.in_(names)).tuples()]
            SessionTag.insert_many([{"session": s, "tag": t} for s in mine for t in ids]).on_conflict_ignore().execute()
    return len(mine)


# --- statements -------------------------------------------------------------------------------

def _column_slot(field):
    """A slot for a column. The schemas already gave every value its column's type; only
    JSON columns need encoding on the way in."""
    return slot(field.name, field.db_value if isinstance(field, JSONText) else None)


def _insert(model, columns, values):
    """INSERT every column, absent values taking the model's defaults; returns the new id."""
    row = {f.name: values.get(f.name, f.default) for f in columns}
    return inserted_id(prepared(("insert", model), lambda: model.insert({f: _column_slot(f) for f in columns}), row))


def _insert_many(model, columns, rows):
    """``_insert`` for many rows at once (their ids are not returned)."""
    prepared_many(
        ("insert", model),
        lambda: model.insert({f: _column_slot(f) for f in columns}),
        [{f.name: values.get(f.name, f.default) for f in columns} for values in rows],
    )


def _update(model, row_id, values):
    """UPDATE only the given columns of one row."""
    names = tuple(sorted(values))
    fields = [model._meta.fields[name] for name in names]
    prepared(
        ("update", model, names),
        lambda: model.update({f: _column_slot(f) for f in fields}).where(model.id == slot(ROW_ID)),
        {**values, ROW_ID: row_id},
    )


def _find_session(user_id, external_id):
    """(id, source, prompt_tokens, completion_tokens, extra, created_from_message, project_path,
    updated_at, title) or None."""
    row = prepared(
        "find_session",
        lambda: Session.select(
            Session.id, Session.source, Session.prompt_tokens, Session.completion_tokens, Session.extra,
            Session.created_from_message, Session.project_path, Session.updated_at, Session.title,
        ).where(Session.user == slot("user"), Session.external_id == slot("external_id")).limit(1),
        {"user": user_id, "external_id": external_id},
    ).fetchone()
    return row and (*row[:4], Session.extra.python_value(row[4]), bool(row[5]), *row[6:])


def _count_messages(session_id, added, now, activity):
    """message_count is the number of the session's stored messages: messages are only ever
    added (a resend replaces) or deleted with their session, so counting the new ones keeps it
    exact without re-counting. Writing a message also stamps the session, and moves its
    latest activity on to ``activity`` when that is later."""
    prepared(
        "count_messages",
        lambda: Session.update(
            message_count=Session.message_count + slot("added"), written_at=slot("now"),
            updated_at=Case(None, [(Session.updated_at < slot("activity"), slot("activity"))], Session.updated_at),
        ).where(Session.id == slot("id")),
        {"id": session_id, "added": added, "now": now, "activity": activity},
    )


# --- upserts ----------------------------------------------------------------------------------

def _merge_extra(fields, stored_extra):
    if "extra" in fields and stored_extra:
        fields["extra"] = {**stored_extra, **fields["extra"]}


def _total(fields, prompt_tokens, completion_tokens):
    """total_tokens is prompt + completion, or the client's own total when that is larger
    (the pi plugin sends only a total)."""
    claimed = fields.pop("total_tokens", None)
    if claimed is None and "prompt_tokens" not in fields and "completion_tokens" not in fields:
        return
    split = fields.get("prompt_tokens", prompt_tokens) + fields.get("completion_tokens", completion_tokens)
    fields["total_tokens"] = split if claimed is None else max(split, claimed)


# What a plugin reports of a session's usage: liveness until the agent's own record (its
# transcript, its telemetry: the counted responses) arrives, then kept aside, never counted.
CLIENT_TOTALS = {"prompt_tokens": "promptTokens", "completion_tokens": "completionTokens", "total_tokens": "totalTokens",
                 "input_tokens": "inputTokens", "output_tokens": "outputTokens", "cache_write_tokens": "cacheWriteTokens",
                 "cache_read_tokens": "cacheReadTokens", "cost": "cost"}


PLACEHOLDER_TITLE = "Untitled"  # the pi plugin's title for a session without a name: no title


def cut_from(title, prompt):
    """Whether ``title`` (a plugin's) is no more than ``prompt`` cut short: claude-code-sync
    sends a prompt's first characters and "...", a cut emoji's half repaired to U+FFFD. The
    whole prompt is the better title then; any other title (a user's own) is not a cut."""
    if not title or not prompt:
        return False
    kept = title.rstrip(".… ").rstrip("\ufffd").rstrip()
    return len(kept) < len(prompt) and prompt.startswith(kept)


def _has_responses(user_id, external_id):
    return prepared("has_responses", lambda: ImportResponse.select(ImportResponse.response_key).where(
        ImportResponse.user == slot("user"), ImportResponse.session_external_id == slot("session")).limit(1),
        {"user": user_id, "session": external_id}).fetchone() is not None


def _upsert_session(user_id, data, now, default_source=None, client=True):
    """``client``: the data comes from a sync client (a plugin), not from the agent's own
    record (an importer, which may say when the session was last active: ``updated_at``)."""
    fields = dict(data)
    external_id = fields.pop("external_id")
    activity = fields.pop("updated_at", None) if not client else None
    created_at = fields.pop("created_at", None)
    if "message_count" in fields:
        # The stored count is the messages' own (_count_messages); the client's figure is kept.
        fields["extra"] = {**fields.get("extra", {}), "messageCount": fields.pop("message_count")}
    stored = _find_session(user_id, external_id)
    if stored is None:
        _total(fields, 0, 0)
        fields.setdefault("source", default_source)
        session_id = _insert(
            Session,
            SESSION_COLUMNS,
            {**fields, "user": user_id, "external_id": external_id, "created_at": now if created_at is None else created_at,
             "updated_at": now if activity is None else activity, "written_at": now},
        )
        _price_if_unpriced(user_id, session_id, external_id, fields)
        return session_id

    session_id, source, prompt_tokens, completion_tokens, extra, from_message, project_path, updated_at, title = stored
    if client and cut_from(fields.get("title"), title):
        del fields["title"]  # the transcript's whole prompt stays over a plugin's cut copy of it
    if client and title and fields.get("title") == PLACEHOLDER_TITLE:
        del fields["title"]  # the pi plugin's name for a session it has no name for
    if client and any(name in fields for name in CLIENT_TOTALS) and _has_responses(user_id, external_id):
        reported = {wire: fields.pop(name) for name, wire in CLIENT_TOTALS.items() if name in fields}
        fields["extra"] = {**fields.get("extra", {}), "clientTotals": reported}
    if from_message and created_at is not None:
        # The session was made by an early message; its own createdAt is the true start.
        fields.update(created_at=created_at, created_from_message=False)
    if source is None and "source" not in fields and default_source is not None:
        fields["source"] = default_source
    for name in KEEP_IF_ZERO:
        if fields.get(name) == 0:
            del fields[name]
    _total(fields, prompt_tokens, completion_tokens)
    _merge_extra(fields, extra)
    if fields.get("cost"):
        fields["cost_status"] = None  # a client's cost always wins over an estimate
    # A live client's write is activity now; an importer's moves it on only to a later time.
    _update(Session, session_id, {**fields, "written_at": now,
                                  "updated_at": now if activity is None else max(activity, updated_at)})
    if fields.get("project_path", project_path) != project_path:
        _index_files(session_id)  # relative paths now point elsewhere
    _price_if_unpriced(user_id, session_id, external_id, fields)
    return session_id


PRICED_BY = ("model", "prompt_tokens", "completion_tokens", *TOKEN_KINDS)


def _price_if_unpriced(user_id, session_id, external_id, fields):
    """A session with a model and tokens but no cost from its client gets an estimate
    (cost_status 'estimated'), or is marked 'unpriced' when the model has no known price.
    Imported sessions are priced per response (_total_from_responses) instead."""
    if fields.get("cost") or not any(name in fields for name in PRICED_BY):
        return
    columns = ("model", "cost", "cost_status", "prompt_tokens", "completion_tokens", *TOKEN_KINDS)
    values = prepared("pricing_fields", lambda: Session.select(*(getattr(Session, c) for c in columns)).where(
        Session.id == slot("id")), {"id": session_id}).fetchone()
    row = dict(zip(columns, values))
    if (row["cost"] and row["cost_status"] is None) or not row["model"] or not (row["prompt_tokens"] or row["completion_tokens"]):
        return
    if _has_responses(user_id, external_id):
        return
    _update(Session, session_id, _estimate(row))


UNPRICED = ("unpriced", NO_SPLIT := "no-split")  # a model without a price; tokens without their split


def _estimate(row):
    """cost and cost_status for a session from its own four token kinds. Without them there is
    no estimate: plugins such as claude-code-sync send a prompt with the cache folded in, and
    pricing that as fresh input is 5-17x too high. The session stays unpriced ('no-split')
    until a transcript or the agent's telemetry gives the split."""
    from .pricing import price  # the price data loads only when something needs a price

    kinds = [row[k] for k in TOKEN_KINDS]
    if not any(kinds):
        return {"cost": 0.0, "cost_status": NO_SPLIT}
    estimate = price(row["model"], *kinds)
    return {"cost": estimate or 0.0, "cost_status": "unpriced" if estimate is None else "estimated"}


def reprice(user_id):
    """Price every estimated or unpriced session again (after `pip install -U genai-prices`);
    returns how many sessions were looked at."""
    with write_transaction(user_id):
        imported = {r.session_external_id for r in ImportResponse.select(ImportResponse.session_external_id)
                    .where(ImportResponse.user == user_id).distinct()}
        _total_from_responses(user_id, imported)
        rows = list(Session.select(Session.id, Session.external_id, Session.model, Session.prompt_tokens,
                                   Session.completion_tokens, *(getattr(Session, k) for k in TOKEN_KINDS))
                    .where(Session.user == user_id, Session.cost_status.is_null(False)).dicts())
        for row in rows:
            if row["external_id"] not in imported and row["model"]:
                _update(Session, row["id"], _estimate(row))
    return len(imported | {r["external_id"] for r in rows})


def _session_for_message(user_id, external_id, source, created_at, now, activity):
    """(id, project path) of the message's session, created if it does not exist yet (a later
    /sync/session fills it in), starting when its first message was written.
    A message's source fills an unknown session source."""
    stored = _find_session(user_id, external_id)
    if stored is None:
        return _insert(
            Session,
            SESSION_COLUMNS,
            {"user": user_id, "external_id": external_id, "source": source, "updated_at": activity, "written_at": now,
             "created_at": now if created_at is None else created_at, "created_from_message": True},
        ), None
    if source is not None and stored[1] is None:
        _update(Session, stored[0], {"source": source})
    return stored[0], stored[6]


IN_SIZES = (1, 8, 64, 512)  # IN lists are padded to one of these, so their SQL is prepared once


def _rows_in(key, ids, build, values=None):
    """The rows of the query ``build(slots)`` for every id of ``ids``, in IN lists padded to
    one of IN_SIZES (``slots``: the list's holes), so each size's SQL is rendered once."""
    ids, rows = list(ids), []
    for start in range(0, len(ids), IN_SIZES[-1]):
        chunk = ids[start:start + IN_SIZES[-1]]
        size = next(n for n in IN_SIZES if n >= len(chunk))
        padded = chunk + [chunk[0]] * (size - len(chunk))
        rows += prepared((key, size), lambda: build([slot(f"e{i}") for i in range(size)]),
                         {**(values or {}), **{f"e{i}": value for i, value in enumerate(padded)}}).fetchall()
    return rows


def _find_messages(session_id, external_ids):
    """{external_id: (id, extra)} for those of ``external_ids`` stored in the session."""
    rows = _rows_in("find_messages", external_ids, lambda holes: Message.select(
        Message.external_id, Message.id, Message.extra).where(
        Message.session == slot("session"), Message.external_id.in_(holes)), {"session": session_id})
    return {external_id: (message_id, Message.extra.python_value(extra)) for external_id, message_id, extra in rows}


def _upsert_messages(user_id, messages, now, default_source=None, client=True):
    """Create or replace messages, grouped by session; returns the id of each, in order. A
    live client's messages are activity now; an importer's happened at their own times."""
    by_session = {}
    for data in messages:
        by_session.setdefault(data["session_external_id"], []).append(data)
    ids = {}  # (session externalId, message externalId) -> id
    for session_external_id, items in by_session.items():
        source = next((d["source"] for d in items if d.get("source") is not None), default_source)
        times = [d["created_at"] for d in items if d.get("created_at") is not None]
        activity = now if client else max(times, default=now)
        session = _session_for_message(user_id, session_external_id, source, min(times, default=None), now, activity)
        for external_id, message_id in _upsert_session_messages(user_id, session, items, now, activity, client).items():
            ids[session_external_id, external_id] = message_id
    return [ids[d["session_external_id"], d["external_id"]] for d in messages]


def _upsert_session_messages(user_id, session, items, now, activity, client=True):
    """One session's messages in bulk: one lookup, then one executemany for the new rows and
    one for their parts (and one for the files they touched). A message sent twice in one
    call is merged as a resend; a client's copy of what the transcript already gave is
    recognised (``_known_from_transcript``). Returns {externalId: id}."""
    session_id, project_path = session
    touches = []
    if any(not d["external_id"].startswith(OTEL) for d in items):
        _drop_telemetry_copy(session_id)
    found = _find_messages(session_id, {d["external_id"] for d in items})
    # A client's copy of what the transcript gave is not written at all: the transcript's is whole.
    known = _known_from_transcript(session_id, [d for d in items if d["external_id"] not in found]) if client else {}
    stored = {ext: message_id for ext, (message_id, _) in found.items()}
    extras = {ext: extra for ext, (_, extra) in found.items()}
    # A client's resend of an answer the agent's own file gave (the pi plugin names its messages
    # as the importer does) keeps the file's text, parts, times and counts: the file's are whole.
    held = _holding_responses(user_id, session_id, [d["external_id"] for d in items if d["external_id"] in found]) \
        if client and found else set()
    new = {}  # externalId -> (row, parts)
    resent = False
    for data in items:
        fields = {k: v for k, v in data.items() if k not in ("session_external_id", "source", "parts")}
        external_id, parts = fields.pop("external_id"), data.get("parts")
        if external_id in known:
            continue
        if parts is not None:  # what search reads of them goes with the parts
            fields.update(texts.part_texts(parts))
        if external_id in held:
            fields = {k: v for k, v in fields.items() if k == "extra"}  # what the file does not say
            parts = None
        if external_id in stored:
            # A resend replaces what it carries and keeps the rest; it never duplicates.
            message_id = stored[external_id]
            resent = resent or bool(fields) or parts is not None
            _merge_extra(fields, extras.get(external_id))
            if "extra" in fields:
                extras[external_id] = fields["extra"]
            if fields:
                _update(Message, message_id, fields)
            if parts is not None:
                prepared("delete_parts", lambda: Part.delete().where(Part.message == slot("message")),
                         {"message": message_id})
                prepared("delete_touches", lambda: FileTouch.delete().where(
                    FileTouch.session == slot("session"), FileTouch.message == slot("message")),
                         {"session": session_id, "message": message_id})
                _insert_parts(message_id, parts)
                touches += files.rows(message_id, session_id, user_id, parts, project_path)
        elif external_id in new:
            row, old_parts = new[external_id]
            _merge_extra(fields, row.get("extra"))
            new[external_id] = ({**row, **fields}, old_parts if parts is None else parts)
        else:
            row = {"role": "unknown", "created_at": now, **fields, "session": session_id, "external_id": external_id}
            new[external_id] = (row, parts)
    if len(new) == 1:
        ((external_id, (row, _)),) = new.items()
        stored[external_id] = _insert(Message, MESSAGE_COLUMNS, row)
    elif new:
        _insert_many(Message, MESSAGE_COLUMNS, [row for row, _ in new.values()])
        stored.update({ext: message_id for ext, (message_id, _) in _find_messages(session_id, new).items()})
    _insert_many(Part, PART_COLUMNS, [row for external_id, (_, parts) in new.items()
                                      for row in _part_rows(stored[external_id], parts)])
    for external_id, (_, parts) in new.items():
        touches += files.rows(stored[external_id], session_id, user_id, parts, project_path)
    if touches:
        _insert_many(FileTouch, TOUCH_COLUMNS, touches)
    if new or resent:  # a resend is activity too: the session (and the data version) moves on
        _count_messages(session_id, len(new), now, activity)
    if any(p.get("type") in TOOL_CALLS for d in items for p in (d.get("parts") or ()) if isinstance(p, dict)):
        _count_tool_calls(session_id)
    return {**stored, **known}


def _holding_responses(user_id, session_id, external_ids):
    """Those of ``external_ids`` (messages of the session) that the agent's file gave: each that
    holds a response an importer counted, and each prompt such a response answered (one counted
    at or after the prompt's time: the file holds that turn, so its prompt too)."""
    if not external_ids:
        return set()
    external = Session.select(Session.external_id).where(Session.id == session_id).scalar()
    # The file's responses, as _counted names them: not the session's own figures (cost-state,
    # telemetry's events and metrics), which answer no prompt of the file's.
    counted = ImportResponse.select(ImportResponse.message_external_id).where(
        ImportResponse.user == user_id, ImportResponse.session_external_id == external,
        *(~ImportResponse.response_key.startswith(prefix) for prefix in SESSION_ROWS))
    held = {e for (e,) in counted.where(ImportResponse.message_external_id.in_(external_ids)).tuples()}
    answered = counted.select(fn.MAX(ImportResponse.created_at)).scalar()
    if answered:
        held |= {e for (e,) in Message.select(Message.external_id).where(
            Message.session == session_id, Message.role == "user", Message.external_id.in_(external_ids),
            Message.created_at <= answered).tuples()}
    return held


TOOL_CALLS = ("tool-call", "tool_use")
LIVE_PROMPT = "-user-"  # claude-code-sync names a prompt `<session>-user-<time of its hook>`


PLUGIN_NUMBERED = re.compile(r"-(user|assistant|tool)-\d+")


def plugin_numbered(session_external_id, external_id):
    """Whether ``external_id`` is named as the pi plugin names a session's messages: ``<session>-<role>-<n>``."""
    return (external_id.startswith(session_external_id)
            and PLUGIN_NUMBERED.fullmatch(external_id, len(session_external_id)) is not None)


PI_COPY_WINDOW_MS = 10 * 60_000  # a live copy arrives while the file is written, not later


def _known_from_pi_file(session_id, items):
    """{externalId: id} of the pi plugin's new messages that the session's file already gave
    under another number (the plugin counts afresh after a resume): each matched by role and
    text to one stored message written near its time, the nearest, and none twice (the same
    words typed again later are a new message)."""
    session = Session.select(Session.external_id, Session.user).where(Session.id == session_id).tuples().first()
    numbered = [d for d in items if session and d.get("role") in ("user", "assistant") and plugin_numbered(session[0], d["external_id"])]
    if not numbered or not ImportResponse.select(ImportResponse.response_key).where(
            ImportResponse.user == session[1], ImportResponse.session_external_id == session[0],
            ImportResponse.response_key.startswith("pi:")).exists():
        return {}
    said = {}
    for message_id, role, text, created_at in Message.select(Message.id, Message.role, Message.text_content,
                                                             Message.created_at).where(
            Message.session == session_id).order_by(Message.id).tuples():
        said.setdefault((role, text or ""), []).append((message_id, created_at))
    known, taken = {}, set()
    for d in numbered:
        at = d.get("created_at")
        near = [(abs(created - at), message_id) for message_id, created in said.get((d["role"], d.get("text_content") or ""), ())
                if at is not None and message_id not in taken and abs(created - at) <= PI_COPY_WINDOW_MS]
        if near:
            known[d["external_id"]] = min(near)[1]
            taken.add(known[d["external_id"]])
    return known


def _known_from_transcript(session_id, items):
    """{externalId: id} of those of a client's new ``items`` that the session already
    holds from the agent's transcript under the transcript's own ids: claude-code-sync's
    prompts (matched by text) and its tool calls (a message named by the tool_use id, matched
    with the tool-call part carrying that id). Without this, `import --watch` or serve's
    watcher beside the plugin would store the prompt and the tool call twice."""
    known = _known_from_pi_file(session_id, items)
    prompts = [d for d in items if LIVE_PROMPT in d["external_id"] and d.get("role") == "user" and d["external_id"] not in known]
    tools = [d for d in items if d["external_id"].startswith("toolu_")]
    if not prompts and not tools:
        return known
    if prompts:
        texts = {}
        for message_id, text, external_id in Message.select(
                Message.id, Message.text_content, Message.external_id).where(
                Message.session == session_id, Message.role == "user").tuples():
            if LIVE_PROMPT not in external_id:
                texts.setdefault(text, message_id)
        for d in prompts:
            if d.get("text_content") in texts:
                known[d["external_id"]] = texts.pop(d["text_content"])
    for d in tools:
        pattern = Value(f'%"id":"{d["external_id"]}"%', converter=False)  # in the stored JSON text
        row = (Message.select(Message.id).join(Part)
               .where(Message.session == session_id, Part.type.in_(TOOL_CALLS), Part.content ** pattern)
               .limit(1).tuples().first())
        if row:
            known[d["external_id"]] = row[0]
    return known


def _count_tool_calls(session_id):
    """tool_call_count is at least the number of tool calls stored (a client's own larger
    figure stands): importers and some plugins send none."""
    stored = prepared("count_tool_calls", lambda: Part.select(fn.COUNT(Part.id)).join(Message).where(
        Message.session == slot("session"), Part.type.in_(TOOL_CALLS)), {"session": session_id}).fetchone()[0]
    prepared("raise_tool_calls", lambda: Session.update(tool_call_count=slot("count")).where(
        Session.id == slot("session"), Session.tool_call_count < slot("count")), {"session": session_id, "count": stored})


def _part_rows(message_id, parts):
    return [{**part, "message": message_id, "order": i} for i, part in enumerate(parts or ())]


def _insert_parts(message_id, parts):
    if parts:
        _insert_many(Part, PART_COLUMNS, _part_rows(message_id, parts))


# --- the file index ---------------------------------------------------------------------------

def _tool_parts_query(*where):
    return (Part.select(Part.message, Message.session, Session.user, Session.project_path, Part.type, Part.content)
            .join(Message).join(Session).where(Part.type.in_(files.TOOL_PART_TYPES), *where)
            .order_by(Part.message, Part.order))


def _tool_parts(where, rows=None):
    """(message id, session id, user id, project path, part) of the tool calls ``where``
    selects (or of ``rows`` the same query already read)."""
    # Peewee's rows have the JSON decoded; the prepared query's are as stored.
    decode = Part.content.python_value if rows is not None else (lambda content: content)
    for message_id, session_id, user_id, project_path, kind, content in (
            rows if rows is not None else _tool_parts_query(*where).tuples().iterator()):
        yield message_id, session_id, user_id, project_path, {"type": kind, "content": decode(content)}


def _touch_rows(parts):
    """The file_touches rows of the tool-call parts from ``_tool_parts``."""
    by_message = {}
    for message_id, session_id, user_id, project_path, part in parts:
        by_message.setdefault((message_id, session_id, user_id, project_path), []).append(part)
    return [row for key, found in by_message.items() for row in files.rows(*key[:3], found, key[3])]


def _index_from(parts):
    """Insert the file_touches rows of the tool-call parts from ``_tool_parts``."""
    touches = _touch_rows(parts)
    for chunk in _chunks(touches):
        _insert_many(FileTouch, TOUCH_COLUMNS, chunk)
    return len(touches)


def reindex_messages(session_id, message_ids):
    """Make the file-index rows of these messages of one session what their stored parts give,
    inside the caller's write transaction (`migrate` writes a message's parts and its rows in
    one). Returns {message id: rows written} for the messages whose rows were not right."""
    written = {}
    for chunk in _chunks(message_ids):
        wanted, stored = {}, {}
        for row in _touch_rows(_tool_parts([Message.session == session_id, Part.message.in_(chunk)])):
            wanted.setdefault(row["message"], []).append(row)
        for message_id, path, rel_path, changed in FileTouch.select(
                FileTouch.message, FileTouch.path, FileTouch.rel_path, FileTouch.changed).where(
                FileTouch.session == session_id, FileTouch.message.in_(chunk)).tuples():
            stored.setdefault(message_id, set()).add((path, rel_path, bool(changed)))
        wrong = [m for m in chunk if {(r["path"], r["rel_path"], r["changed"]) for r in wanted.get(m, ())}
                 != stored.get(m, set())]
        if wrong:
            FileTouch.delete().where(FileTouch.session == session_id, FileTouch.message.in_(wrong)).execute()
            touches = [row for m in wrong for row in wanted.get(m, ())]
            if touches:
                _insert_many(FileTouch, TOUCH_COLUMNS, touches)
            written.update((m, len(wanted.get(m, ()))) for m in wrong)
    return written


def _index_files(session_id):
    """Index a session's files again (its project folder changed, so relative paths did)."""
    prepared("delete_session_touches", lambda: FileTouch.delete().where(FileTouch.session == slot("session")),
             {"session": session_id})
    rows = prepared("session_tool_parts", lambda: _tool_parts_query(Message.session == slot("session")),
                    {"session": session_id}).fetchall()
    if rows:
        _index_from(_tool_parts(None, rows))


FILE_INDEX = "file_index"  # the settings row saying the index covers the messages stored before it


def index_files_once(again=False):
    """Build the file index from the stored parts, once per database (one made before the
    index existed has its history indexed at the first start), or ``again`` (after `migrate`
    brought in messages). Returns rows written, or None."""
    if not again and Setting.get_or_none(Setting.name == FILE_INDEX):
        return None
    with write_transaction():
        if is_postgres():  # processes starting together: one builds, the others find it done
            database.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (USER_LOCKS, SCHEMA_LOCK))
        if not again and Setting.get_or_none(Setting.name == FILE_INDEX):
            return None
        FileTouch.delete().execute()
        written = _index_from(_tool_parts([]))
        Setting.insert(name=FILE_INDEX, value="1").on_conflict_ignore().execute()
    return written


PART_TEXTS = "part_texts"  # the settings row: the last message id whose tool and thinking text is filled
PART_TEXTS_DONE = "done"
PART_TEXTS_BATCH = 2000


def index_part_texts():
    """Fill the tool and thinking text search reads (messages.tool_text, .thinking_text) from
    the stored parts of a database made before they were kept, once, at start-up. A batch of
    messages per transaction, the settings row saying where it got to, so a stop part-way
    resumes. A new database is done at once. Returns messages updated, or None."""
    row = Setting.get_or_none(Setting.name == PART_TEXTS)
    if row is not None and row.value == PART_TEXTS_DONE:
        return None
    if row is None and not Part.select().exists():
        Setting.insert(name=PART_TEXTS, value=PART_TEXTS_DONE).on_conflict_ignore().execute()
        return None
    done, after = 0, int(row.value) if row is not None else 0
    while True:
        with write_transaction():
            if is_postgres():  # processes starting together take turns; the later ones resume
                database.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (USER_LOCKS, SCHEMA_LOCK))
            row = Setting.get_or_none(Setting.name == PART_TEXTS)
            if row is not None and row.value == PART_TEXTS_DONE:
                return done
            after = max(after, int(row.value) if row is not None else 0)
            ids = [i for (i,) in Part.select(Part.message).where(Part.message > after).distinct()
                   .order_by(Part.message).limit(PART_TEXTS_BATCH).tuples()]
            by_message = {}
            for message_id, kind, content in (Part.select(Part.message, Part.type, Part.content)
                                              .where(Part.message.in_(ids)).order_by(Part.message, Part.order)
                                              .tuples().iterator()):
                by_message.setdefault(message_id, []).append({"type": kind, "content": content})
            for message_id, parts in by_message.items():
                found = texts.part_texts(parts)
                if any(found.values()):
                    _update(Message, message_id, found)
                    done += 1
            after = ids[-1] if ids else after
            value = str(after) if len(ids) == PART_TEXTS_BATCH else PART_TEXTS_DONE
            Setting.insert(name=PART_TEXTS, value=value).on_conflict(
                conflict_target=[Setting.name], update={Setting.value: value}).execute()
        if value == PART_TEXTS_DONE:
            return done


# --- importers ----------------------------------------------------------------------------------

def ingest_import(user_id, sessions, messages, responses):
    """An importer's batch in one transaction: sessions, messages, and the model responses
    they hold. A response (keyed like ccusage: message.id + requestId) is counted once; when a
    later copy carries more tokens it replaces the earlier count. Its tokens sit on the row of
    the message that first carried it, and each touched session's token kinds and cost are
    the sum of its responses."""
    with write_transaction(user_id):
        now = _stamp(user_id)
        holders = _count_responses(user_id, responses)
        by_message = {(d["session_external_id"], d["external_id"]): d for d in messages}
        extra = []
        for (session_external_id, message_external_id), tokens in holders.items():
            target = by_message.get((session_external_id, message_external_id))
            if target is None:  # the holder was imported earlier: update its counts only
                target = {"session_external_id": session_external_id, "external_id": message_external_id}
                extra.append(target)
            target.update(tokens)
        for data in sessions:
            _upsert_session(user_id, data, now, client=False)
        _supersede_client_tool_messages(user_id, messages)  # first: the calls are then counted once
        _upsert_messages(user_id, messages + extra, now, client=False)
        _total_from_responses(user_id, {d["session_external_id"] for d in responses} | {d["external_id"] for d in sessions})


def ingest_telemetry(user_id, sessions, messages, responses):
    """An OTLP export in one transaction (intake.otlp): the sessions it names, each
    request's usage (a response row, merged with the transcript's by ``_counted``), and its
    copy of the conversation (prompts, answers, tool calls) for a session nothing else has
    written messages to. Telemetry's copy is a stand-in: the first message from the plugin or
    the transcript replaces it (``_drop_telemetry_copy``)."""
    with write_transaction(user_id):
        now = _stamp(user_id)
        _count_responses(user_id, responses)
        for data in sessions:
            stored = _find_session(user_id, data["external_id"])
            began = data.pop("created_at", None) if stored is not None else None
            if stored is not None and stored[-1]:
                data.pop("title", None)  # a title stands (the transcript's, or an earlier prompt)
            session_id = _upsert_session(user_id, data, now, client=False)
            if began is not None:  # exports arrive in any order: the earliest time is the start
                prepared("start_earlier", lambda: Session.update(created_at=slot("began")).where(
                    Session.id == slot("session"), Session.created_at > slot("began")),
                         {"session": session_id, "began": began})
            # Telemetry's session lasted from its first event to its latest (a client's longer figure stands).
            prepared("telemetry_duration", lambda: Session.update(duration_ms=Session.updated_at - Session.created_at).where(
                Session.id == slot("session"), Session.duration_ms < Session.updated_at - Session.created_at),
                     {"session": session_id})
        fuller = {e for e in {d["session_external_id"] for d in messages} if _has_other_messages(user_id, e)}
        _upsert_messages(user_id, [d for d in messages if d["session_external_id"] not in fuller], now, client=False)
        _total_from_responses(user_id, {d["session_external_id"] for d in responses} | {d["external_id"] for d in sessions})


def _has_other_messages(user_id, external_id):
    stored = _find_session(user_id, external_id)
    return stored is not None and prepared("other_messages", lambda: Message.select(Message.id).where(
        Message.session == slot("session"), ~Message.external_id.startswith(OTEL)).limit(1),
        {"session": stored[0]}).fetchone() is not None


def drop_client_copies(user_id, session_external_id, is_copy):
    """Delete the messages of a session that ``is_copy(externalId, role, text)`` says are a
    plugin's copies of what the agent's own file holds under other ids (the pi plugin numbers
    its messages afresh after a resume). Returns how many went."""
    with write_transaction(user_id):
        stored = _find_session(user_id, session_external_id)
        if stored is None:
            return 0
        doomed = [i for i, external_id, role, text in Message.select(
            Message.id, Message.external_id, Message.role, Message.text_content).where(
            Message.session == stored[0]).tuples() if is_copy(external_id, role, text)]
        if doomed:  # their parts, file rows and search rows go with them (cascades, triggers)
            Message.delete().where(Message.id.in_(doomed)).execute()
            Session.update(message_count=Session.message_count - len(doomed)).where(Session.id == stored[0]).execute()
        return len(doomed)


def _drop_telemetry_copy(session_id):
    """A session's messages from telemetry go when a fuller copy (plugin, transcript) arrives."""
    dropped = prepared("drop_telemetry_copy", lambda: Message.delete().where(
        Message.session == slot("session"), Message.external_id.startswith(OTEL)),
        {"session": session_id}).rowcount
    if dropped:
        Session.update(message_count=Session.message_count - dropped).where(Session.id == session_id).execute()


def _supersede_client_tool_messages(user_id, messages):
    """The transcript's message holding a tool call replaces the message a plugin made of it
    alone (claude-code-sync names it by the tool_use id, and with real hook input never sends
    the result): one copy, the transcript's, with the text around the call and its result."""
    by_session = {}
    for d in messages:
        for part in d.get("parts") or ():
            content = part.get("content") if isinstance(part, dict) else None
            if part.get("type") in TOOL_CALLS and isinstance(content, dict) and isinstance(content.get("id"), str):
                by_session.setdefault(d["session_external_id"], set()).add(content["id"])
    for session_external_id, tool_ids in by_session.items():
        stored = _find_session(user_id, session_external_id)
        if stored is None:
            continue
        doomed = [i for (i,) in Message.select(Message.id).where(
            Message.session == stored[0], Message.external_id.in_(sorted(tool_ids))).tuples()]
        if doomed:  # their parts, file rows and search rows go with them (cascades, triggers)
            Message.delete().where(Message.id.in_(doomed)).execute()
            Session.update(message_count=Session.message_count - len(doomed)).where(Session.id == stored[0]).execute()


def _token_fields(r):
    """The four kinds of ``r``, and prompt and completion as plugins count them: the prompt
    is input + cache write + cache read, the completion the output."""
    from .importers import bounds  # a sum of bounded figures stops at the bounds too

    kinds = {name: r[name] for name in TOKEN_KINDS}
    prompt = bounds.total_count(kinds["input_tokens"] + kinds["cache_write_tokens"] + kinds["cache_read_tokens"])
    return {**kinds, "prompt_tokens": prompt, "completion_tokens": kinds["output_tokens"]}


def _size(r):
    return r["input_tokens"] + r["output_tokens"] + r["cache_write_tokens"] + r["cache_read_tokens"]


def _chunks(items):
    """``items`` in lists short enough for one IN (...)."""
    items = list(items)
    return (items[start:start + IN_SIZES[-1]] for start in range(0, len(items), IN_SIZES[-1]))


def _stored_responses(user_id, keys):
    """{response key: stored row} for those of ``keys`` already counted."""
    return {row["response_key"]: row for row in _responses("stored_responses", ImportResponse.response_key, user_id, keys)}


RESPONSE_COLUMNS = ImportResponse._meta.sorted_fields


def _responses(key, column, user_id, values):
    """The user's response rows (as dicts) whose ``column`` is one of ``values``."""
    names = [f.name for f in RESPONSE_COLUMNS]
    return [dict(zip(names, row)) for row in _rows_in(key, values, lambda holes: ImportResponse.select(
        *RESPONSE_COLUMNS).where(ImportResponse.user == slot("user"), column.in_(holes)), {"user": user_id})]


def _count_responses(user_id, responses):
    """Record each response once (the largest copy wins); returns {(session externalId,
    message externalId): token fields} for the messages whose counts change. The keys of one
    call are unique (the importer keeps the largest copy of each while it reads)."""
    changes, new = {}, []
    stored = _stored_responses(user_id, [r["key"] for r in responses])
    for r in responses:
        row = stored.get(r["key"])
        if row is None:
            new.append({"user": user_id, "response_key": r["key"], **{k: v for k, v in r.items() if k != "key"}})
            holder = (r["session_external_id"], r["message_external_id"])
        elif _size(r) > _size(row) or (r["key"].startswith(COST_STATE) and r["cost_usd"] > (row["cost_usd"] or 0)):
            # (a cost-state is a running total: the largest is the latest)
            ImportResponse.update(**{k: r.get(k, 0) for k in (*TOKEN_KINDS, "cache_write_1h_tokens")},
                                  cost_usd=r["cost_usd"], model=r["model"]).where(
                ImportResponse.user == user_id, ImportResponse.response_key == r["key"]).execute()
            holder = (row["session_external_id"], row["message_external_id"])
        else:
            continue
        if not r["key"].startswith(SESSION_ROWS):  # a session's figure, no message's
            changes[holder] = _token_fields(r)
    if new:
        columns = [f for f in ImportResponse._meta.sorted_fields]
        prepared_many(("insert", ImportResponse), lambda: ImportResponse.insert({f: slot(f.name) for f in columns}),
                      [{f.name: row.get(f.name, f.default) for f in columns} for row in new])
    return changes


COST_STATE = "cost-state:"  # the response key of a session's cost-state: Claude Code's own running total
OTEL = "otel:"  # telemetry's keys: responses (api_request events) and its copy of the conversation
OTEL_REQUEST = OTEL + "req:"  # an api_request event's response, by its request id
OTEL_METRIC = "otel-metric:"  # a metric window's tokens and cost (telemetry without its events)
SESSION_ROWS = (COST_STATE, OTEL, OTEL_METRIC)  # responses held by a session, not by a message's row


def _counted(rows):
    """THE merge of what each path says a session's responses were: the transcript's (each
    response once, by message.id + request id); telemetry's api_request events only for
    requests the transcript does not hold (yet), matched by request id, and all of them when
    there is no transcript; telemetry's metrics only when neither is there (they are the same
    requests again, summed per export window)."""
    transcript = [r for r in rows if not r["response_key"].startswith(SESSION_ROWS)]
    events = [r for r in rows if r["response_key"].startswith(OTEL)]
    if transcript:
        known = {r["response_key"].split(":", 1)[1] for r in transcript if ":" in r["response_key"]}
        return transcript + [r for r in events if r["response_key"].startswith(OTEL_REQUEST)
                             and r["response_key"][len(OTEL_REQUEST):] not in known]
    return events or [r for r in rows if r["response_key"].startswith(OTEL_METRIC)]


def _total_from_responses(user_id, session_external_ids):
    """Each session's token kinds and cost from its counted responses. The cost is Claude
    Code's own when its transcript wrote a ``cost-state`` (a running total of the session and
    its subagents, so the subagents' own costs are taken off it); else each response's
    recorded costUSD, or the price of its tokens (pricing); a model without a known price
    leaves the session 'unpriced' rather than $0. A parent is counted again with its
    subagents, as its share of the cost-state depends on theirs."""
    from .importers import bounds  # the sync routes' bounds, for figures read from files
    from .pricing import price  # the price data loads only when something is imported

    wanted = set(session_external_ids)
    wanted.update(p for (p,) in _rows_in("parents", list(wanted), lambda holes: Session.select(
        Session.parent_external_id).where(Session.user == slot("user"), Session.external_id.in_(holes),
                                          Session.parent_external_id.is_null(False)), {"user": user_id}))
    by_session = {}
    for r in _responses("session_responses", ImportResponse.session_external_id, user_id, list(wanted)):
        by_session.setdefault(r["session_external_id"], []).append(r)
    # Subagents first: a parent's share of its cost-state is what they did not spend.
    has_state = {e for e, rows in by_session.items() if any(r["response_key"].startswith(COST_STATE) for r in rows)}
    for external_id in sorted(by_session, key=lambda e: e in has_state):
        rows = by_session[external_id]
        stored = _find_session(user_id, external_id)
        if stored is None:
            continue
        state = [r for r in rows if r["response_key"].startswith(COST_STATE)]
        rows = _counted(rows)
        kinds = {name: bounds.total_count(sum(r[name] for r in rows)) for name in TOKEN_KINDS}
        cost, statuses = 0.0, set()
        for r in rows:
            if r["cost_usd"] is not None:
                cost += r["cost_usd"]
                continue
            estimate = price(r["model"], *(r[name] for name in TOKEN_KINDS), r["cache_write_1h_tokens"])
            if estimate is None:
                statuses.add("unpriced")
            else:
                cost += estimate
                statuses.add("estimated")
        if state and state[0]["cost_usd"] is not None:
            # Claude Code's own total, plus what telemetry saw of requests the transcript has not yet
            cost, statuses = max(0.0, state[0]["cost_usd"] - _subagents_cost(user_id, external_id)), set()
            for r in rows:
                if r["response_key"].startswith(OTEL):
                    cost += r["cost_usd"] or 0.0
        fields = _token_fields(kinds)
        # Each response's figures are within bounds, their sums need not be: stopped at them,
        # as OpenCode's are (two recorded costs of 6e8 make 1e9, not a figure the API refuses).
        fields.update({name: bounds.total_count(value) for name, value in fields.items()})
        fields.update(total_tokens=bounds.total_count(fields["prompt_tokens"] + fields["completion_tokens"]),
                      cost=bounds.total_cost(cost),
                      cost_status="unpriced" if "unpriced" in statuses else ("estimated" if statuses else None))
        # The agent's own record wins over whatever a plugin reported (which stays in extra):
        # claude-code-sync sums usage over every content block's line, and prices what it can.
        _update(Session, stored[0], fields)


def _subagents_cost(user_id, external_id, depth=8):
    """What the sessions ``external_id`` ran as subagents (every level down) cost."""
    total, level = 0.0, [external_id]
    for _ in range(depth):
        found = list(Session.select(Session.external_id, Session.cost).where(
            Session.user == user_id, Session.parent_external_id.in_(level)).tuples())
        if not found:
            break
        total += sum(cost for _, cost in found)
        level = [e for e, _ in found]
    return total
