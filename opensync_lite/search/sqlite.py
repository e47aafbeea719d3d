"""Search on SQLite: FTS5 (the index tables, and the triggers that keep them in step with every
write, are in schema.sql). A message is indexed in three columns (its text, its tool text, its
thinking), so ``where`` is an FTS5 column filter."""

from peewee import SQL

from .kinds import ROLE_OF

# The message columns of messages_fts, in order, and the kind of text each holds.
MESSAGE_COLUMNS = (("text_content", "text"), ("tool_text", "tool"), ("thinking_text", "thinking"))
COLUMN_OF = {"prompts": "text_content", "answers": "text_content", "tools": "tool_text", "thinking": "thinking_text"}


def _term(term):
    words, prefix = term
    return '"' + " ".join(words) + '"' + ("*" if prefix else "")


class Match(str):
    """An FTS5 query, with the words it looks for (``words``), which the score counts, and
    the kind of text it is limited to (``where``)."""

    words = ()
    where = None


def match_expression(clauses, excluded, where=None):
    """An FTS5 query; every word is inside double quotes, so it cannot be a syntax error."""
    expression = " AND ".join("(" + " OR ".join(map(_term, alternatives)) + ")" for alternatives in clauses)
    text = "(" + expression + ")" + "".join(f" NOT {_term(term)}" for term in excluded)
    match = Match("{" + COLUMN_OF[where] + "} : (" + text + ")" if where else text)
    match.words = tuple(sorted({word.lower() for alternatives in clauses for words, _ in alternatives for word in words}))
    match.where = where
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
# Tool output and thinking are long: their score reads their start only (a match further in
# still counts, with the score of a word seen once).
SCORED_CHARS = 4000


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


MESSAGE_SCORED = {"text_content": ("m.text_content", 1), "tool_text": (f"substr(m.tool_text, 1, {SCORED_CHARS})", 0.5),
                  "thinking_text": (f"substr(m.thinking_text, 1, {SCORED_CHARS})", 0.5)}


def hits(match, user_id):
    """The user's sessions and messages matching (the newest RANK_WINDOW of each), rank = minus
    the number of times the words occur in the row (titles weigh double, tool text and thinking
    half). No snippets here: they cost more than the ranking, so ``snippets`` makes them for
    the page of hits only. With ``where`` only messages match (of that role, for prompts and
    answers)."""
    columns = [COLUMN_OF[match.where]] if match.where else [name for name, _ in MESSAGE_COLUMNS]
    message_score, message_params = _score([MESSAGE_SCORED[name] for name in columns], match.words)
    role = " AND m.role = ?" if match.where in ROLE_OF else ""
    role_params = (ROLE_OF[match.where],) if role else ()
    messages = (
        " SELECT 'message' AS kind, w.session_id, w.id AS message_id, w.rank FROM"
        f" (SELECT m.id, m.session_id, {message_score} AS rank FROM messages_fts"
        "  JOIN messages AS m ON m.id = messages_fts.rowid JOIN sessions AS ms ON ms.id = m.session_id"
        f"  WHERE messages_fts MATCH ? AND ms.user_id = ?{role} ORDER BY messages_fts.rowid DESC LIMIT ?) AS w"
    )
    message_args = (*message_params, match, user_id, *role_params, RANK_WINDOW)
    if match.where:
        return SQL(f"({messages}) AS hits", message_args)
    session_score, session_params = _score((("s.title", 2), ("s.project_name", 1)), match.words)
    return SQL(
        "(SELECT 'session' AS kind, w.id AS session_id, NULL AS message_id, w.rank FROM"
        f" (SELECT s.id, {session_score} AS rank FROM sessions_fts JOIN sessions AS s ON s.id = sessions_fts.rowid"
        "  WHERE sessions_fts MATCH ? AND s.user_id = ? ORDER BY sessions_fts.rowid DESC LIMIT ?) AS w"
        f" UNION ALL{messages}) AS hits",
        (*session_params, match, user_id, RANK_WINDOW, *message_args),
    )


def column(name):
    return SQL(f"hits.{name}")
