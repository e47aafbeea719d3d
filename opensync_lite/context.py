"""What an agent is given of past sessions: ``/api/context`` (OpenSync's shapes) and the MCP
tools' texts. Sessions are found through ``queries.search``, their last messages read through
``queries``, and everything handed out is masked by the redaction step, as exports are.

Sized for a model's context: one message's text stops at ``MESSAGE_CHARS``, the whole answer at
``max_chars`` (headers aside); where text is cut a note says how much is left and where to read it."""

import html
import re

from . import queries
from .redact import Redactor
from .search.kinds import AVAILABLE_TYPES

LAST_MESSAGES = 10  # of each session found, as OpenSync gives them
MESSAGE_CHARS = 4000  # of one message (the caps on sessions and on the whole are the schema's)
MARK = re.compile(r"</?mark>")


def find_sessions(user_id, q, limit, filters=None, kind="fulltext", offset=0):
    """(sessions matching ``q``, best first, each with its best matches; whether more follow).
    ``kind`` is how they are found (search.kinds.TYPES); the schemas refuse one not built yet."""
    if kind not in AVAILABLE_TYPES:
        raise ValueError(f"search type {kind!r} is not available")
    return queries.search(user_id, q, limit=limit, offset=offset, filters=filters, kind=kind)


def plain_snippet(snippet):
    """A search snippet (HTML, hits in <mark>) as plain text for a model."""
    return html.unescape(MARK.sub("", snippet or ""))


def _text_of(content):
    # OpenSync's extractTextContent: a string, or an object's `text` or `content`.
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        value = content.get("text") or content.get("content") or ""
        return value if isinstance(value, str) else ""
    return ""


def message_text(message):
    """A message's text as OpenSync's context gives it: its text parts, one per line, else its
    textContent."""
    texts = [_text_of(p["content"]) for p in message["parts"] if p["type"] == "text"]
    texts = [t for t in texts if t]
    return "\n".join(texts) if texts else (message["text_content"] or "")


def cut(text, limit, more):
    """``text`` at most ``limit`` characters, and when it was longer a note (``more``: where
    to read the rest) after it."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… {len(text) - limit} more characters: {more}]"


def api_hint(session, index):
    return f"GET /api/sessions/get?id={session['id']}&messagesOffset={index}&messagesLimit=1 (message {index})"


def build(user_id, q, limit, fmt, filters, kind, max_chars, hint=api_hint):
    """The context for ``q``: ``{text, sessionCount}`` (``fmt`` "text") or ``{messages:[{role,
    content, metadata:{sessionId, sessionTitle}}], sessionCount}`` ("messages"), as OpenSync
    answers /api/context; the last LAST_MESSAGES messages of each session found. ``hint(session,
    message index)`` says where a cut message can be read whole."""
    sessions, _ = find_sessions(user_id, q, limit, filters, kind)
    redactor = Redactor()
    budget = Budget(max_chars)
    text = f'Relevant coding sessions for: "{redactor.text(q)}"\n\n'
    messages = []
    for session in sessions:
        if budget.spent:
            break
        title = redactor.text(session["title"])
        total = queries.message_count(session["session_id"])
        last = queries.last_messages(session["session_id"], LAST_MESSAGES)
        row = {"id": session["session_id"]}
        block = [f"--- Session: {title or 'Untitled'} ---\n",
                 f"Project: {redactor.text(session['project_path']) or 'N/A'}\n",
                 f"Model: {redactor.text(session['model']) or 'N/A'}\n\n"]
        for index, message in enumerate(last, start=total - len(last)):
            content = cut(redactor.text(message_text(message)), MESSAGE_CHARS, hint(row, index))
            content = budget.take(content, hint(row, index))
            if content is None:
                break
            block.append(f"[{message['role'].upper()}]\n{content}\n\n")
            metadata = {"sessionId": str(session["session_id"])}
            if title is not None:  # OpenSync leaves out a title the session has not got
                metadata["sessionTitle"] = title
            messages.append({"role": message["role"], "content": content, "metadata": metadata})
        text += "".join(block) + "\n"
    if budget.spent:
        note = (f"[The answer stops at maxChars={max_chars}; more was left out: ask for fewer sessions,"
                " a larger maxChars, or read a session whole]")
        text += note + "\n"
        if messages:
            messages[-1]["content"] += "\n" + note
    if fmt == "messages":
        return {"messages": messages, "sessionCount": len(sessions)}
    return {"text": text, "sessionCount": len(sessions)}


class Budget:
    """The characters an answer may still hold."""

    def __init__(self, chars):
        self.left, self.spent = chars, False

    def take(self, text, more):
        """``text`` whole, or cut to what is left (with a note), or None once nothing is."""
        if self.spent:
            return None
        if len(text) <= self.left:
            self.left -= len(text)
            return text
        taken, self.left, self.spent = cut(text, self.left, more), 0, True
        return taken
