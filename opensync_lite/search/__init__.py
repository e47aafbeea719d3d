"""Full-text search: what a search box means, and the one interface ``queries`` calls. Each
database answers it with its own engine: SQLite's FTS5 (``sqlite``), PostgreSQL's tsvector and
GIN indexes (``postgres``); nothing outside this package knows which.

The interface: ``match_expression(text, where)`` (None when nothing is left to look for), then,
with that match, ``matching_session_ids(match, user_id)`` (a subquery of session ids),
``hits(match, user_id)`` (a FROM item ``hits(kind, session_id, message_id, rank)``, lower rank =
better), ``column(name)`` (a column of it) and ``snippets(match, session_ids, message_ids)``.

``where`` narrows a search to one kind of text (WHERE, below): without it a search reads
session titles and projects and every text of every message.
"""

import html
import re

from ..db import is_postgres
from . import postgres, sqlite
from .snippets import snippets as snippets_of
from .kinds import WHERE  # noqa: F401  (the choices of ``where``, for schemas and pages)

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
    term may. A term is (words, prefix): the words as a phrase; ``prefix`` for every word
    typed bare (its last word may end anywhere: "OOM" finds "OOMs"), not for a "quoted
    phrase", which is matched as typed. ``-word``, ``-"a phrase"`` and ``NOT word`` exclude.
    Only words (\\w+) survive, so no search text can be a syntax error in either engine."""
    clauses, excluded = [], []
    negate = join = False
    words_left = MAX_TERMS
    text = text or ""
    chunks = list(CHUNK.finditer(text))
    for chunk in chunks:
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
        term = (tuple(words), bare is not None and not (minus or negate))
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


def match_expression(text, where=None):
    """The search-box ``text`` in the database's own query language (looking only at the
    ``where`` kind of text, one of WHERE, when given), or None."""
    parsed = parse(text)
    if parsed is None:
        return None
    match = _engine().match_expression(*parsed, where=where)
    match.clauses = parsed[0]  # the words, which snippets mark
    return match


def matching_session_ids(match, user_id):
    return _engine().matching_session_ids(match, user_id)


def hits(match, user_id):
    return _engine().hits(match, user_id)


def column(name):
    return _engine().column(name)


# What a hit was found in, by the column that holds the words (and a message's role).
FOUND_IN = {("title", None): "title", ("text", "user"): "prompt", ("text", "assistant"): "answer",
            ("tool", None): "tool", ("thinking", None): "thinking"}


def snippets(match, session_ids, message_ids):
    """{("session", id) | ("message", id): (HTML snippet, found in)} for the given hits: the
    matched words in <mark>, the rest HTML-escaped; "found in" is title, prompt, answer, tool,
    thinking, or "message" (a text of another role)."""
    out = {}
    for key, column, role, text in snippets_of(match.clauses, match.where, session_ids, message_ids, OPEN, CLOSE):
        found_in = FOUND_IN.get((column, role if column == "text" else None), "message")
        out[key] = (html.escape(text or "").replace(OPEN, "<mark>").replace(CLOSE, "</mark>"), found_in)
    return out
