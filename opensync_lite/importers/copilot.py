"""Import GitHub Copilot CLI's sessions: ``~/.copilot/session-state/<uuid>/events.jsonl`` (under
``$COPILOT_HOME`` when set), one folder per session, an append log of events ``{type, data, id,
timestamp, parentId}``; a resume appends to the same file. The events read here:

- ``session.start`` (``sessionId``, ``selectedModel``, ``context.cwd``), ``session.resume``
  (``selectedModel``, ``context.cwd`` again);
- ``user.message`` (``content`` as typed; ``transformedContent`` is what the model got, with the
  CLI's date prefix) and ``assistant.message`` (``content``, ``reasoningText``, ``toolRequests
  [{toolCallId, name, arguments}]``, ``model``, ``apiCallId``: the API's message id);
- ``tool.execution_complete`` (``toolCallId``, ``success``, ``result.content`` or ``error``): a
  part of the answer that asked for the call;
- ``session.usage_record``, one per API call, before the answer it produced: ``usage {model,
  inputTokens (the whole prompt: cached and cache-written tokens included), cacheReadTokens,
  cacheWriteTokens, outputTokens, cost, apiCallId, accounting.usageId}``. Its ``cost`` is
  premium requests (0 with a key of one's own), not dollars, so the tokens are priced here.

Each usage record is counted once, by its ``usageId``, on the answer with the same
``apiCallId`` (else the message before it). A result completes an answer written before it, so
a changed file is read whole and only the messages its new lines touched are written again.
The session's name is ``workspace.yaml``'s beside it when the user gave one, else the first
prompt."""

import os
from pathlib import Path

from marshmallow import ValidationError

from .. import schemas
from . import import_files
from .bounds import count_of as _count
from .whole_file import WholeFileImporter, title_for

SOURCE = "copilot-cli"
EVENTS = "events.jsonl"
TITLE_CHARS = 100
WORKSPACE_BYTES = 65536
_time = schemas.EpochMs()


def default_root():
    """$COPILOT_HOME/session-state (the CLI's own override of ~/.copilot), else ~/.copilot/session-state."""
    return Path(os.environ.get("COPILOT_HOME") or Path.home() / ".copilot").expanduser() / "session-state"


