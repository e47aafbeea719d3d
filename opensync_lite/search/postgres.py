"""Search on PostgreSQL: each row's tsvector (made when it is written), matched through GIN
indexes, ranked by ts_rank and highlighted by ts_headline."""

from peewee import SQL

from ..db import database

# The words of each row are its search_vector column (schema_postgres.sql), indexed with GIN.
SESSION_VECTOR, MESSAGE_VECTOR = "s.search_vector", "m.search_vector"
# Those columns read the text with this punctuation as spaces (PostgreSQL's parser would keep
# `a/b.py` whole and drop `<tag>`s); snippets swap it for placeholders instead (below).
PUNCTUATION = "<>/\\.:@&;=?#~+-_"
PLACEHOLDERS = "".join(chr(0xE010 + i) for i in range(len(PUNCTUATION)))  # private use
QUERY = "to_tsquery('simple', %s)"
RANK_WINDOW = 2000  # as on SQLite: only the newest matches of each table are ranked


def _term(term):
    words, prefix = term
    # Words are \w+ only, so inside single quotes they are plain operands; a word PostgreSQL's
    # parser splits (snake_case) becomes a phrase of its pieces, as FTS5 makes it.
    phrase = " <-> ".join(f"'{word}'" for word in words)
    return phrase + ":*" if prefix else phrase


def match_expression(clauses, excluded):
    """A to_tsquery text: the clauses joined by &, alternatives by |, exclusions as & !."""
    expression = " & ".join("(" + " | ".join(map(_term, alternatives)) + ")" for alternatives in clauses)
    return expression + "".join(f" & !({_term(term)})" for term in excluded)


def matching_session_ids(match, user_id):
    """Ids of the user's sessions whose title, project or any message matches."""
    return SQL(
        f"(SELECT s.id FROM sessions AS s WHERE s.user_id = %s AND {SESSION_VECTOR} @@ {QUERY}"
        " UNION SELECT m.session_id FROM messages AS m JOIN sessions AS ms ON ms.id = m.session_id"
        f" WHERE ms.user_id = %s AND {MESSAGE_VECTOR} @@ {QUERY})",
        (user_id, match, user_id, match),
    )


def hits(match, user_id):
    """The user's matching sessions and messages (the newest RANK_WINDOW of each), rank =
    minus ts_rank, so lower is better as with FTS5's bm25 (titles weigh most)."""
    return SQL(
        "(SELECT 'session' AS kind, w.id AS session_id, NULL::bigint AS message_id, w.rank FROM"
        f" (SELECT s.id, -ts_rank({SESSION_VECTOR}, {QUERY}) AS rank FROM sessions AS s"
        f"  WHERE s.user_id = %s AND {SESSION_VECTOR} @@ {QUERY} ORDER BY s.id DESC LIMIT %s) AS w"
        " UNION ALL"
        " SELECT 'message', w.session_id, w.id, w.rank FROM"
        f" (SELECT m.id, m.session_id, -ts_rank({MESSAGE_VECTOR}, {QUERY}) AS rank"
        "  FROM messages AS m JOIN sessions AS ms ON ms.id = m.session_id"
        f"  WHERE ms.user_id = %s AND {MESSAGE_VECTOR} @@ {QUERY} ORDER BY m.id DESC LIMIT %s) AS w"
        ") AS hits",
        (match, user_id, match, RANK_WINDOW, match, user_id, match, RANK_WINDOW),
    )


def column(name):
    return SQL(f"hits.{name}")


def snippets(match, session_ids, message_ids, open_mark, close_mark):
    """((kind, id), text with the hits between the marks) for the given hits. ts_headline
    reads the text with the punctuation above swapped for placeholders (so it finds the
    words the index found, and drops no `<tag>`), swapped back after."""
    options = "StartSel={}, StopSel={}, MaxWords={}, MinWords={}, MaxFragments=1, FragmentDelimiter=\" … \""
    for kind, ids, text, words in (
        ("session", session_ids, "concat_ws(' · ', title, project_name)", 12),
        ("message", message_ids, "left(text_content, 100000)", 16),
    ):
        if not ids:
            continue
        table = "sessions" if kind == "session" else "messages"
        cursor = database.execute_sql(
            f"SELECT id, translate(ts_headline('simple', translate({text}, %s, %s), {QUERY}, %s), %s, %s)"
            f" FROM {table} WHERE id = ANY(%s)",
            (PUNCTUATION, PLACEHOLDERS, match, options.format(open_mark, close_mark, words, words // 2),
             PLACEHOLDERS, PUNCTUATION, list(ids)),
        )
        for row_id, snippet in cursor.fetchall():
            yield (kind, row_id), snippet
