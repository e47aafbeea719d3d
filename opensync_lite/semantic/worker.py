"""Embedding as sessions arrive: a thread of ``serve`` looks every few seconds for sessions
written since they were embedded and embeds them in bounded batches, resting between batches
as long as it worked, so the sync routes keep most of the machine. ``backfill`` is the same
loop run to the end, for ``opensync-lite embed``."""

import logging
import threading
import time

from .. import db
from . import store
from .encoders import Unavailable, encoder_for
from .turns import digest

log = logging.getLogger("opensync_lite.embed")

BATCH = 64  # texts per encoder call: one call's memory and time stay small
SESSIONS_PER_PASS = 50
POLL_S = 2.0
REST = 1.0  # seconds resting per second of work: the job takes at most about half a core


class Counts:
    def __init__(self):
        self.sessions = self.texts = self.messages = 0
        self.seconds = 0.0


def embed_sessions(encoder, sessions, counts, rest=0.0, stopping=None):
    """Embed each pending session's new or changed texts, then mark it embedded."""
    for session in sessions:
        if stopping is not None and stopping.is_set():
            return
        started = time.perf_counter()
        texts = store.texts_of(session)
        have = store.stored(session[0], encoder.name)
        wanted = {message_id: (text, digest(text), covers) for message_id, text, covers in texts}
        todo = [(m, text, d) for m, (text, d, _) in wanted.items() if have.get(m, (None, None))[1] != d]
        stale = [row_id for m, (row_id, d) in have.items() if m not in wanted or wanted[m][1] != d]
        fresh = []
        for start in range(0, len(todo), BATCH):
            chunk = todo[start:start + BATCH]
            vectors = encoder.encode([text for _, text, _ in chunk])
            fresh.extend((m, d, vector) for (m, _, d), vector in zip(chunk, vectors))
        store.save(session, encoder.name, fresh, stale)
        counts.sessions += 1
        counts.texts += len(fresh)
        counts.messages += sum(wanted[m][2] for m, _, _ in todo)
        spent = time.perf_counter() - started
        counts.seconds += spent
        if rest and stopping is not None:
            stopping.wait(spent * rest)


def backfill(encoder, user_id=None, progress=None):
    """Embed every pending session (of ``user_id``, else of everyone); ``progress(n)`` after
    each page. Returns the Counts."""
    counts = Counts()
    while True:
        page = store.pending(encoder.name, SESSIONS_PER_PASS, user_id)
        if not page:
            return counts
        before = counts.sessions
        embed_sessions(encoder, page, counts)
        if progress:
            progress(counts.sessions - before)


class Embedder:
    """The background job of ``serve`` for ``app``'s database (every user's sessions)."""

    def __init__(self, app, poll=POLL_S, rest=REST):
        self.app, self.poll, self.rest = app, poll, rest
        self.stopping = threading.Event()
        self.counts = Counts()
        self.passes = 0  # completed passes (tests wait on it)
        self.error = None
        self.thread = threading.Thread(target=self._run, name="opensync-embed", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self):
        with self.app.app_context():
            try:
                encoder = encoder_for(self.app.config)
            except Unavailable as err:
                self.error = err.message
                log.info("semantic search is off: %s", err.message)
                return
            self._warm(encoder)
            while not self.stopping.is_set():
                worked = False
                try:
                    db.connect()
                    page = store.pending(encoder.name, SESSIONS_PER_PASS)
                    if page:
                        embed_sessions(encoder, page, self.counts, self.rest, self.stopping)
                        worked = True
                except Unavailable as err:  # the endpoint is down: try again later
                    log.warning("embedding failed: %s", err.message)
                except Exception:  # noqa: BLE001 - a bad pass is logged; the next one tries again
                    log.exception("embedding pass failed")
                self.passes += 1
                if not worked:
                    self.stopping.wait(self.poll)

    def _warm(self, encoder):
        """Load each user's vectors into memory now, so the first query does not wait for it."""
        try:
            db.connect()
            for user_id in store.users_with_vectors(encoder.name):
                if self.stopping.is_set():
                    return
                store.matrix(db.database.obj, user_id, encoder.name, encoder.prefix)
        except Exception:  # noqa: BLE001 - a query loads what this could not
            log.exception("loading the vectors failed")
