"""Full-text search: the one place that knows it is SQLite FTS5 (the index and the triggers
that keep it in step with every write are in schema.sql). Another database replaces this
module and those statements; callers only see SQL nodes and plain rows."""

import html
import re

from peewee import SQL

from .db import database

TOKEN = re.compile(r"\w+", re.UNICODE)
# What people type into search boxes: "quoted phrases", -excluded or NOT excluded terms, OR
# between alternatives; anything else is a word. Each chunk is one term.
CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')
MAX_TERMS = 16
# Private-use characters mark the hit inside a snippet; they become <mark> after the text
# around them is HTML-escaped, so a snippet is safe to show as HTML.
OPEN, CLOSE = "\ue000", "\ue001"


def match_expression(text):
    """Search-box text → an FTS5 query that cannot be a syntax error, or None when nothing
    is left to look for. Words and phrases must all match; ``a OR b`` matches either;
    ``-word``, ``-"a phrase"`` and ``NOT word`` exclude; a plain last word matches as a prefix,
    so results come while typing. Only words reach FTS5, each inside double quotes."""
    clauses, excluded = [], []  # clauses: [[alternative, ...], ...], all of which must match
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
        term = '"' + " ".join(words) + '"'
        last = index == len(chunks) - 1 and not text.endswith(" ")
        if bare is not None and len(words) == 1 and last and not (minus or negate):
            term += "*"
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
        return None  # FTS5 cannot match "everything except": exclusions alone find nothing
    expression = " AND ".join("(" + " OR ".join(alternatives) + ")" for alternatives in clauses)
    return "(" + expression + ")" + "".join(f" NOT {term}" for term in excluded)


def matching_session_ids(match):
    """A subquery: ids of sessions whose title, project or any message matches."""
    return SQL(
        "(SELECT rowid FROM sessions_fts WHERE sessions_fts MATCH ?"
        " UNION SELECT m.session_id FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
        " WHERE messages_fts MATCH ?)",
        (match, match),
    )


# A common word can match most of the index; ranking every match to show a page of 20 took
# over half a second on a million messages. Only the newest RANK_WINDOW matches of each table
# are ranked: FTS5 walks its matches newest first and stops there, so a search costs the same
# however common its words are. (Rarer words have fewer matches and are ranked in full.)
RANK_WINDOW = 2000


def hits(match):
    """A FROM item ``hits(kind, session_id, message_id, rank)``: the sessions and messages
    matching (the newest RANK_WINDOW of each), rank = bm25 (lower is better; titles weigh
    double). No snippets here: they cost more than the ranking, so ``snippets`` makes them
    for the page of hits only."""
    return SQL(
        "(SELECT 'session' AS kind, s.rowid AS session_id, NULL AS message_id, s.rank FROM"
        " (SELECT rowid, bm25(sessions_fts, 2.0, 1.0) AS rank FROM sessions_fts WHERE sessions_fts MATCH ?"
        "  ORDER BY rowid DESC LIMIT ?) AS s"
        " UNION ALL"
        " SELECT 'message', m.session_id, m.id, f.rank FROM"
        " (SELECT rowid, bm25(messages_fts) AS rank FROM messages_fts WHERE messages_fts MATCH ?"
        "  ORDER BY rowid DESC LIMIT ?) AS f JOIN messages AS m ON m.id = f.rowid"
        ") AS hits",
        (match, RANK_WINDOW, match, RANK_WINDOW),
    )


def column(name):
    return SQL(f"hits.{name}")


def snippets(match, session_ids, message_ids):
    """{("session", id) | ("message", id): HTML snippet} for the given hits, the matched words
    in <mark> and the rest HTML-escaped."""
    out = {}
    for kind, table, column_index, ids in (
        ("session", "sessions_fts", -1, session_ids),
        ("message", "messages_fts", 0, message_ids),
    ):
        if not ids:
            continue
        marks = ", ".join("?" * len(ids))
        cursor = database.execute_sql(
            f"SELECT rowid, snippet({table}, {column_index}, ?, ?, '…', {12 if kind == 'session' else 16})"
            f" FROM {table} WHERE {table} MATCH ? AND rowid IN ({marks})",
            (OPEN, CLOSE, match, *ids),
        )
        for rowid, text in cursor.fetchall():
            out[kind, rowid] = html.escape(text or "").replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
    return out