def sessions(roots):
    """Every session's events file under ``roots`` (folders or single files), in a stable order; regular files only."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        if root.is_file():
            found.append(root)
            continue
        # The CLI keeps each session's events one folder down (<uuid>/events.jsonl) beside
        # folders of its own (checkpoints, files): look there, not through them all, unless the
        # folder given is another one (~/.copilot) and holds none at that depth.
        events = [p for p in root.glob(f"*/{EVENTS}") if p.is_file()] or [p for p in root.rglob(EVENTS) if p.is_file()]
        found += sorted(events)
    return found


def _str(value):
    return value if isinstance(value, str) and value else None


def _given_name(path):
    """The name ``workspace.yaml`` beside the events holds when the user gave it (``user_named: true``), or None."""
    workspace = path.parent / "workspace.yaml"
    try:
        if not workspace.is_file():  # a fifo would block the read
            return None
        with open(workspace, "rb") as f:
            lines = f.read(WORKSPACE_BYTES).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    fields = dict(line.partition(": ")[::2] for line in lines if ": " in line and not line.startswith((" ", "-")))
    name = fields.get("name", "").strip()
    if fields.get("user_named", "").strip() != "true" or not name:
        return None
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":  # a quoted YAML scalar
        name = name[1:-1].replace("''", "'") if name[0] == "'" else name[1:-1]
    return name.strip() or None


class _Session:
    """One file read whole: the session, its messages in order, each API call's usage."""

    def __init__(self):
        self.id = self.cwd = self.model = self.provider = self.prompt = None
        self.first = self.last = None
        self.messages = []  # wire dicts, each with "_end": the offset after the last line that shaped it
        self.calls = {}  # toolCallId -> the answer's wire dict
        self.answers = {}  # apiCallId -> the first answer it produced
        self.usage = []  # (key, apiCallId, index of the messages before it, usage, time)

    def saw(self, stamp):
        if stamp is not None:
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)

    def take(self, event, end):
        """Take one event; why it cannot be taken, or None."""
        kind, data = event.get("type"), event.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            return "an event without its type and data"
        try:
            stamp = _time.deserialize(event["timestamp"]) if event.get("timestamp") is not None else None
        except ValidationError:
            return f"timestamp {str(event.get('timestamp'))[:40]!r} is not a date"
        if kind == "session.start":
            session_id = data.get("sessionId")
            if not isinstance(session_id, str) or not session_id or len(session_id) > 200 or "\x00" in session_id:
                return "a session.start without a usable sessionId"
            if self.id is not None and session_id != self.id:
                return "a second session.start for another session"
            self.id = session_id
        elif self.id is None:
            return "an event before the session.start that names its session"
        self.saw(stamp)
        if kind in ("session.start", "session.resume"):
            context = data.get("context") if isinstance(data.get("context"), dict) else {}
            self.cwd = _str(context.get("cwd")) or self.cwd
            self.model = _str(data.get("selectedModel")) or self.model
        elif kind == "user.message":
            text = data.get("content") if isinstance(data.get("content"), str) else ""
            self.prompt = self.prompt or (" ".join(text.split())[:TITLE_CHARS] or None)
            self.messages.append({"externalId": self._name(data, event), "role": "user", "textContent": text,
                                  "createdAt": stamp, "parts": [{"type": "text", "content": text}], "_end": end})
        elif kind == "assistant.message":
            self._answer(data, event, stamp, end)
        elif kind == "tool.execution_complete":
            answer = self.calls.get(data.get("toolCallId"))
            if answer is None:
                return "a tool result for no call before it"
            answer["parts"].append({"type": "tool-result", "content": {
                "toolUseId": data["toolCallId"], "content": _output(data), "isError": data.get("success") is not True}})
            answer["_end"] = max(answer["_end"], end)
        elif kind == "session.usage_record":
            usage = data.get("usage")
            if not isinstance(usage, dict):
                return "a usage record without its usage"
            accounting = usage.get("accounting") if isinstance(usage.get("accounting"), dict) else {}
            call = _str(usage.get("apiCallId"))
            key = _str(accounting.get("usageId")) or call or f"{self.id}:{event.get('id')}"
            self.provider = _str(usage.get("providerType")) or _str(usage.get("modelProvider")) or self.provider
            self.usage.append((f"copilot:{key}", call, len(self.messages), usage, stamp))
        return None  # turns, system prompts, hooks, skills, shutdown summaries: not the conversation as such

    def _name(self, data, event):
        return f"{self.id}:{_str(data.get('messageId')) or event.get('id')}"

    def _answer(self, data, event, stamp, end):
        parts = []
        if isinstance(data.get("reasoningText"), str) and data["reasoningText"].strip():
            parts.append({"type": "thinking", "content": data["reasoningText"]})
        text = data.get("content") if isinstance(data.get("content"), str) else ""
        if text:
            parts.append({"type": "text", "content": text})
        requests = data.get("toolRequests") if isinstance(data.get("toolRequests"), list) else []
        calls = [r for r in requests if isinstance(r, dict)]
        for r in calls:
            parts.append({"type": "tool-call", "content": {"id": r.get("toolCallId"), "name": r.get("name"),
                                                           "input": r.get("arguments")}})
        model = _str(data.get("model")) or self.model
        self.model = model
        wire = {"externalId": self._name(data, event), "role": "assistant", "textContent": text, "model": model,
                "createdAt": stamp, "parts": parts, "_end": end}
        self.messages.append(wire)
        for r in calls:
            if isinstance(r.get("toolCallId"), str):
                self.calls[r["toolCallId"]] = wire
        call = _str(data.get("apiCallId"))
        if call is not None:
            self.answers.setdefault(call, wire)

    def holder(self, call, before):
        """The message that holds one usage record's tokens: the answer of its API call, else
        the message before the record, else the first after it; None in a file without messages."""
        if call in self.answers:
            return self.answers[call]
        if self.messages:
            return self.messages[max(0, before - 1)]
        return None


def _output(data):
    """A tool's output: its result's content, else its error's message."""
    result, error = data.get("result"), data.get("error")
    if isinstance(result, dict) and isinstance(result.get("content"), str):
        return result["content"]
    if isinstance(result, str):
        return result
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else ""


def _usage(usage):
    """Copilot's usage as our four kinds: its input is the whole prompt, the cache's tokens in it."""
    whole, read, write = _count(usage, "inputTokens"), _count(usage, "cacheReadTokens"), _count(usage, "cacheWriteTokens")
    return {"input_tokens": max(0, whole - read - write), "cache_read_tokens": read, "cache_write_tokens": write,
            "output_tokens": _count(usage, "outputTokens"), "cost_usd": None}


class Importer(WholeFileImporter):
    SOURCE = SOURCE
    NO_ID = "no session.start names this file's session"
    reader = _Session

    def _session(self, path, session, before):
        valid = self.valid_messages(path, session.id, session.messages, before)
        for key, call, index, usage, stamp in session.usage:
            holder = session.holder(call, index)
            if holder is None or holder["externalId"] not in valid:
                continue  # nothing would hold its tokens
            response = {"key": key, "session_external_id": session.id, "message_external_id": holder["externalId"],
                        "model": _str(usage.get("model")) or holder.get("model") or session.model, **_usage(usage),
                        "cache_write_1h_tokens": 0, "created_at": stamp or holder["createdAt"] or session.first or 0}
            self.keep_response(response)
        self.sessions.append((path, session))

    def session_wire(self, path, s, stored):
        return {"externalId": s.id, "source": SOURCE, "title": title_for(_given_name(path), s.prompt, stored),
                "projectPath": s.cwd, "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model,
                "provider": s.provider, "createdAt": s.first}


def run(user_id, files, dry_run=False, progress=None):
    """Import Copilot CLI's ``events.jsonl`` ``files`` (from ``sessions``; other files, which
    the watcher may pass, are passed over); ``progress(path)`` is called per file."""
    events = [p for p in map(Path, files) if p.name == EVENTS]
    return import_files(Importer(user_id, dry_run), events, progress)
