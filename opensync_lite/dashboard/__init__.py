"""The dashboard: server-rendered pages for people, over the same query layer as the JSON API
(``queries`` to read, ``ingest`` and ``auth`` to write)."""

from . import account  # noqa: F401  (its routes: sign-in and Settings, on the same blueprint)
from . import commands, lists, overview  # noqa: F401  (the overview and the sessions list, on the same blueprint)
from . import searching  # noqa: F401  (its routes: Search and Files, on the same blueprint)
from . import limits  # noqa: F401  (its route: the Limits page)
from .views import bp, error_page

__all__ = ["bp", "error_page"]
