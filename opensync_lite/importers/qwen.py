"""Import Qwen Code's chats: ``~/.qwen/projects/<cwd slug>/chats/<session id>.jsonl`` (0.24),
one append log per session, a tree of records (``uuid``, ``parentUuid``) each naming its
``sessionId``, ``cwd`` and ``timestamp``. Qwen Code is a Gemini CLI fork and keeps the API's
parts as the Gemini CLI does (``text``, ``thought``, ``functionCall``, ``functionResponse``),
but in records that are written once and never replaced:

- ``user``: a prompt (``message.parts``); those the CLI itself adds (``provenance`` ``system``
  or ``goal_runtime``: notices, a goal's runtime turns) are not the user's words and are passed over;
- ``assistant``: an answer (``model``, ``message.parts``) with its response's ``usageMetadata``;
- ``tool_result``: a tool's output (``functionResponse`` parts, ``toolCallResult.status``);
- ``system``: the CLI's own bookkeeping (telemetry copies, snapshots, compression); of these
  only ``custom_title`` (the name the user gave the session) is read.

Every branch of the tree is kept: it is all history the user wrote. A resume (``-c``, ``-r``)
appends to the same file. Usage: ``promptTokenCount`` includes the cached tokens
(``cachedContentTokenCount``); from an OpenAI-compatible API ``candidatesTokenCount`` already
includes the reasoning (``thoughtsTokenCount``), from Gemini it does not (the total tells
which). One usage per answer record, keyed by its uuid, so a file read again counts it once.
No cost is written anywhere: the write path prices the tokens. A changed file is read whole
(its first prompt titles the session) and only the records after where the last run stopped
are written."""

import os
from pathlib import Path

from marshmallow import ValidationError

from .. import schemas
from . import import_files
from .bounds import count_of as _count
from .whole_file import WholeFileImporter, title_for
from .gemini import _output, _texts

SOURCE = "qwen-code"
TITLE_CHARS = 100
NOT_THE_USERS = ("system", "goal_runtime")  # provenances of user records the CLI writes itself
_time = schemas.EpochMs()


