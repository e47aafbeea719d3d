"""The vectors, on either database through Peewee (BLOBs of float16: 512 bytes a turn), and
the matrix a query scans: each user's vectors of the current model, loaded once per process
and then only what was added since (by id), in float32 so one BLAS matrix-vector product scores
them all. Rows deleted or replaced since they were loaded are dropped when a query finds them
among its best (``verify``), so the matrix never answers for what is gone."""

import threading

import numpy as np
from peewee import JOIN

from .. import db
from ..models import EmbeddedSession, Embedding, Message, Session
from . import turns as turns_of

LOAD_PAGE = 20_000


def to_blob(vector):
    return np.asarray(vector, dtype="<f2").tobytes()


def pending(model, limit, user_id=None):
    """Sessions whose vectors are behind their last write (or of another model), oldest write
    first: [(id, user_id, written_at, title, project_name)]."""
    query = (Session.select(Session.id, Session.user, Session.written_at, Session.title, Session.project_name)
             .join(EmbeddedSession, JOIN.LEFT_OUTER, on=(EmbeddedSession.session == Session.id))
             .where(EmbeddedSession.session.is_null() | (EmbeddedSession.written_at < Session.written_at)
                    | (EmbeddedSession.model != model)))
    if user_id is not None:
        query = query.where(Session.user == user_id)
    return list(query.order_by(Session.written_at, Session.id).limit(limit).tuples())


def pending_count(model, user_id=None):
    query = (Session.select().join(EmbeddedSession, JOIN.LEFT_OUTER, on=(EmbeddedSession.session == Session.id))
             .where(EmbeddedSession.session.is_null() | (EmbeddedSession.written_at < Session.written_at)
                    | (EmbeddedSession.model != model)))
    if user_id is not None:
        query = query.where(Session.user == user_id)
    return query.count()


def texts_of(session):
    """[(message id or None, text, messages it covers)] to embed for ``session`` (a pending row)."""
    session_id, _, _, title, project_name = session
    messages = (Message.select(Message.id, Message.role, Message.text_content)
                .where(Message.session == session_id).order_by(Message.created_at, Message.id).dicts())
    out = turns_of.turns(messages)
    head = turns_of.session_text(title, project_name)
    if head:
        out.insert(0, (None, head, 0))
    return out


def stored(session_id, model):
    """{message id or None: (embedding id, digest)} of a session's vectors of ``model``."""
    return {message_id: (row_id, digest) for row_id, message_id, digest in Embedding.select(
        Embedding.id, Embedding.message, Embedding.digest).where(
        Embedding.session == session_id, Embedding.model == model).tuples()}


def save(session, model, fresh, stale_ids):
    """Write one session's new vectors (``fresh``: [(message id, digest, vector)]), drop the
    ``stale_ids`` rows, and mark the session embedded as of the write it was read at."""
    session_id, user_id, written_at = session[:3]
    with db.write_transaction():
        if stale_ids:
            Embedding.delete().where(Embedding.id.in_(stale_ids)).execute()
        Embedding.delete().where(Embedding.session == session_id, Embedding.model != model).execute()
        if fresh:
            Embedding.insert_many([{"user": user_id, "session": session_id, "message": message_id, "model": model,
                                    "digest": digest, "vector": to_blob(vector)} for message_id, digest, vector in fresh]).execute()
        if Session.select().where(Session.id == session_id).exists():  # deleted meanwhile: nothing to mark
            (EmbeddedSession.insert(session=session_id, written_at=written_at, model=model)
             .on_conflict(conflict_target=[EmbeddedSession.session],
                          update={EmbeddedSession.written_at: written_at, EmbeddedSession.model: model}).execute())


class UserMatrix:
    """One user's vectors of one model, in memory: ids, sessions, first messages, and the rows."""

    def __init__(self):
        self.lock = threading.Lock()
        self.size, self.last_id = 0, 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.sessions = np.zeros(0, dtype=np.int64)
        self.messages = np.zeros(0, dtype=np.int64)  # -1: the session's own vector
        self.rows = None

    def refresh(self, user_id, model):
        """Load the rows added since the last call."""
        while True:
            page = list(Embedding.select(Embedding.id, Embedding.session, Embedding.message, Embedding.vector)
                        .where(Embedding.user == user_id, Embedding.model == model, Embedding.id > self.last_id)
                        .order_by(Embedding.id).limit(LOAD_PAGE).tuples())
            if not page:
                return
            vectors = np.frombuffer(b"".join(bytes(row[3]) for row in page), dtype="<f2").reshape(len(page), -1)
            self._append([row[0] for row in page], [row[1] for row in page],
                         [-1 if row[2] is None else row[2] for row in page], vectors.astype(np.float32))
            self.last_id = page[-1][0]
            if len(page) < LOAD_PAGE:
                return

    def _append(self, ids, sessions, messages, vectors):
        n, end = len(ids), self.size + len(ids)
        if self.rows is None or self.rows.shape[1] != vectors.shape[1]:
            self.rows = np.zeros((max(1024, n), vectors.shape[1]), dtype=np.float32)
            self.size, end = 0, n
            self.ids, self.sessions, self.messages = (np.zeros(len(self.rows), dtype=np.int64) for _ in range(3))
        if end > len(self.rows):  # grow by half again, so appends cost little on average
            capacity = max(end, len(self.rows) * 3 // 2)
            self.rows = np.resize(self.rows, (capacity, self.rows.shape[1]))
            for name in ("ids", "sessions", "messages"):
                setattr(self, name, np.resize(getattr(self, name), capacity))
        self.rows[self.size:end] = vectors
        self.ids[self.size:end], self.sessions[self.size:end], self.messages[self.size:end] = ids, sessions, messages
        self.size = end

    def best(self, query, count):
        """The ``count`` best rows for ``query`` (a unit vector): [(score, index)], best first."""
        if self.size == 0 or query.shape[0] != self.rows.shape[1]:
            return []
        scores = self.rows[:self.size] @ query
        count = min(count, self.size)
        top = np.argpartition(-scores, count - 1)[:count] if count < self.size else np.arange(self.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(float(scores[i]), int(i)) for i in top]

    def forget(self, indexes):
        """Rows found gone from the database: they score nothing from now on."""
        self.rows[list(indexes)] = 0
        self.sessions[list(indexes)] = -1


_matrices, _matrices_lock = {}, threading.Lock()


def matrix(database, user_id, model):
    """The user's matrix in this process (per database: a host may run two apps), brought up to date."""
    with _matrices_lock:
        found = _matrices.setdefault((id(database), user_id, model), UserMatrix())
    with found.lock:
        found.refresh(user_id, model)
    return found


def existing(ids):
    """Which of the embedding ``ids`` are still stored."""
    found = set()
    ids = list(ids)
    for start in range(0, len(ids), 500):
        found.update(row for (row,) in Embedding.select(Embedding.id).where(Embedding.id.in_(ids[start:start + 500])).tuples())
    return found
