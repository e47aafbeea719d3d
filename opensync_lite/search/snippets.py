"""Snippets: a few words around the first match of a hit, the matched words marked, for both
databases alike. Made here from the row's text rather than by the engine (FTS5's snippet(),
ts_headline) because the engines expand every prefix word over the whole index for each row
they highlight: a page of 60 hits for a common word took 150 ms there, 15 ms here.

Words are read as the index reads them: letters and digits (punctuation and `_` split them),
case and accents ignored."""

import re
import unicodedata

from peewee import fn

from ..models import Message, Session

WORD = re.compile(r"[^\W_]+")
BEFORE, AFTER = 5, 11  # words shown around the first match (16 in all)
SESSION_WORDS = 12
MAX_READ = 100_000  # of a long text, its start is what a snippet reads (PostgreSQL indexes no more)
# A message's texts in the order a snippet is looked for, with the kind of text each is.
MESSAGE_TEXTS = (("text", Message.text_content), ("tool", Message.tool_text), ("thinking", Message.thinking_text))
TEXT_OF_WHERE = {"prompts": "text", "answers": "text", "tools": "tool", "thinking": "thinking"}


def fold(word):
    """A word as the index compares it: accents dropped, case folded."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def wanted(clauses):
    """[(folded word, is a prefix)] of the words the clauses look for (not the excluded)."""
    out = []
    for alternatives in clauses:
        for words, prefix in alternatives:
            pieces = [fold(piece) for word in words for piece in WORD.findall(word)]
            out += [(piece, prefix and i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    return out


def _which(word, words):
    """The index of the first of ``words`` that ``word`` is (or starts, for a prefix), or None."""
    folded = fold(word)
    return next((i for i, (w, prefix) in enumerate(words) if folded == w or (prefix and folded.startswith(w))), None)


def _hits(word, words):
    return _which(word, words) is not None


MAX_CANDIDATES = 2000  # matches weighed as a snippet's start (a long output can hold thousands)


def _best_start(tokens, words, span):
    """The index of the match whose next ``span`` words hold the most different words looked
    for (the first such): "expected 10 tokens" shows where all three are, not a lone "10"."""
    found = [(i, w) for i, w in ((i, _which(t.group(), words)) for i, t in enumerate(tokens)) if w is not None]
    best, best_count = None, 0
    for n, (i, _) in enumerate(found[:MAX_CANDIDATES]):
        distinct = {w for j, w in found[n:n + span] if j < i + span}
        if len(distinct) > best_count:
            best, best_count = i, len(distinct)
            if best_count == len(words):
                break
    return best


def snippet(text, words, open_mark, close_mark, length=BEFORE + AFTER + 1):
    """(``text`` cut to ``length`` words around its first match with the matches between the
    marks, whether it matched). Without a match: its first words."""
    text = (text or "")[:MAX_READ]
    tokens = list(WORD.finditer(text))
    first = _best_start(tokens, words, length - BEFORE) if words else None
    start = 0 if first is None else max(0, first - BEFORE)
    shown = tokens[start:start + length]
    if not shown:
        return text[:200], False
    out, at = [], shown[0].start()
    for token in shown:
        out.append(text[at:token.start()])
        out.append(open_mark + token.group() + close_mark if _hits(token.group(), words) else token.group())
        at = token.end()
    body = "".join(out).strip()
    lead = "… " if start > 0 else ""
    tail = " …" if start + length < len(tokens) else text[at:].rstrip()
    return lead + body + tail, first is not None


def snippets(clauses, where, session_ids, message_ids, open_mark, close_mark):
    """((kind, id), column kind, role, snippet) for the given hits: a message's snippet from
    the first of its texts (those ``where`` allows) that holds a match."""
    words = wanted(clauses)
    if session_ids:
        for session_id, title, project in (Session.select(Session.id, Session.title, Session.project_name)
                                           .where(Session.id.in_(list(session_ids))).tuples()):
            text = " · ".join(t for t in (title, project) if t)
            yield ("session", session_id), "title", None, snippet(text, words, open_mark, close_mark, SESSION_WORDS)[0]
    if message_ids:
        kinds = [(kind, column) for kind, column in MESSAGE_TEXTS if not where or kind == TEXT_OF_WHERE[where]]
        columns = [fn.SUBSTR(column, 1, MAX_READ) for _, column in kinds]
        query = Message.select(Message.id, Message.role, *columns).where(Message.id.in_(list(message_ids))).tuples()
        for message_id, role, *texts in query:
            made = [(kind, *snippet(text, words, open_mark, close_mark)) for (kind, _), text in zip(kinds, texts)]
            kind, text, _ = next((m for m in made if m[2] and m[1]), made[0])
            yield ("message", message_id), kind, role, text
