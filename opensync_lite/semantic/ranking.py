"""Sessions by meaning (``semantic``) and by words and meaning fused (``hybrid``), in the shape
of full-text results (queries.search): a session's best turns are its matches.

Semantic: the query's vector against the user's matrix (store), the best turns grouped by
session (a session scores its best turn), the sessions then narrowed by the list filters in
SQL. Hybrid: reciprocal rank fusion, each session scoring sum(weight / (K + its place)) over the
full-text and the semantic lists, so a session both find rises and an exact word that only full
text finds (a file name, an error code) still counts fully."""

import html
import threading

from flask import current_app

from .. import db, queries
from ..models import Embedding, Message, Session
from . import store
from .encoders import encoder_for

K = 60  # the usual RRF constant: places past the first few differ little
FULLTEXT_WEIGHT, SEMANTIC_WEIGHT = 1.0, 1.0
DEPTH = 50  # sessions taken from each list before fusing (pages beyond come from deeper lists)
SNIPPET_CHARS = 240
# Turns less similar than this are not matches at all (unrelated texts score about 0
# with the local model): semantic search answers "nothing near", not the whole history.
MIN_SIMILARITY = 0.1
FOUND_IN = {"user": "prompt", "assistant": "answer"}


def query_vector(text):
    encoder = encoder_for(current_app.config)
    return encoder, encoder.encode([text])[0]


def nearest(user_id, text):
    """(the user's matrix, the query's vector)."""
    encoder, vector = query_vector(text)
    return store.matrix(db.database.obj, user_id, encoder.name, encoder.prefix), vector


def first_count(limit, offset):
    return max(200, (offset + limit + 1) * 8)


def semantic(user_id, text, limit=20, offset=0, filters=None, scanned=None):
    """One page of the sessions nearest ``text`` in meaning: (sessions, whether more follow).
    ``scanned``: (matrix, vector, its best first_count rows) when the caller scanned already."""
    found, vector, best = scanned or (*nearest(user_id, text), None)
    wanted = offset + limit + 1
    count = first_count(limit, offset)
    while True:
        best = best if best is not None else found.best(vector, count)
        order, turns = _by_session(found, best)
        kept, checked = {}, 0
        # The nearest sessions a few at a time, until a page passes the filters: one query each.
        while len(kept) < wanted and checked < len(order):
            chunk = order[checked:checked + max(16, 2 * (wanted - len(kept)))]
            checked += len(chunk)
            kept.update(_alive(user_id, chunk, turns, filters or {}, found))
        if len(kept) >= wanted or count >= found.size or (best and best[-1][0] < MIN_SIMILARITY):
            break
        count, best = count * 8, None
    page = [s for s in order if s in kept][offset:offset + limit + 1]
    texts = _texts([m for s in page for _, m, _ in kept[s][1]])
    out = []
    for session_id in page:
        session, alive = kept[session_id]
        matches = [_match(score, message_id, texts, session) for score, message_id, _ in alive[:queries.MATCHES_PER_SESSION]]
        out.append({**session, **matches[0], "matches": matches})
    return out[:limit], len(out) > limit


def _by_session(found, best):
    """The sessions of the ``best`` rows in order, and each one's [(score, message id, row)]."""
    order, turns = [], {}
    for score, index in best:
        session_id = int(found.sessions[index])
        if session_id < 0 or score < MIN_SIMILARITY:
            continue
        if session_id not in turns:
            order.append(session_id)
            turns[session_id] = []
        turns[session_id].append((score, int(found.messages[index]), index))
    return order, turns


def _alive(user_id, session_ids, turns, filters, found):
    """{session id: (its row, its turns still stored)} of ``session_ids`` that are the user's
    and pass ``filters``, in one query. A turn gone from a session that is still there (embedded
    again, or its message deleted) is forgotten by the matrix."""
    rows = {int(found.ids[index]): index for s in session_ids for _, _, index in turns[s]}
    out, seen = {}, set()
    query = (Embedding.select(Embedding.id.alias("embedding_id"), Session.id.alias("session_id"), Session.external_id,
                              Session.source, Session.title, Session.project_name, Session.project_path, Session.model,
                              Session.created_at, Session.updated_at)
             .join(Session, on=(Session.id == Embedding.session))
             .where(Embedding.id.in_(list(rows)), *queries.conditions(user_id, filters)))
    for row in query.dicts():
        seen.add(rows[row.pop("embedding_id")])
        out.setdefault(row["session_id"], (row, []))
    gone = [index for s in out for _, _, index in turns[s] if index not in seen]
    if gone:
        found.forget(gone)
    for session_id, (row, alive) in out.items():
        alive.extend(turn for turn in turns[session_id] if turn[2] in seen)
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
    # The vector scan (numpy, which lets go of the GIL) runs on the other core while the
    # database answers the words.
    found, vector = nearest(user_id, text)
    scan = {}
    thread = threading.Thread(target=lambda: scan.update(best=found.best(vector, first_count(depth, 0))))
    thread.start()
    try:
        words, _ = queries.search(user_id, text, limit=depth, source=source, filters=filters, where=where)
    finally:
        thread.join()
    meaning, _ = semantic(user_id, text, limit=depth, filters={"source": source, **(filters or {})},
                          scanned=(found, vector, scan.get("best")))
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
