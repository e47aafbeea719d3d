"""`opensync-lite migrate`: copy one store into another (a user's SQLite file into the team's
PostgreSQL, or back). Rows get the target's own ids: users are matched by name, keys by their
hash, sessions by (user, externalId), messages by (session, externalId), tags by (user, name),
so a second run finds everything there and writes nothing. What the target already holds is never overwritten,
but for the parts (and file-index rows) of messages an interrupted run left incomplete;
sessions that gain messages get their messageCount recounted."""

from dataclasses import dataclass, field

from peewee import SQL, fn

from . import ingest
from .db import write_transaction
from .models import (
    ApiKey, Curation, FileTouch, ImportFile, ImportResponse, Message, Part, Session, SessionTag, Tag, User,
)

BATCH = 500


@dataclass
class Counts:
    copied: dict = field(default_factory=dict)  # table -> rows written to the target
    repaired: dict = field(default_factory=dict)  # messages, parts, file_touches -> of those, what repairs wrote
    source: dict = field(default_factory=dict)  # table -> rows in the source
    target: dict = field(default_factory=dict)  # table -> rows in the target, after


TABLES = (("users", User), ("api_keys", ApiKey), ("sessions", Session), ("messages", Message), ("parts", Part),
          ("file_touches", FileTouch), ("curations", Curation), ("tags", Tag), ("session_tags", SessionTag),
          ("import_files", ImportFile), ("import_responses", ImportResponse))


def totals(app):
    with app.app_context():
        return {name: model.select().count() for name, model in TABLES}


def copy(source, target, source_totals, advance=lambda n: None):
    """Copy every user of the app ``source`` (whose ``totals`` are given: the caller sizes its
    progress bar on sessions + messages, which ``advance`` is told of) into the app
    ``target``; returns Counts."""
    counts = Counts(source=source_totals)
    counts.copied = dict.fromkeys(counts.source, 0)
    counts.repaired = dict.fromkeys(("messages", "parts", "file_touches"), 0)
    with source.app_context():
        users = list(User.select().order_by(User.id).dicts())
    for user in users:
        _copy_user(source, target, user, counts, advance)
    counts.target = totals(target)
    return counts


def _rows(app, query):
    with app.app_context():
        return list(query.dicts())


def _batches(app, model, where):
    """The rows of ``model`` matching ``where``, BATCH at a time, by id."""
    after = 0
    while True:
        batch = _rows(app, model.select().where(*where, model.id > after).order_by(model.id).limit(BATCH))
        if not batch:
            return
        yield batch
        after = batch[-1]["id"]


def _copy_user(source, target, user, counts, advance):
    copied = counts.copied
    with target.app_context():
        target_user = User.get_or_none(User.name == user["name"])
        if target_user is None:
            with write_transaction():
                User.insert(name=user["name"], created_at=user["created_at"]).on_conflict_ignore().execute()
            copied["users"] += 1
            target_user = User.get(User.name == user["name"])
    user_id = target_user.id
    keys = _rows(source, ApiKey.select().where(ApiKey.user == user["id"]))
    _insert_missing(target, user_id, ApiKey, keys, lambda r: r["key_hash"], ApiKey.key_hash, copied, "api_keys")
    for sessions in _batches(source, Session, [Session.user == user["id"]]):
        session_ids, _ = _insert_missing(target, user_id, Session, sessions, lambda r: r["external_id"],
                                      Session.external_id, copied, "sessions", [Session.user == user_id])
        advance(len(sessions))
        _copy_curation(source, target, user_id, session_ids, copied)
        _copy_messages(source, target, user_id, session_ids, counts, advance)
    for model, name, key in ((ImportFile, "import_files", ImportFile.path),
                             (ImportResponse, "import_responses", ImportResponse.response_key)):
        rows = _rows(source, model.select().where(model.user == user["id"]))
        for start in range(0, len(rows), BATCH):
            _insert_missing(target, user_id, model, rows[start:start + BATCH], lambda r, k=key.name: r[k], key,
                            copied, name, [model.user == user_id])


def _insert_missing(target, user_id, model, rows, key_of, key_column, copied, name, where=()):
    """``_insert_absent`` in a transaction of its own on ``target``."""
    with target.app_context(), write_transaction(user_id):
        return _insert_absent(user_id, model, rows, key_of, key_column, copied, name, where)


def _insert_absent(user_id, model, rows, key_of, key_column, copied, name, where=()):
    """Insert those of ``rows`` whose key the current database lacks (under ``where``), with
    the user and without the source's id. Returns {source id: target id} for every row, and
    the source ids of the rows inserted (rows without an id column give neither)."""
    keys = [key_of(r) for r in rows]
    present = _ids_by_key(model, key_column, keys, where)
    new = [r for r in rows if key_of(r) not in present]
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    if new:
        model.insert_many([{f.name: user_id if f.name == "user" else r[f.name] for f in fields} for r in new],
                          fields=fields).execute()
        copied[name] += len(new)
    found = present if not new else _ids_by_key(model, key_column, keys, where)
    return {r["id"]: found[key_of(r)] for r in rows if "id" in r}, {r["id"] for r in new if "id" in r}


def _ids_by_key(model, key_column, keys, where):
    if "id" not in model._meta.fields:
        return {row[0]: None for row in model.select(key_column).where(*where, key_column.in_(keys)).tuples()}
    query = model.select(key_column, model.id).where(*where, key_column.in_(keys))
    return dict(query.tuples())


