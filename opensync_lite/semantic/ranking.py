"""Sessions by meaning (``semantic``) and by words and meaning fused (``hybrid``), in the shape
of full-text results (queries.search): a session's best turns are its matches.

Semantic: the query's vector against the user's matrix (store), the best turns grouped by
session (a session scores its best turn), the sessions then narrowed by the list filters in
SQL. Hybrid: reciprocal rank fusion, each session scoring sum(weight / (K + its place)) over the
full-text and the semantic lists, so a session both find rises and an exact word that only full
text finds (a file name, an error code) still counts fully."""

import html

from flask import current_app

from .. import db, queries
from ..models import Message, Session
from . import store
from .encoders import encoder_for

K = 60  # the usual RRF constant: places past the first few differ little
FULLTEXT_WEIGHT, SEMANTIC_WEIGHT = 1.0, 1.0
DEPTH = 100  # sessions taken from each list before fusing (pages beyond come from deeper lists)
SNIPPET_CHARS = 240
# Turns less similar than this are not matches at all (unrelated texts score about 0
# with the local model): semantic search answers "nothing near", not the whole history.
MIN_SIMILARITY = 0.1
FOUND_IN = {"user": "prompt", "assistant": "answer"}


def query_vector(text):
    encoder = encoder_for(current_app.config)
    return encoder, encoder.encode([text])[0]


def semantic(user_id, text, limit=20, offset=0, filters=None):
    """One page of the sessions nearest ``text`` in meaning: (sessions, whether more follow)."""
    encoder, vector = query_vector(text)
    found = store.matrix(db.database.obj, user_id, encoder.name)
    wanted = offset + limit + 1
    count = max(200, wanted * 8)
    while True:
        best = found.best(vector, count)
        order, turns = _by_session(found, best)
        gone = _verify(found, best)
        if gone:
            continue  # rows deleted since they were loaded are forgotten: look again
        sessions = _sessions(user_id, order, filters or {})
        if len(sessions) >= wanted or count >= found.size or (best and best[-1][0] < MIN_SIMILARITY):
            break
        count *= 8
    page = [s for s in order if s in sessions][offset:offset + limit + 1]
    texts = _texts([m for s in page for _, m in turns[s]])
    out = []
    for session_id in page:
        matches = [_match(score, message_id, texts, sessions[session_id]) for score, message_id in turns[session_id][:queries.MATCHES_PER_SESSION]]
        out.append({**sessions[session_id], **matches[0], "matches": matches})
    return out[:limit], len(out) > limit


def _by_session(found, best):
    order, turns = [], {}
    for score, index in best:
        session_id = int(found.sessions[index])
        if session_id < 0 or score < MIN_SIMILARITY:
            continue
        if session_id not in turns:
            order.append(session_id)
            turns[session_id] = []
        turns[session_id].append((score, int(found.messages[index])))
    return order, turns


def _verify(found, best):
    indexes = {int(found.ids[i]): i for _, i in best if found.sessions[i] >= 0}
    kept = store.existing(indexes)
    gone = [i for row_id, i in indexes.items() if row_id not in kept]
    if gone:
        found.forget(gone)
    return gone


def _sessions(user_id, ids, filters):
    """{id: session row} of ``ids`` that are the user's and pass ``filters``."""
    out = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in (Session.select(Session.id.alias("session_id"), Session.external_id, Session.source, Session.title,
                                   Session.project_name, Session.project_path, Session.model, Session.created_at,
                                   Session.updated_at)
                    .where(Session.id.in_(chunk), *queries.conditions(user_id, filters)).dicts()):
            out[row["session_id"]] = row
    return out


def _texts(message_ids):
    ids = [m for m in message_ids if m >= 0]
    return {row["id"]: row for row in Message.select(Message.id, Message.role, Message.text_content)
            .where(Message.id.in_(ids)).dicts()} if ids else {}


def _match(score, message_id, texts, session):
    rank = round(1.0 - score, 6)  # cosine distance: lower is better, as full text's rank
    if message_id < 0:
        text = " ".join(t for t in (session["title"], session["project_name"]) if t)
        return {"kind": "session", "message_id": None, "rank": rank, "snippet": html.escape(text[:SNIPPET_CHARS]),
                "found_in": "title"}
    message = texts.get(message_id) or {"role": None, "text_content": ""}
    text = " ".join((message["text_content"] or "").split())
    snippet = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    return {"kind": "message", "message_id": message_id, "rank": rank, "snippet": html.escape(snippet),
            "found_in": FOUND_IN.get(message["role"], "message")}


def hybrid(user_id, text, limit=20, offset=0, filters=None, source=None, where=None):
    """Full text (in the ``where`` kind of text) and semantic fused by reciprocal rank:
    (sessions, whether more follow)."""
    depth = max(DEPTH, offset + limit + 1)
    words, _ = queries.search(user_id, text, limit=depth, source=source, filters=filters, where=where)
    meaning, _ = semantic(user_id, text, limit=depth, filters={"source": source, **(filters or {})})
    fused, rows = {}, {}
    for weight, results in ((FULLTEXT_WEIGHT, words), (SEMANTIC_WEIGHT, meaning)):
        for place, row in enumerate(results, start=1):
            fused[row["session_id"]] = fused.get(row["session_id"], 0.0) + weight / (K + place)
            rows.setdefault(row["session_id"], row)  # full text's first: its snippets mark the words
    order = sorted(fused, key=lambda s: (-fused[s], -(rows[s]["updated_at"] or 0), -s))
    page = []
    for session_id in order[offset:offset + limit + 1]:
        page.append({**rows[session_id], "rank": round(-fused[session_id], 6)})
    return page[:limit], len(page) > limit
