"""Import the Codex CLI's rollouts: ``~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl``,
lines ``{timestamp, type, payload}``. ``session_meta`` (first) names the session (its ``id``,
``cwd``, ``git``); ``turn_context`` is the only place with the model; ``response_item`` s are the
conversation (messages, reasoning, function calls and their outputs), each kept as one message
in file order; a resumed session appends to the same file.

Usage: 0.171 writes a ``token_usage_record`` per response (by ``response_id``); 0.99 has none,
and its ``token_count`` events repeat a request's ``last_token_usage``, so a response there is
a step of the cumulative ``total_token_usage``. ``input_tokens`` include the cached ones; no cost
is written anywhere (the write path prices the tokens). A file's read position is kept just
after its last usage line, so a response's items and its usage are always read together.

Subagents (0.171's ``spawn_agent``) write a rollout of their own: its ``session_meta`` names
its thread (``id``) and the thread that spawned it (``parent_thread_id``, also under
``source.subagent.thread_spawn``), so it is a session of its own with that parent. One spawned
with ``fork_context`` (and ``codex fork``) starts with a copy of the parent's history: a second
``session_meta`` (the parent's) and the parent's lines, until the child's own thread speaks;
that copy is the parent's, already counted there, and is skipped."""

import json
import os
import stat as stats
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from . import FileState, Report, head_hash, import_files, finish_run, session_row
from .bounds import count_of as _count
from .claude_code import LineTooLong, read_lines

SOURCE = "codex-cli"
BATCH_LINES = 500
TITLE_CHARS = 100
ASSISTANT_ITEMS = ("message", "reasoning", "function_call", "custom_tool_call", "local_shell_call", "web_search_call")
_time = schemas.EpochMs()


def default_root():
    """$CODEX_HOME/sessions, else ~/.codex/sessions."""
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser() / "sessions"


