"""The dashboard: server-rendered pages for people, over the same query layer as the JSON API
(``queries`` to read, ``ingest`` and ``auth`` to write)."""

from .views import bp

__all__ = ["bp"]
