"""Page data remembered per data version. An overview of 100 000 sessions costs one scan of
the covering index (tens of milliseconds); while nothing changes (``queries.data_version``,
one index read) the next view of the same page and filters reuses what the last one read."""

import threading
from collections import OrderedDict

from flask import current_app

EXTENSION = "opensync.remembered"
SIZE = 64  # pages, across users and filters; the oldest is forgotten first


class Remembered:
    def __init__(self, size=SIZE):
        self.size = size
        self._items = OrderedDict()  # key -> (version, value)
        self._lock = threading.Lock()

    def get(self, key, version, compute):
        with self._lock:
            held = self._items.get(key)
            if held is not None and held[0] == version:
                self._items.move_to_end(key)
                return held[1]
        value = compute()  # outside the lock: two threads may both compute, never block
        with self._lock:
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def remembered(key, version, compute):
    """``compute()``, or what it gave for the same key at the same version."""
    store = current_app.extensions.get(EXTENSION)
    if store is None:
        store = current_app.extensions.setdefault(EXTENSION, Remembered())
    return store.get(key, version, compute)
