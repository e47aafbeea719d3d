"""Import pi's sessions (the pi coding agent): ``~/.pi/agent/sessions/--<cwd>--/<ts>_<uuid>.jsonl``,
one file per session, a tree of entries (``id``, ``parentId``) in the order they were written:
a ``session`` header (``id``, ``cwd``, ``parentSession`` for a fork), ``model_change``,
``session_info`` (the name the user gave it), and ``message`` entries whose ``message.role`` is
``user``, ``assistant`` (content ``text`` / ``thinking`` / ``toolCall``, ``usage`` with pi's own
``cost``) or ``toolResult`` (the output of one call, by ``toolCallId``). Every branch of the
tree is kept: it is all history the user wrote.

The same session can also arrive through the pi sync plugin (pi-opensync-plugin), so the names
are the plugin's: the session is pi's id, and a message is ``<session>-<role>-<n>`` with ``n``
counting the prompts and answers in order (a tool's result is a part of the answer that called
it, as the plugin sends it). The plugin starts its count again after a resume (from every
message entry, results included), which the file does not record: its copies under other
numbers are recognised by role and text and dropped (``ingest.drop_client_copies``).

Usage: each answer's ``usage`` (``input`` without the cached tokens, ``cacheRead``,
``cacheWrite``, ``output``) and pi's own ``cost.total``, counted once by the API's response id
(a fork copies its parent's answers into its own file: they are still the same responses).
Records replace nothing, but a result completes an answer written before it, so a changed
file is read whole and only the messages its new lines touched are written again."""

import os
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, schemas
from . import import_files
from .bounds import cost as _cost
from .bounds import count_of as _count
from .whole_file import WholeFileImporter, title_for

SOURCE = "pi"
TITLE_CHARS = 100
_time = schemas.EpochMs()


def default_root():
    """$PI_CODING_AGENT_SESSION_DIR, else $PI_CODING_AGENT_DIR/sessions, else ~/.pi/agent/sessions."""
    if os.environ.get("PI_CODING_AGENT_SESSION_DIR"):
        return Path(os.environ["PI_CODING_AGENT_SESSION_DIR"]).expanduser()
    return Path(os.environ.get("PI_CODING_AGENT_DIR") or Path.home() / ".pi" / "agent").expanduser() / "sessions"