def _copy_curation(source, target, user_id, session_ids, copied):
    """Stars, notes, eval statuses and tags of these sessions, where the target has none."""
    curations = _rows(source, Curation.select().where(Curation.session.in_(list(session_ids))))
    tagged = _rows(source, SessionTag.select(SessionTag.session, Tag.name).join(Tag)
                   .where(SessionTag.session.in_(list(session_ids))))
    with target.app_context(), write_transaction(user_id):
        targets = list(session_ids.values())
        have = {s for (s,) in Curation.select(Curation.session).where(Curation.session.in_(targets)).tuples()}
        new = [{**c, "session": session_ids[c["session"]]} for c in curations if session_ids[c["session"]] not in have]
        if new:
            Curation.insert_many(new).execute()
            copied["curations"] += len(new)
        names = sorted({t["name"] for t in tagged})
        if names:
            before = Tag.select().where(Tag.user == user_id).count()
            Tag.insert_many([{"user": user_id, "name": n} for n in names]).on_conflict_ignore().execute()
            copied["tags"] += Tag.select().where(Tag.user == user_id).count() - before
            ids = dict(Tag.select(Tag.name, Tag.id).where(Tag.user == user_id, Tag.name.in_(names)).tuples())
            pairs = {(session_ids[t["session"]], ids[t["name"]]) for t in tagged}
            present = set(SessionTag.select(SessionTag.session, SessionTag.tag)
                          .where(SessionTag.session.in_(targets)).tuples())
            missing = sorted(pairs - present)
            if missing:
                SessionTag.insert_many([{"session": s, "tag": t} for s, t in missing]).execute()
                copied["session_tags"] += len(missing)


def _copy_messages(source, target, user_id, session_ids, counts, advance):
    """The messages of these sessions, BATCH at a time: each batch's new messages, their parts
    and their file-index rows in one transaction, so an interrupted run leaves whole messages.
    The batch's messages that the target holds with another number of parts or file-index rows
    than the source are repaired in the same transaction: older versions wrote parts in a
    transaction of their own and the index at the end, and left those when interrupted."""
    for source_session, target_session in session_ids.items():
        for messages in _batches(source, Message, [Message.session == source_session]):
            with source.app_context():
                ids = [m["id"] for m in messages]
                in_source = (_count_by(Part.message, ids),
                             _count_by(FileTouch.message, ids, FileTouch.session == source_session))
            with target.app_context(), write_transaction(user_id):
                _copy_batch(source, user_id, target_session, messages, in_source, counts)
            advance(len(messages))


def _copy_batch(source, user_id, target_session, messages, in_source, counts):
    """One batch of ``_copy_messages``, inside the target's transaction."""
    parts_in_source, touches_in_source = in_source
    for message in messages:
        message["session"] = target_session
    target_of, new = _insert_absent(user_id, Message, messages, lambda r: r["external_id"], Message.external_id,
                                    counts.copied, "messages", [Message.session == target_session])
    held = [i for i in target_of if i not in new]
    parts_in_target = _count_by(Part.message, [target_of[i] for i in held])
    short = {i for i in held if parts_in_target.get(target_of[i], 0) != parts_in_source.get(i, 0)}
    if short:  # the source's parts replace the target's, whole
        Part.delete().where(Part.message.in_([target_of[i] for i in short])).execute()
    wanted = [*new, *short]
    parts = _rows(source, Part.select().where(Part.message.in_(wanted)).order_by(Part.id)) if wanted else []
    fields = [f for f in Part._meta.sorted_fields if f.name != "id"]
    for start in range(0, len(parts), BATCH):
        Part.insert_many([{**{f.name: p[f.name] for f in fields}, "message": target_of[p["message"]]}
                          for p in parts[start:start + BATCH]], fields=fields).execute()
    counts.copied["parts"] += len(parts)
    touches_in_target = _count_by(FileTouch.message, [target_of[i] for i in held], FileTouch.session == target_session)
    unindexed = [i for i in held if i not in short
                 and touches_in_target.get(target_of[i], 0) != touches_in_source.get(i, 0)]
    # Only rows that are wrong are rewritten: a count can also differ because the target's
    # session has another project folder, which makes other paths.
    written = ingest.reindex_messages(target_session, [target_of[i] for i in (*new, *short, *unindexed)])
    counts.copied["file_touches"] += sum(written.values())
    repaired = {target_of[i] for i in short} | {target_of[i] for i in unindexed if target_of[i] in written}
    counts.repaired["messages"] += len(repaired)
    counts.repaired["parts"] += sum(p["message"] in short for p in parts)
    counts.repaired["file_touches"] += sum(written.get(m, 0) for m in repaired)
    if new:  # messageCount is the stored messages' own number (ingest keeps it so)
        count = Message.select(fn.COUNT(Message.id)).where(Message.session == target_session)
        Session.update(message_count=count).where(Session.id == target_session).execute()


def _count_by(column, ids, *where):
    """{id: how many rows have it in ``column``} for ``ids`` (those with none left out)."""
    if not ids:
        return {}
    query = column.model.select(column, fn.COUNT(SQL("*"))).where(column.in_(list(ids)), *where).group_by(column)
    return dict(query.tuples())
