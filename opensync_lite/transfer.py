"""`opensync-lite migrate`: copy one store into another (a user's SQLite file into the team's
PostgreSQL, or back). Rows get the target's own ids: users are matched by name, keys by their
hash, sessions by (user, externalId), messages by (session, externalId), tags by (user, name),
so a second run finds everything there and writes nothing. What the target already holds is never overwritten;
sessions that gain messages get their messageCount recounted."""

from dataclasses import dataclass, field

from peewee import fn

from . import ingest
from .db import write_transaction
from .models import ApiKey, Curation, ImportFile, ImportResponse, Message, Part, Session, SessionTag, Tag, User

BATCH = 500


@dataclass
class Counts:
    copied: dict = field(default_factory=dict)  # table -> rows written to the target
    source: dict = field(default_factory=dict)  # table -> rows in the source
    target: dict = field(default_factory=dict)  # table -> rows in the target, after


TABLES = (("users", User), ("api_keys", ApiKey), ("sessions", Session), ("messages", Message), ("parts", Part),
          ("curations", Curation), ("tags", Tag), ("session_tags", SessionTag),
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
    with source.app_context():
        users = list(User.select().order_by(User.id).dicts())
    for user in users:
        _copy_user(source, target, user, counts.copied, advance)
    with target.app_context():
        ingest.index_files_once(again=True)  # the file index of the messages it now holds
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


def _copy_user(source, target, user, copied, advance):
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
        _copy_messages(source, target, user_id, session_ids, copied, advance)
    for model, name, key in ((ImportFile, "import_files", ImportFile.path),
                             (ImportResponse, "import_responses", ImportResponse.response_key)):
        rows = _rows(source, model.select().where(model.user == user["id"]))
        for start in range(0, len(rows), BATCH):
            _insert_missing(target, user_id, model, rows[start:start + BATCH], lambda r, k=key.name: r[k], key,
                            copied, name, [model.user == user_id])


def _insert_missing(target, user_id, model, rows, key_of, key_column, copied, name, where=()):
    """Insert those of ``rows`` whose key the target lacks (under ``where``), with the user
    and without the source's id. Returns {source id: target id} for every row, and the source
    ids of the rows inserted (rows without an id column give neither)."""
    keys = [key_of(r) for r in rows]
    with target.app_context(), write_transaction(user_id):
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


def _copy_messages(source, target, user_id, session_ids, copied, advance):
    """The messages (and their parts) of these sessions that the target lacks."""
    for source_session, target_session in session_ids.items():
        for messages in _batches(source, Message, [Message.session == source_session]):
            for message in messages:
                message["session"] = target_session
            ids, new = _insert_missing(target, user_id, Message, messages, lambda r: r["external_id"],
                                       Message.external_id, copied, "messages", [Message.session == target_session])
            new_ids = {source_id: ids[source_id] for source_id in new}
            if new_ids:
                parts = _rows(source, Part.select().where(Part.message.in_(list(new_ids))).order_by(Part.id))
                for part in parts:
                    part["message"] = new_ids[part["message"]]
                with target.app_context(), write_transaction(user_id):
                    fields = [f for f in Part._meta.sorted_fields if f.name != "id"]
                    for start in range(0, len(parts), BATCH):
                        Part.insert_many([{f.name: p[f.name] for f in fields} for p in parts[start:start + BATCH]],
                                         fields=fields).execute()
                    copied["parts"] += len(parts)
                    # messageCount is the stored messages' own number (ingest keeps it so).
                    count = Message.select(fn.COUNT(Message.id)).where(Message.session == target_session)
                    Session.update(message_count=count).where(Session.id == target_session).execute()
            advance(len(messages))