def sessions(roots):
    """Every session file under ``roots`` (folders or single files), in a stable order; regular files only."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    return found


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(c["text"] for c in content if isinstance(c, dict) and c.get("type") == "text"
                         and isinstance(c.get("text"), str))
    return ""


def _stamp(entry):
    """An entry's time (its ISO ``timestamp``, else its message's epoch ms), or None; a bad one raises."""
    stamp = entry.get("timestamp")
    if stamp is None and isinstance(entry.get("message"), dict):
        stamp = entry["message"].get("timestamp")
    return None if stamp is None else _time.deserialize(stamp)


class _Session:
    """One file read whole: the header, the messages in order, the usage of each answer."""

    def __init__(self):
        self.id = self.cwd = self.name = self.model = self.provider = self.prompt = None
        self.first = self.last = None
        self.messages = []  # wire dicts, each with "_end": the offset after the last line that shaped it
        self.calls = {}  # toolCallId -> the answer's wire dict
        self.responses = []  # (key, the answer's wire dict, usage)
        self.count = 0  # prompts and answers so far: the plugin's message number

    def saw(self, stamp):
        if stamp is not None:
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)

    def take(self, entry, end):
        """Take one entry; why it cannot be taken, or None."""
        kind = entry.get("type")
        try:
            stamp = _stamp(entry)
        except ValidationError:
            return f"timestamp {str(entry.get('timestamp'))[:40]!r} is not a date"
        if kind == "session":
            if not isinstance(entry.get("id"), str) or not entry["id"] or len(entry["id"]) > 200:
                return "a session header without a usable id"
            if self.id is not None and entry["id"] != self.id:
                return "a second session header"
            self.id = entry["id"]
            self.cwd = entry.get("cwd") if isinstance(entry.get("cwd"), str) and entry["cwd"] else self.cwd
            self.saw(stamp)
            return None
        if self.id is None:
            return "an entry before the session header that names its session"
        self.saw(stamp)
        if kind == "model_change":
            self.model = entry.get("modelId") if isinstance(entry.get("modelId"), str) and entry["modelId"] else self.model
            self.provider = entry.get("provider") if isinstance(entry.get("provider"), str) else self.provider
        elif kind == "session_info":
            self.name = entry["name"].strip() or None if isinstance(entry.get("name"), str) else self.name
        elif kind == "message":
            message = entry.get("message")
            if not isinstance(message, dict):
                return "a message entry without its message"
            return self._message(entry, message, stamp, end)
        return None  # thinking level, compaction, labels, extensions' entries: not conversation

    def _message(self, entry, message, stamp, end):
        role = message.get("role")
        if role == "user":
            text = _text(message.get("content"))
            self.count += 1
            self.prompt = self.prompt or (" ".join(text.split())[:TITLE_CHARS] or None)
            self.messages.append({"externalId": f"{self.id}-user-{self.count}", "role": "user", "textContent": text,
                                  "createdAt": stamp, "parts": [{"type": "text", "content": text}], "_end": end})
        elif role == "assistant":
            content = message.get("content") if isinstance(message.get("content"), list) else []
            parts = []
            for c in content:
                if not isinstance(c, dict):
                    continue
                if c.get("type") == "text" and isinstance(c.get("text"), str):
                    parts.append({"type": "text", "content": c["text"]})
                elif c.get("type") == "thinking" and isinstance(c.get("thinking"), str) and c["thinking"].strip():
                    parts.append({"type": "thinking", "content": c["thinking"]})
                elif c.get("type") == "toolCall":
                    parts.append({"type": "tool-call", "content": {"id": c.get("id"), "name": c.get("name"),
                                                                   "input": c.get("arguments")}})
            self.count += 1
            model = message.get("model") if isinstance(message.get("model"), str) and message["model"] else self.model
            self.model = model or self.model
            self.provider = message.get("provider") if isinstance(message.get("provider"), str) else self.provider
            wire = {"externalId": f"{self.id}-assistant-{self.count}", "role": "assistant",
                    "textContent": _text(content), "model": model, "createdAt": stamp, "parts": parts, "_end": end}
            self.messages.append(wire)
            for part in parts:
                if part["type"] == "tool-call" and isinstance(part["content"]["id"], str):
                    self.calls[part["content"]["id"]] = wire
            if isinstance(message.get("usage"), dict):
                response = message.get("responseId")
                key = f"pi:{response}" if isinstance(response, str) and response else f"pi:{self.id}:{entry.get('id')}"
                self.responses.append((key, wire, message["usage"]))
        elif role == "toolResult":
            answer = self.calls.get(message.get("toolCallId"))
            if answer is None:
                return "a tool result for no call before it"
            answer["parts"].append({"type": "tool-result", "content": {
                "toolUseId": message["toolCallId"], "content": _text(message.get("content")),
                "isError": message.get("isError") is True}})
            answer["_end"] = max(answer["_end"], end)
        return None  # bash executions, custom messages: not the conversation the model saw as such


def _usage(usage):
    """pi's usage as our four kinds (its input excludes the cached tokens), and its own cost."""
    recorded = usage.get("cost").get("total") if isinstance(usage.get("cost"), dict) else None
    return {"input_tokens": _count(usage, "input"), "cache_read_tokens": _count(usage, "cacheRead"),
            "cache_write_tokens": _count(usage, "cacheWrite"), "output_tokens": _count(usage, "output"),
            "cost_usd": _cost(recorded)}


class Importer(WholeFileImporter):
    SOURCE = SOURCE
    NO_ID = "no session header names this file's session"
    reader = _Session

    def _session(self, path, session, before):
        valid = self.valid_messages(path, session.id, session.messages, before)
        for key, wire, usage in session.responses:
            if wire["externalId"] not in valid:
                continue  # nothing would hold its tokens
            self.keep_response({"key": key, "session_external_id": session.id, "message_external_id": wire["externalId"],
                                "model": wire["model"], **_usage(usage), "cache_write_1h_tokens": 0,
                                "created_at": wire["createdAt"] or session.first or 0})
        self.sessions.append((path, session, valid))

    def session_wire(self, path, s, stored):
        return {"externalId": s.id, "source": SOURCE, "title": title_for(s.name, s.prompt, stored), "projectPath": s.cwd,
                "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model, "provider": s.provider,
                "createdAt": s.first}

    def written(self, sessions):
        """Drop the plugin's copies of these sessions' messages under other numbers."""
        for s, stored, valid in sessions:
            if stored is None:
                continue
            said = {(m["role"], m["textContent"] or "") for m in s.messages if m["externalId"] in valid}
            ingest.drop_client_copies(self.user_id, s.id, lambda external_id, role, text, valid=valid, said=said, sid=s.id: (
                external_id not in valid and ingest.plugin_numbered(sid, external_id)
                and (role == "tool" or (role, text or "") in said)))


def run(user_id, files, dry_run=False, progress=None):
    """Import pi's session ``files`` (from ``sessions``); ``progress(path)`` is called per file."""
    return import_files(Importer(user_id, dry_run), files, progress)