def default_root():
    """$QWEN_RUNTIME_DIR/projects, else $QWEN_HOME/projects, else ~/.qwen/projects (where the CLI keeps its chats)."""
    base = os.environ.get("QWEN_RUNTIME_DIR") or os.environ.get("QWEN_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".qwen") / "projects"


def _is_chat(path):
    return path.suffix == ".jsonl" and path.parent.name == "chats"


def chats(roots):
    """Every chat file under ``roots`` (folders or single files), in a stable order; regular files only."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file() and _is_chat(p))
    return found


def _tokens(usage):
    """Qwen's usageMetadata as our four kinds."""
    prompt, cached = _count(usage, "promptTokenCount"), _count(usage, "cachedContentTokenCount")
    output, thoughts = _count(usage, "candidatesTokenCount"), _count(usage, "thoughtsTokenCount")
    if thoughts and _count(usage, "totalTokenCount") >= prompt + output + thoughts:
        output += thoughts  # Gemini's way: the reasoning counted beside the answer, not inside it
    return {"input_tokens": max(0, prompt - cached), "cache_read_tokens": min(cached, prompt),
            "cache_write_tokens": 0, "output_tokens": output}


def _name(value):
    return value if isinstance(value, str) and value else None


class _Chat:
    """One file read whole: its session, the messages in order, the usage of each answer."""

    def __init__(self):
        self.id = self.cwd = self.model = self.prompt = self.title = None
        self.first = self.last = None
        self.messages = []  # wire dicts, each with "_end": the offset after its line
        self.responses = []  # (uuid, the answer's wire dict, usageMetadata)

    def saw(self, stamp):
        if stamp is not None:
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)

    def take(self, record, end):
        """Take one record; why it cannot be taken, or None."""
        session_id, uuid, kind = record.get("sessionId"), record.get("uuid"), record.get("type")
        if not isinstance(session_id, str) or not session_id or len(session_id) > 256 or "\x00" in session_id:
            return "a record without a usable sessionId"
        if self.id is not None and session_id != self.id:
            return "a record of another session"
        if not isinstance(uuid, str) or not uuid or len(uuid) > 200:
            return "a record without a usable uuid"
        try:
            stamp = _time.deserialize(record["timestamp"]) if record.get("timestamp") is not None else None
        except ValidationError:
            return f"timestamp {str(record.get('timestamp'))[:40]!r} is not a date"
        self.id = session_id
        self.cwd = self.cwd or (record["cwd"] if isinstance(record.get("cwd"), str) and record["cwd"].startswith("/") else None)
        self.saw(stamp)
        message = record.get("message") if isinstance(record.get("message"), dict) else {}
        text, thoughts, calls, results = _texts(message.get("parts"))
        base = {"externalId": f"{session_id}:{uuid}", "createdAt": stamp, "_end": end}
        if kind == "user":
            if record.get("provenance") in NOT_THE_USERS or not text.strip():
                return None
            self.prompt = self.prompt or " ".join(text.split())[:TITLE_CHARS]
            self.messages.append({**base, "role": "user", "textContent": text, "parts": [{"type": "text", "content": text}]})
        elif kind == "assistant":
            self.model = _name(record.get("model")) or self.model
            parts = [{"type": "thinking", "content": "\n".join(thoughts)}] if any(t.strip() for t in thoughts) else []
            parts += [{"type": "text", "content": text}] if text else []
            parts += [{"type": "tool-call", "content": {"id": c.get("id"), "name": c.get("name"), "input": c.get("args")}}
                      for c in calls]
            wire = {**base, "role": "assistant", "textContent": text, "model": self.model, "parts": parts}
            if parts:
                self.messages.append(wire)
            if isinstance(record.get("usageMetadata"), dict):
                self.responses.append((uuid, wire, record["usageMetadata"]))
        elif kind == "tool_result":
            outcome = record.get("toolCallResult") if isinstance(record.get("toolCallResult"), dict) else {}
            failed = outcome.get("status") not in (None, "success")
            parts = [{"type": "tool-result", "content": {"toolUseId": r.get("id"), "content": _output([{"functionResponse": r}]),
                                                         "isError": failed}} for r in results]
            if parts:
                self.messages.append({**base, "role": "tool", "textContent": "", "parts": parts})
        elif kind == "system":
            payload = record.get("systemPayload") if isinstance(record.get("systemPayload"), dict) else {}
            if record.get("subtype") == "custom_title" and isinstance(payload.get("customTitle"), str):
                self.title = payload["customTitle"].strip()[:TITLE_CHARS] or self.title
        else:
            return "neither a user, assistant, tool_result nor system record"
        return None


class Importer(WholeFileImporter):
    SOURCE = SOURCE
    NO_ID = "no record names this chat's session"
    reader = _Chat

    def _session(self, path, chat, before):
        valid = self.valid_messages(path, chat.id, chat.messages, before)
        for uuid, wire, usage in chat.responses:
            if wire["externalId"] not in valid or not wire.get("_new"):
                continue  # nothing holds its tokens, or a run before wrote them
            self.keep_response({
                "key": f"qwen:{uuid}", "session_external_id": chat.id, "message_external_id": wire["externalId"],
                "model": wire["model"], **_tokens(usage), "cache_write_1h_tokens": 0, "cost_usd": None,
                "created_at": wire["createdAt"] or chat.first or 0})
        self.sessions.append((path, chat))

    def session_wire(self, path, chat, stored):
        return {"externalId": chat.id, "source": SOURCE, "title": title_for(chat.title, chat.prompt, stored),
                "projectPath": chat.cwd, "projectName": Path(chat.cwd).name if chat.cwd else None, "model": chat.model,
                "createdAt": chat.first}


def run(user_id, files, dry_run=False, progress=None):
    """Import Qwen Code's chat ``files`` (from ``chats``; others the watcher may pass are passed
    over); ``progress(path)`` is called per file."""
    return import_files(Importer(user_id, dry_run), [p for p in map(Path, files) if _is_chat(p)], progress)