def rollouts(roots):
    """Every rollout under ``roots`` (folders or single files), in a stable order; regular files only."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("rollout-*.jsonl") if p.is_file())
    return found


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str))
    return ""


def _is_prompt(text):
    """A prompt the user typed, not the context Codex injects as user messages
    (``<environment_context>``, ``<user_instructions>``, AGENTS.md)."""
    text = text.strip()
    return bool(text) and not text.startswith(("<", "# AGENTS.md instructions"))


def _arguments(value):
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _item(item):
    """(role, text, parts) of a response_item payload, or None for what is not conversation
    (developer instructions, injected context, compaction markers)."""
    kind = item.get("type")
    if kind == "message":
        role, text = item.get("role"), _text(item.get("content"))
        if role == "assistant":
            return "assistant", text, [{"type": "text", "content": text}]
        if role == "user" and _is_prompt(text):
            return "user", text, [{"type": "text", "content": text}]
        return None
    if kind == "reasoning":
        text = "\n".join(_text(item.get(k)) for k in ("summary", "content") if item.get(k)).strip()
        return "assistant", "", [{"type": "thinking", "content": text}]
    if kind in ("function_call", "custom_tool_call", "local_shell_call"):
        args = item.get("arguments") if kind == "function_call" else item.get("input", item.get("action"))
        name = item.get("name") or ("shell" if kind == "local_shell_call" else None)
        return "assistant", "", [{"type": "tool-call", "content": {
            "id": item.get("call_id"), "name": name, "input": _arguments(args)}}]
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        text = output if isinstance(output, str) else _text(output) or json.dumps(output)
        return "tool", "", [{"type": "tool-result", "content": {
            "toolUseId": item.get("call_id"), "content": text, "isError": False}}]
    return None


def _usage(usage):
    """Codex's usage as our four kinds: its input includes the cached tokens and the cache writes
    (every prompt token is one of fresh, read or written: ccusage 20 reads it so too); reasoning
    is inside output."""
    total_input, cached = _count(usage, "input_tokens"), _count(usage, "cached_input_tokens")
    cached = min(cached, total_input)
    written = min(_count(usage, "cache_write_input_tokens"), total_input - cached)
    return {"input_tokens": total_input - cached - written, "cache_read_tokens": cached,
            "cache_write_tokens": written, "output_tokens": _count(usage, "output_tokens")}


def _minus(total, before):
    """The step from one cumulative ``total_token_usage`` to the next (a total that went down
    started again from zero)."""
    if before is None or any(_count(total, k) < _count(before, k) for k in total):
        return total
    return {k: _count(total, k) - _count(before, k) for k in total if isinstance(total.get(k), int)}


def _parent(meta):
    """The thread that spawned this one (a subagent's rollout), or None."""
    spawn = meta.get("source")
    spawn = spawn.get("subagent") if isinstance(spawn, dict) else None
    spawn = spawn.get("thread_spawn") if isinstance(spawn, dict) else None
    for parent in (meta.get("parent_thread_id"), spawn.get("parent_thread_id") if isinstance(spawn, dict) else None):
        if isinstance(parent, str) and parent:
            return parent
    return None


class _Session:
    def __init__(self, external_id, stored):
        self.external_id, self.stored = external_id, stored
        self.first = self.last = None
        self.cwd = self.branch = self.prompt = None
        self.model = stored and stored["model"]  # until a turn_context says (a read from mid-turn has none)
        self.parent = None


class _File:
    """What reading one rollout needs to carry from line to line."""

    def __init__(self, path, session):
        self.path, self.session = path, session
        self.holder = None  # the latest assistant item: the message a usage line's tokens sit on
        self.records = False  # the 0.171 layout: token_usage_record lines, token_count ignored
        self.total = None  # the 0.99 layout: the latest cumulative total_token_usage
        self.prefix = None  # how far a previous run read (records and total before it are looked up once)
        self.copied = False  # inside a forked copy of another thread's history


def _before(path, offset):
    """(whether any token_usage_record, the last cumulative total) in the first ``offset``
    bytes: what a read from ``offset`` on needs of the lines before it."""
    records, total = False, None
    with open(path, "rb") as f:
        for _, end, line in read_lines(f, 0):
            if end > offset:
                break
            if isinstance(line, dict):
                payload = line.get("payload") if isinstance(line.get("payload"), dict) else {}
                records = records or line.get("type") == "token_usage_record"
                info = payload.get("info") if payload.get("type") == "token_count" else None
                if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
                    total = info["total_token_usage"]
    return records, total


class Importer:
    def __init__(self, user_id, dry_run=False):
        self.user_id, self.dry_run = user_id, dry_run
        self.report = Report()
        self.sessions, self.messages, self.responses, self.read_files = {}, [], {}, {}
        self.known = {}

    # --- reading ---

    def import_file(self, path):
        path = Path(path)
        st = os.stat(path)
        if not stats.S_ISREG(st.st_mode):
            self.report.problem(path, 0, "not a regular file")
            return
        state = self.known.get(str(path))
        offset = number = 0
        if state is not None:
            if (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
                self.report.files_unchanged += 1
                return
            if st.st_size >= state.offset and (not state.head or head_hash(path, state.offset) == state.head):
                offset, number = state.offset, state.lines
        self.report.files += 1
        current = _File(path, None)
        if offset:  # the session is named by the first line only
            current.prefix = offset
            with open(path, "rb") as f:
                first = next(read_lines(f, 0), None)
            meta = first and first[2]
            if isinstance(meta, dict) and meta.get("type") == "session_meta" and isinstance(meta.get("payload"), dict):
                self._line(current, 1, meta)
        safe = (offset, number)
        with open(path, "rb") as f:
            for number, offset_after, line in read_lines(f, offset, number):
                self.report.lines += 1
                if isinstance(line, Exception):
                    self.report.problem(path, number, line if isinstance(line, LineTooLong) else f"not JSON ({line})")
                elif not isinstance(line, dict) or not isinstance(line.get("payload"), dict):
                    self.report.problem(path, number, "not a JSON object with a payload")
                elif (why := self._line(current, number, line)) is not None:
                    self.report.problem(path, number, why)
                if isinstance(line, dict) and not current.copied and self._closes(line):
                    safe = (offset_after, number)
                if len(self.messages) >= BATCH_LINES:
                    self.flush()
        # Read again from after the last usage line: what follows is a response still open.
        self.read_files[str(path)] = FileState(st.st_size, st.st_mtime_ns, safe[0], safe[1], head_hash(path, safe[0]))

    @staticmethod
    def _closes(line):
        payload = line.get("payload") if isinstance(line.get("payload"), dict) else {}
        return line.get("type") == "token_usage_record" or (
            line.get("type") == "event_msg" and payload.get("type") in ("token_count", "task_complete"))

    def _meta(self, current, line):
        session_id = line["payload"].get("id") or line["payload"].get("session_id")
        if not isinstance(session_id, str) or not session_id:
            return "session_meta without an id"
        if current.session is not None:  # the first names the file's thread; a later one starts a copy
            current.copied = current.copied or session_id != current.session.external_id
            return None
        if session_id not in self.sessions:
            self.sessions[session_id] = _Session(session_id, queries.find_session(self.user_id, external_id=session_id))
        session = current.session = self.sessions[session_id]
        payload = line["payload"]
        session.cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else session.cwd
        git = payload.get("git") if isinstance(payload.get("git"), dict) else {}
        session.branch = git.get("branch") if isinstance(git.get("branch"), str) else session.branch
        parent = _parent(payload)
        session.parent = parent if parent != session_id else session.parent
        self._saw(session, line.get("timestamp"))
        return None

    @staticmethod
    def _saw(session, stamp):
        if stamp is not None:
            session.first = stamp if session.first is None else min(session.first, stamp)
            session.last = stamp if session.last is None else max(session.last, stamp)

    def _line(self, current, number, line):
        """Take one line; why it cannot be taken, or None."""
        stamp = line.get("timestamp")
        if stamp is not None:
            try:
                line["timestamp"] = _time.deserialize(stamp)
            except ValidationError:
                return f"timestamp {str(stamp)[:40]!r} is not a date"
        kind, payload = line.get("type"), line["payload"]
        if kind == "session_meta":
            return self._meta(current, line)
        session = current.session
        if session is None:
            return "a line before the session_meta that names its session"
        if current.copied:
            if payload.get("thread_id") != session.external_id:
                return None  # the parent's history, counted in the parent's own rollout
            current.copied = False  # the child's thread speaks: its own lines follow
        self._saw(session, line.get("timestamp"))
        if kind == "turn_context":
            if isinstance(payload.get("model"), str) and payload["model"]:
                session.model = payload["model"]
            session.cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else session.cwd
        elif kind == "response_item":
            return self._message(current, number, line)
        elif kind == "token_usage_record":
            current.records = True
            response_id, usage = payload.get("response_id"), payload.get("usage")
            if not isinstance(response_id, str) or not isinstance(usage, dict):
                return "a token_usage_record without response_id or usage"
            self._response(current, f"codex:{session.external_id}:{response_id}", _usage(usage), stamp=line.get("timestamp"))
        elif kind == "event_msg" and payload.get("type") == "token_count":
            return self._token_count(current, number, line)
        return None

    def _message(self, current, number, line):
        item = line["payload"]
        taken = _item(item)
        if taken is None:
            return None
        role, text, parts = taken
        session = current.session
        item_id = item.get("id") if isinstance(item.get("id"), str) and item["id"] else f"line:{number}"
        external_id = f"{session.external_id}:{item_id}"
        if role == "user" and session.prompt is None:
            session.prompt = " ".join(text.split())[:TITLE_CHARS]
        wire = {"sessionExternalId": session.external_id, "externalId": external_id, "source": SOURCE,
                "role": role, "textContent": text, "createdAt": line.get("timestamp"),
                "model": session.model if role == "assistant" else None, "parts": parts}
        try:
            data = schemas.message_in.load({k: v for k, v in wire.items() if v is not None})
        except ValidationError as err:
            return f"invalid message ({', '.join(map(str, err.messages))})"
        self.messages.append(data)
        if role == "assistant":
            current.holder = (external_id, data.get("created_at"))
        return None

    def _token_count(self, current, number, line):
        info = line["payload"].get("info")
        if not isinstance(info, dict) or not isinstance(info.get("total_token_usage"), dict):
            return None  # a rate-limit update only
        total = info["total_token_usage"]
        if not current.records and current.prefix is not None:  # read from mid-file: what came before?
            current.records, current.total = _before(current.path, current.prefix)
            current.prefix = None
        if current.records:
            current.total = total
            return None  # 0.171: the token_usage_records count each response
        step = _minus(total, current.total)
        current.total = total
        if any(_count(step, k) for k in ("input_tokens", "output_tokens")):
            when = line.get("timestamp") or f"line{number}"
            key = f"codex:{current.session.external_id}:total:{when}:{_count(total, 'total_tokens')}"
            self._response(current, key, _usage(step), stamp=line.get("timestamp"))
        return None

    def _response(self, current, key, tokens, stamp):
        holder, created = current.holder or (None, None)
        if holder is None:
            return  # usage before any answer (an aborted request): no message to hold it
        response = {"key": key, "session_external_id": current.session.external_id, "message_external_id": holder,
                    "model": current.session.model, **tokens, "cache_write_1h_tokens": 0,
                    "cost_usd": None, "created_at": created or stamp or 0}
        earlier = self.responses.get(key)
        if earlier is None or ingest._size(response) > ingest._size(earlier):
            self.responses[key] = response

    # --- writing ---

    def flush(self):
        self.report.messages += len(self.messages)
        if not self.dry_run and (self.messages or self.responses):
            ingest.ingest_import(self.user_id, [], self.messages, list(self.responses.values()))
        self.messages, self.responses = [], {}

    def finish(self):
        """Write what the run learnt about each session, then remember how far each file was read."""
        self.flush()
        rows = []
        for s in self.sessions.values():
            stored = s.stored
            title = s.prompt if stored is None or not stored["title"] else None
            wire = {"externalId": s.external_id, "source": SOURCE, "title": title, "projectPath": s.cwd,
                    "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model,
                    "parentExternalId": s.parent, "createdAt": s.first, "gitBranch": s.branch}
            data = session_row(self.report, wire, s.first, s.last, stored)
            if data is None:
                continue
            rows.append(data)
            if stored is not None:
                self.report.sessions_updated += 1
            else:
                self.report.sessions_created += 1
        return finish_run(self, rows)


def run(user_id, files, dry_run=False, progress=None):
    """Import the rollouts ``files`` (from ``rollouts``); ``progress(path)`` is called per file."""
    return import_files(Importer(user_id, dry_run), files, progress)