"""Search on SQLite: FTS5 (the index tables, and the triggers that keep them in step with every
write, are in schema.sql)."""

from peewee import SQL

from ..db import database


def _term(term):
    words, prefix = term
    return '"' + " ".join(words) + '"' + ("*" if prefix else "")


class Match(str):
    """An FTS5 query, with the words it looks for (``words``), which the score counts."""

    words = ()


def match_expression(clauses, excluded):
    """An FTS5 query; every word is inside double quotes, so it cannot be a syntax error."""
    expression = " AND ".join("(" + " OR ".join(map(_term, alternatives)) + ")" for alternatives in clauses)
    match = Match("(" + expression + ")" + "".join(f" NOT {_term(term)}" for term in excluded))
    match.words = tuple(sorted({word.lower() for alternatives in clauses for words, _ in alternatives for word in words}))
    return match


def matching_session_ids(match, user_id):
    """Ids of the user's sessions whose title, project or any message matches. FTS5 walks its
    matches and each is kept only when it is the user's."""
    return SQL(
        "(SELECT s.id FROM sessions_fts JOIN sessions AS s ON s.id = sessions_fts.rowid"
        " WHERE sessions_fts MATCH ? AND s.user_id = ?"
        " UNION SELECT m.session_id FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
        " JOIN sessions AS ms ON ms.id = m.session_id WHERE messages_fts MATCH ? AND ms.user_id = ?)",
        (match, user_id, match, user_id),
    )


# A common word can match most of the index; ranking every match to show a page of 20 took
# over half a second on a million messages. Only the user's newest RANK_WINDOW matches of each
# table are ranked: FTS5 walks its matches newest first, keeps the user's, and stops there.
RANK_WINDOW = 2000


def _score(columns, words):
    """SQL for minus how often the words occur in ``columns`` ((expression, weight) pairs):
    a row's own text only. FTS5's bm25 would weigh words by how rare they are in the whole
    index, every user's rows included, which would tell a user about others' data."""
    if not words:
        return "0", ()
    terms, params = [], []
    for expression, weight in columns:
        text = f"lower(coalesce({expression}, ''))"
        for word in words:
            terms.append(f"{weight} * (length({text}) - length(replace({text}, ?, ''))) / {max(len(word), 1)}.0")
            params.append(word)
    return "-(" + " + ".join(terms) + ")", tuple(params)


def hits(match, user_id):
    """The user's sessions and messages matching (the newest RANK_WINDOW of each), rank = minus
    the number of times the words occur in the row (titles weigh double). No snippets here:
    they cost more than the ranking, so ``snippets`` makes them for the page of hits only."""
    session_score, session_params = _score((("s.title", 2), ("s.project_name", 1)), match.words)
    message_score, message_params = _score((("m.text_content", 1),), match.words)
    return SQL(
        "(SELECT 'session' AS kind, w.id AS session_id, NULL AS message_id, w.rank FROM"
        f" (SELECT s.id, {session_score} AS rank FROM sessions_fts JOIN sessions AS s ON s.id = sessions_fts.rowid"
        "  WHERE sessions_fts MATCH ? AND s.user_id = ? ORDER BY sessions_fts.rowid DESC LIMIT ?) AS w"
        " UNION ALL"
        " SELECT 'message', w.session_id, w.id, w.rank FROM"
        f" (SELECT m.id, m.session_id, {message_score} AS rank FROM messages_fts"
        "  JOIN messages AS m ON m.id = messages_fts.rowid JOIN sessions AS ms ON ms.id = m.session_id"
        "  WHERE messages_fts MATCH ? AND ms.user_id = ? ORDER BY messages_fts.rowid DESC LIMIT ?) AS w"
        ") AS hits",
        (*session_params, match, user_id, RANK_WINDOW, *message_params, match, user_id, RANK_WINDOW),
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
