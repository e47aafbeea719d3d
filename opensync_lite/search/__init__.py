"""Full-text search: what a search box means, and the one interface ``queries`` calls. Each
database answers it with its own engine: SQLite's FTS5 (``sqlite``), PostgreSQL's tsvector and
GIN indexes (``postgres``); nothing outside this package knows which.

The interface: ``match_expression(text)`` (None when nothing is left to look for), then, with
that match, ``matching_session_ids(match, user_id)`` (a subquery of session ids), ``hits(match,
user_id)`` (a FROM item ``hits(kind, session_id, message_id, rank)``, lower rank = better),
``column(name)`` (a column of it) and ``snippets(match, session_ids, message_ids)``.
"""

import html
import re

from ..db import is_postgres
from . import postgres, sqlite

TOKEN = re.compile(r"\w+", re.UNICODE)
# What people type into search boxes: "quoted phrases", -excluded or NOT excluded terms, OR
# between alternatives; anything else is a word. Each chunk is one term.
CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')
MAX_TERMS = 16
# Private-use characters mark the hit inside a snippet; they become <mark> after the text
# around them is HTML-escaped, so a snippet is safe to show as HTML.
OPEN, CLOSE = "\ue000", "\ue001"


def parse(text):
    """Search-box text → (clauses, excluded), or None when nothing is left to look for.
    Every clause must match (a clause is a list of alternatives joined by OR); no excluded
    term may. A term is (words, prefix): the words as a phrase; ``prefix`` for a plain last
    word, so results come while typing. ``-word``, ``-"a phrase"`` and ``NOT word`` exclude.
    Only words (\\w+) survive, so no search text can be a syntax error in either engine."""
    clauses, excluded = [], []
    negate = join = False
    words_left = MAX_TERMS
    text = text or ""
    chunks = list(CHUNK.finditer(text))
    for index, chunk in enumerate(chunks):
        minus, quoted, bare = chunk.groups()
        if bare in ("OR", "NOT", "AND"):
            join, negate = bare == "OR" and bool(clauses), bare == "NOT"
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            minus, bare = "-", bare[1:]
        words = TOKEN.findall(quoted if quoted is not None else bare)[:words_left]
        if not words:
            continue
        words_left -= len(words)
        last = index == len(chunks) - 1 and not text.endswith(" ")
        term = (tuple(words), bare is not None and len(words) == 1 and last and not (minus or negate))
        if minus or negate:
            excluded.append(term)
        elif join:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        negate = join = False
        if not words_left:
            break
    if not clauses:
        return None  # neither engine can match "everything except": exclusions alone find nothing
    return clauses, excluded


def _engine():
    return postgres if is_postgres() else sqlite


def match_expression(text):
    """The search-box ``text`` in the database's own query language, or None."""
    parsed = parse(text)
    return None if parsed is None else _engine().match_expression(*parsed)


def matching_session_ids(match, user_id):
    return _engine().matching_session_ids(match, user_id)


def hits(match, user_id):
    return _engine().hits(match, user_id)


def column(name):
    return _engine().column(name)


def snippets(match, session_ids, message_ids):
    """{("session", id) | ("message", id): HTML snippet} for the given hits, the matched words
    in <mark> and the rest HTML-escaped."""
    out = {}
    for key, text in _engine().snippets(match, session_ids, message_ids, OPEN, CLOSE):
        out[key] = html.escape(text or "").replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
    return out
