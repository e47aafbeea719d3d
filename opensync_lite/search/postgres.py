"""Search on PostgreSQL: each row's tsvector (made when it is written), matched through GIN
indexes, ranked by ts_rank and highlighted by ``snippets``. A message's vector holds its text
at weight A, its tool text at B and its thinking at C, so ``where`` is a weight in the query."""

from peewee import SQL

from .kinds import ROLE_OF

# The words of each row are its search_vector column (schema_postgres.sql), indexed with GIN.
SESSION_VECTOR, MESSAGE_VECTOR = "s.search_vector", "m.search_vector"
# Those columns read the text with `<>/\.:@&;=?#~+-_` as spaces (PostgreSQL's parser would
# keep `a/b.py` whole and drop `<tag>`s), so words split as FTS5 splits them.
QUERY = "to_tsquery('simple', %s)"
RANK_WINDOW = 2000  # as on SQLite: only the newest matches of each table are ranked
WEIGHT_OF = {"prompts": "A", "answers": "A", "tools": "B", "thinking": "C"}


class Match(str):
    """A to_tsquery text, with ``where`` (the kind of text it is limited to)."""

    where = None


def _term(term, weight=""):
    words, prefix = term
    # Words are \w+ only, so inside single quotes they are plain operands; a word PostgreSQL's
    # parser splits (snake_case) becomes a phrase of its pieces, as FTS5 makes it.
    last = len(words) - 1
    return " <-> ".join(f"'{word}'" + (":" + ("*" if prefix and i == last else "") + weight
                                       if weight or (prefix and i == last) else "")
                        for i, word in enumerate(words))


def _expression(clauses, excluded, weight=""):
    expression = " & ".join("(" + " | ".join(_term(t, weight) for t in alternatives) + ")" for alternatives in clauses)
    return expression + "".join(f" & !({_term(term, weight)})" for term in excluded)


def match_expression(clauses, excluded, where=None):
    """A to_tsquery text: the clauses joined by &, alternatives by |, exclusions as & !."""
    match = Match(_expression(clauses, excluded, WEIGHT_OF[where] if where else ""))
    match.where = where
    return match


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
    minus ts_rank, so lower is better as with FTS5's bm25 (titles weigh most, tool text and
    thinking less than a message's text). With ``where`` only messages match (of that role,
    for prompts and answers)."""
    role = " AND m.role = %s" if match.where in ROLE_OF else ""
    messages = (
        " SELECT 'message' AS kind, w.session_id, w.id AS message_id, w.rank FROM"
        f" (SELECT m.id, m.session_id, -ts_rank({MESSAGE_VECTOR}, {QUERY}) AS rank"
        "  FROM messages AS m JOIN sessions AS ms ON ms.id = m.session_id"
        f"  WHERE ms.user_id = %s AND {MESSAGE_VECTOR} @@ {QUERY}{role} ORDER BY m.id DESC LIMIT %s) AS w"
    )
    message_args = (match, user_id, match, *((ROLE_OF[match.where],) if role else ()), RANK_WINDOW)
    if match.where:
        return SQL(f"({messages}) AS hits", message_args)
    return SQL(
        "(SELECT 'session' AS kind, w.id AS session_id, NULL::bigint AS message_id, w.rank FROM"
        f" (SELECT s.id, -ts_rank({SESSION_VECTOR}, {QUERY}) AS rank FROM sessions AS s"
        f"  WHERE s.user_id = %s AND {SESSION_VECTOR} @@ {QUERY} ORDER BY s.id DESC LIMIT %s) AS w"
        f" UNION ALL{messages}) AS hits",
        (match, user_id, match, RANK_WINDOW, *message_args),
    )


def column(name):
    return SQL(f"hits.{name}")
