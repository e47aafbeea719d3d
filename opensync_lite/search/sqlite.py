"""Search on SQLite: FTS5 (the index tables, and the triggers that keep them in step with every
write, are in schema.sql)."""

from peewee import SQL

from ..db import database


def _term(term):
    words, prefix = term
    return '"' + " ".join(words) + '"' + ("*" if prefix else "")


def match_expression(clauses, excluded):
    """An FTS5 query; every word is inside double quotes, so it cannot be a syntax error."""
    expression = " AND ".join("(" + " OR ".join(map(_term, alternatives)) + ")" for alternatives in clauses)
    return "(" + expression + ")" + "".join(f" NOT {_term(term)}" for term in excluded)


def matching_session_ids(match, user_id):
    """Ids of sessions whose title, project or any message matches (the caller keeps the
    user's own: the FTS5 index holds everyone's rows)."""
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


def hits(match, user_id):
    """The sessions and messages matching (the newest RANK_WINDOW of each), rank = bm25
    (titles weigh double). No snippets here: they cost more than the ranking, so ``snippets``
    makes them for the page of hits only."""
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


def snippets(match, session_ids, message_ids, open_mark, close_mark):
    """((kind, id), text with the hits between the marks) for the given hits."""
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
            (open_mark, close_mark, match, *ids),
        )
        for rowid, text in cursor.fetchall():
            yield (kind, rowid), text
