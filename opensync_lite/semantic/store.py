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
    """One user's vectors of one model, in memory: ids, sessions, first messages, and the rows.

    A model trained Matryoshka-style (the local one) has its first dimensions make a vector of
    their own, so a query scans those first (``coarse``: ``prefix`` dimensions, float32, made unit
    length again) and re-ranks the best few thousand on every dimension (``fine``, float16): a
    quarter of the bytes read per query, which is what a scan's time is on this hardware."""

    def __init__(self, prefix=None):
        self.lock = threading.Lock()
        self.prefix = prefix
        self.size, self.last_id = 0, 0
        self.ids = self.sessions = self.messages = np.zeros(0, dtype=np.int64)  # messages -1: the session's own
        self.coarse = self.fine = None

    def refresh(self, user_id, model):
        """Load the rows added since the last call (raw cursor pages: Peewee's row objects
        would cost more than the vectors)."""
        database = db.database.obj
        while True:
            query = (Embedding.select(Embedding.id, Embedding.session, Embedding.message, Embedding.vector)
                     .where(Embedding.user == user_id, Embedding.model == model, Embedding.id > self.last_id)
                     .order_by(Embedding.id).limit(LOAD_PAGE))
            page = database.execute(query).fetchall()
            if not page:
                return
            vectors = np.frombuffer(b"".join(bytes(row[3]) for row in page), dtype="<f2").reshape(len(page), -1)
            self._append([row[0] for row in page], [row[1] for row in page],
                         [-1 if row[2] is None else row[2] for row in page], vectors)
            self.last_id = page[-1][0]
            if len(page) < LOAD_PAGE:
                return

    def _two_stage(self, dims):
        return self.prefix is not None and self.prefix < dims

    def _append(self, ids, sessions, messages, vectors):
        n, dims = len(ids), vectors.shape[1]
        if self.coarse is None or (self.fine if self.fine is not None else self.coarse).shape[1] != dims:
            capacity = max(1024, n)
            self.size = 0
            self.coarse = np.zeros((capacity, self.prefix if self._two_stage(dims) else dims), dtype=np.float32)
            self.fine = np.zeros((capacity, dims), dtype=np.float16) if self._two_stage(dims) else None
            self.ids, self.sessions, self.messages = (np.zeros(capacity, dtype=np.int64) for _ in range(3))
        end = self.size + n
        if end > len(self.coarse):  # grow by half again, so appends cost little on average
            capacity = max(end, len(self.coarse) * 3 // 2)
            for name in ("coarse", "fine", "ids", "sessions", "messages"):
                array = getattr(self, name)
                if array is not None:
                    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
                    grown[:self.size] = array[:self.size]
                    setattr(self, name, grown)
        if self.fine is not None:
            self.fine[self.size:end] = vectors
            head = vectors[:, :self.prefix].astype(np.float32)
            norms = np.linalg.norm(head, axis=1, keepdims=True)
            self.coarse[self.size:end] = head / np.where(norms == 0, 1, norms)
        else:
            self.coarse[self.size:end] = vectors
        self.ids[self.size:end], self.sessions[self.size:end], self.messages[self.size:end] = ids, sessions, messages
        self.size = end

    def best(self, query, count):
        """The ``count`` best rows for ``query`` (a unit vector): [(score, index)], best first."""
        dims = self.fine.shape[1] if self.fine is not None else (self.coarse.shape[1] if self.coarse is not None else 0)
        if self.size == 0 or query.shape[0] != dims:
            return []
        if self.fine is not None:
            head = query[:self.prefix] / (np.linalg.norm(query[:self.prefix]) or 1)
            candidates = _top(self.coarse[:self.size] @ head, max(count * 4, RERANK))
            scores = self.fine[candidates].astype(np.float32) @ query
            picked = _top(scores, count)
            return [(float(scores[i]), int(candidates[i])) for i in picked]
        scores = self.coarse[:self.size] @ query
        return [(float(scores[i]), int(i)) for i in _top(scores, count)]

    def forget(self, indexes):
        """Rows found gone from the database: they score nothing from now on."""
        indexes = list(indexes)
        self.coarse[indexes] = 0
        if self.fine is not None:
            self.fine[indexes] = 0
        self.sessions[indexes] = -1


RERANK = 2000  # rows the coarse scan hands to the full re-rank, at least


def _top(scores, count):
    """Indexes of the ``count`` highest ``scores``, highest first."""
    count = min(count, len(scores))
    top = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


_matrices, _matrices_lock = {}, threading.Lock()


def matrix(database, user_id, model, prefix=None):
    """The user's matrix in this process (per database: a host may run two apps), brought up to date."""
    with _matrices_lock:
        found = _matrices.setdefault((id(database), user_id, model), UserMatrix(prefix))
    with found.lock:
        found.refresh(user_id, model)
    return found


def users_with_vectors(model):
    return [user_id for (user_id,) in Embedding.select(Embedding.user).where(Embedding.model == model).distinct().tuples()]
