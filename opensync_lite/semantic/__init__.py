"""Semantic and hybrid search: sessions found by what they mean, not only by their words.

- ``encoders``: texts → unit vectors, by the local model of the ``semantic`` extra (WordLlama,
  whose weights ship inside its wheel: nothing is downloaded) or by an OpenAI-compatible
  embeddings endpoint (OPENSYNC_EMBED_URL), for those who want a larger model.
- ``turns``: what is embedded: one text per turn of a session, and one for the session itself.
- ``store``: the vectors on either database (plain BLOBs through Peewee), which sessions are
  behind, and the per-user matrix a query scans.
- ``worker``: the background job that embeds sessions as they arrive (``serve``), and the
  backfill behind ``opensync-lite embed``.
- ``ranking``: a query's sessions by meaning, and hybrid as reciprocal rank fusion with full text.
"""

from .encoders import Unavailable, encoder_for  # noqa: F401


def load_ranking():
    """The ranking module, or Unavailable (503, naming the extra) when numpy is not installed."""
    try:
        from . import ranking as module
    except ImportError:
        from .encoders import INSTALL

        raise Unavailable(f"Semantic search needs the `semantic` extra: {INSTALL}") from None
    return module
