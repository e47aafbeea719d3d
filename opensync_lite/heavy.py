"""Heavy requests: the exports and the evals preview read and redact many sessions, holding a
server thread for seconds. A user runs at most ``OPENSYNC_HEAVY_PER_USER`` of them at once in
this process (a streamed download holds its slot until it is sent or dropped), so one user's
exports can never take every thread while other users wait; one more answers 429 with
``Retry-After``."""

import threading
from collections import Counter
from functools import wraps

from flask import current_app, g

from .errors import ApiError

EXTENSION = "opensync.heavy"
RETRY_AFTER_S = 5


class _Running:
    """How many heavy requests each key (a user) has in flight in this app."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = Counter()


class _Slot:
    def __init__(self, running, key):
        self.running, self.key, self.held = running, key, True

    def release(self):
        with self.running.lock:
            if self.held:  # once, whichever of the stream's end or its close comes first
                self.held = False
                self.running.count[self.key] -= 1
                if not self.running.count[self.key]:
                    del self.running.count[self.key]


class _Releasing:
    """A streamed body that gives its slot back when it has been sent, or when the server
    closes it (the client went away)."""

    def __init__(self, body, slot):
        self.body, self.slot = body, slot

    def __iter__(self):
        try:
            yield from self.body
        finally:
            self.slot.release()

    def close(self):
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.slot.release()


def _acquire(key):
    running = current_app.extensions.setdefault(EXTENSION, _Running())
    limit = current_app.config["OPENSYNC_HEAVY_PER_USER"]
    with running.lock:
        if running.count[key] >= limit:
            raise ApiError(429, f"{limit} of your exports or previews are still running on this server: try again "
                                f"when one has finished (in a few seconds).",
                           headers={"Retry-After": str(RETRY_AFTER_S)})
        running.count[key] += 1
    return _Slot(running, key)


def limited(key, respond):
    """``respond()``'s answer, made (and, when it streams, sent) under one of ``key``'s slots."""
    slot = _acquire(key)
    try:
        response = current_app.make_response(respond())
    except BaseException:
        slot.release()
        raise
    if response.is_streamed:
        response.response = _Releasing(response.response, slot)
    else:
        slot.release()
    return response


def heavy(view):
    """A view that counts against the signed-in user's heavy requests."""

    @wraps(view)
    def run(*args, **kwargs):
        return limited(g.user_id, lambda: view(*args, **kwargs))

    return run
