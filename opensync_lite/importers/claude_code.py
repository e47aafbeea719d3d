"""Import Claude Code's own transcripts: ``<projects>/<project>/<session>.jsonl``, one JSON
object a line, and subagents' ``<session>/subagents/agent-*.jsonl``.

The ids are the live plugin's (claude-code-sync): a session is its ``sessionId`` (not the file
name: a resumed session spans files), a message its line's ``uuid``. Claude Code writes one line
per content block, each repeating its response's usage; a response is counted once, keyed as
ccusage 20 keys it: ``message.id`` + ``requestId``, else ``message.id`` + ``requestRef`` (a
gateway may drop the request-id header), else ``message.id``. Its ``cost-state`` lines (the
session's running cost, subagents included) are Claude Code's own cost and win over any
estimate; 1-hour cache writes are kept apart from 5-minute ones, as they bill at 2x input."""

import json
import math
import os
import stat as stats
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from ..pricing import SYNTHETIC
from . import FileState, Report, identity, import_files, read_state, same_file, finish_run, session_row
from .bounds import cost as _cost, count_of as _count

SOURCE = "claude-code"
BATCH_LINES = 500
TITLE_CHARS = 100
MAX_LINE = 64 * 2**20  # bytes: a longer line (a runaway tool output, a symlink to a huge file) is skipped
TITLE_LINES = {"custom-title": ("customTitle",), "summary": ("summary",), "ai-title": ("aiTitle", "title")}
_time = schemas.EpochMs()


def default_roots(existing=True):
    """Where Claude Code keeps transcripts: $CLAUDE_CONFIG_DIR (comma-separated) or
    ~/.claude and ~/.config/claude, each with a projects/ folder. ``existing=False`` (for the
    watcher, which waits for a folder to appear): also the first one when none exists yet."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    bases = [p for p in configured.split(",") if p.strip()] if configured else [
        Path.home() / ".claude", Path.home() / ".config" / "claude"]
    roots = [Path(b).expanduser() / "projects" for b in bases]
    found = [r for r in roots if r.is_dir()]
    return found or ([] if existing else roots[:1])


def transcripts(roots):
    """Every transcript under ``roots`` (folders or single files), in a stable order. Only
    regular files: a FIFO or a device named *.jsonl would hang or never end a run."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    return found


class LineTooLong(ValueError):
    pass


def read_lines(f, offset, number=0):
    """(line number, offset after the line, parsed object or the error) for each whole line
    of the open file ``f`` from ``offset`` (which is after line ``number``). A last line
    without its newline is still being written and is left for the next run; a line over
    MAX_LINE bytes is passed over without being held in memory."""
    f.seek(offset)
    while True:
        raw = f.readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            length = len(raw)
            while not raw.endswith(b"\n"):
                raw = f.readline(2**20)
                if not raw:
                    return
                length += len(raw)
            number, offset = number + 1, offset + length
            yield number, offset, LineTooLong(f"a line of {length} bytes (more than {MAX_LINE})")
            continue
        if not raw.endswith(b"\n"):
            return
        number, offset = number + 1, offset + len(raw)
        text = raw.strip()
        if not text:
            continue
        try:
            yield number, offset, json.loads(text)
        except (ValueError, RecursionError) as err:
            yield number, offset, err


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _parts(content):
    """Content blocks as our parts: text, tool-call, tool-result, thinking."""
    if not isinstance(content, list):
        return None
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "content": block.get("text", "")})
        elif kind == "tool_use":
            parts.append({"type": "tool-call", "content": {
                "id": block.get("id"), "name": block.get("name"), "input": block.get("input")}})
        elif kind == "tool_result":
            parts.append({"type": "tool-result", "content": {
                "toolUseId": block.get("tool_use_id"), "content": block.get("content"),
                "isError": block.get("is_error", False)}})
        elif kind in ("thinking", "redacted_thinking"):
            parts.append({"type": "thinking", "content": block.get("thinking", "")})
        else:
            parts.append({"type": str(kind), "content": block})
    return parts


def _is_prompt(line, message):
    """A real user prompt: not injected text (isMeta), not a compaction's summary, not a tool
    result, not a command echo or a background task's notification (they start with a tag)."""
    if line.get("type") != "user" or line.get("isMeta") or line.get("isCompactSummary") or message.get("role") != "user":
        return False
    content = message.get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return False
    text = _text(content).strip()
    return bool(text) and not text.startswith("<")


def _invalid(line):
    """Why a line's common fields cannot be taken, or None. Checked before anything of the line
    is used, so one bad line is skipped and reported, never breaks the run's end."""
    stamp = line.get("timestamp")
    if stamp is not None:
        try:
            line["timestamp"] = _time.deserialize(stamp)
        except ValidationError:
            return f"timestamp {str(stamp)[:40]!r} is not a date"
    for name in ("cwd", "gitBranch", "sessionId", "uuid"):
        if line.get(name) is not None and not isinstance(line[name], str):
            return f"{name} is not a string"
    return None


# The session fields a line's values feed, with the bounds the sync routes hold them to: a
# value past them (a 5 000-character cwd, a NUL) is dropped from that line, and reported, so
# it cannot make the whole session's row invalid (and lose its title and project for good).
_PROJECT_PATH, _PROJECT_NAME = schemas.SessionIn().fields["project_path"], schemas.SessionIn().fields["project_name"]
_BRANCH = schemas.Text(256)  # kept in the session's extra: bounded as its other names are
_MODEL = schemas.SessionIn().fields["model"]
_TITLE = schemas.SessionIn().fields["title"]


def _unbounded(field, value):
    """Why ``value`` cannot be stored in ``field``, or None."""
    try:
        field.deserialize(value)
    except ValidationError as err:
        return " ".join(map(str, err.messages))
    return None


def _cwd_unbounded(cwd):
    return _unbounded(_PROJECT_PATH, cwd) or _unbounded(_PROJECT_NAME, Path(cwd).name)


class _Session:
    """What a run learns about one session from its lines."""

    def __init__(self, external_id, parent=None, stored=None):
        self.external_id, self.parent, self.stored = external_id, parent, stored  # stored: before this run
        self.existed = stored is not None
        self.first = self.last = None  # epoch ms
        self.cwd = self.branch = self.model = None
        self.titles = {}  # line type -> the latest title of that kind
        self.prompt = None  # (time, text) of the earliest real prompt
        self.live_prompts = None  # {text: externalId} of prompts the live plugin sent

    def live_prompt(self, text):
        """The id under which claude-code-sync already stored this prompt, if it did: it names
        prompts `<session>-user-<time of the hook>`, which a transcript cannot reproduce, so
        the text decides (each live prompt is matched once)."""
        if self.live_prompts is None:
            prefix = f"{self.external_id}{ingest.LIVE_PROMPT}"
            messages = queries.session_messages(self.stored["id"]) if self.existed else []
            self.live_prompts = {m["text_content"]: m["external_id"] for m in messages
                                 if m["external_id"].startswith(prefix)}
        return self.live_prompts.pop(text, None)

    def saw(self, line, message):
        """Take what the line tells of its session; returns what was dropped from it (a value
        past its bound), each as "name (why)", for the report."""
        dropped = []

        def bounded(name, value, why):
            if value and why:
                dropped.append(f"its {name} ({why})")
                return None
            return value

        stamp = line.get("timestamp")
        if stamp is not None:
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)
        cwd = line.get("cwd")
        if cwd and not self.cwd:  # every line repeats it: the first one taken is the session's
            cwd = bounded("cwd", cwd, _cwd_unbounded(cwd))
        self.cwd = self.cwd or cwd
        branch = line.get("gitBranch")
        if branch and branch != self.branch:
            branch = bounded("gitBranch", branch, _unbounded(_BRANCH, branch))
        self.branch = branch or self.branch
        model = message.get("model")
        if isinstance(model, str) and model != SYNTHETIC and not self.model:
            self.model = bounded("model", model, _unbounded(_MODEL, model))
        if _is_prompt(line, message):
            when = stamp if stamp is not None else math.inf
            if self.prompt is None or when < self.prompt[0]:
                title = " ".join(_text(message.get("content")).split())[:TITLE_CHARS]
                title = bounded("prompt as a title", title, _unbounded(_TITLE, title))
                if title:
                    self.prompt = (when, title)
        return dropped

    def title(self):
        """Claude Code's own title (a user's, then a summary, then its generated one) or the
        first prompt."""
        for kind in TITLE_LINES:
            if kind in self.titles:
                return self.titles[kind]
        return self.prompt and self.prompt[1]


class Importer:
    def __init__(self, user_id, dry_run=False, report=None):
        self.user_id, self.dry_run = user_id, dry_run
        self.report = report or Report()
        self.sessions = {}
        self.file_titles = {}  # a summary line names no session: its file's stem does
        self.messages, self.responses = [], {}
        self.read_files = {}  # path -> FileState, recorded once the run's sessions are written
        self.known = None  # path -> FileState of earlier runs, when read ahead (``run``)

    # --- reading ---

    def import_file(self, path):
        path = Path(path)
        st = os.stat(path)
        if not stats.S_ISREG(st.st_mode):
            self.report.problem(path, 0, "not a regular file")
            return
        state = self.known.get(str(path)) if self.known is not None else read_state(self.user_id, str(path))
        offset = number = 0
        if state is not None:
            if (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
                self.report.files_unchanged += 1
                return
            same = same_file(path, state, st)
            if same and st.st_size == state.offset:
                self.report.files_unchanged += 1
                return
            if same:
                offset, number = state.offset, state.lines
            # else: rewritten or replaced by another file: read it all again (what was stored stays, once)
        self.report.files += 1
        with open(path, "rb") as f:
            for number, offset_after, line in read_lines(f, offset, number):
                self.report.lines += 1
                if isinstance(line, Exception):
                    self.report.problem(path, number, line if isinstance(line, LineTooLong) else f"not JSON ({line})")
                elif not isinstance(line, dict):
                    self.report.problem(path, number, "not a JSON object")
                elif (why := _invalid(line)) is not None:
                    self.report.problem(path, number, why)
                else:
                    self._line(path, number, line)
                offset = offset_after
                if len(self.messages) >= BATCH_LINES:
                    self.flush()
            self.read_files[str(path)] = FileState(st.st_size, st.st_mtime_ns, offset, number, identity(path, offset, st))

    def _session_of(self, path, line):
        session_id = line.get("sessionId")
        if not session_id:
            return None
        if "subagents" in path.parts:  # <session>/subagents/agent-<id>.jsonl
            key, parent = f"{session_id}/{path.stem}", session_id
        elif line.get("isSidechain"):
            key, parent = f"{session_id}/agent-{line.get('agentId') or 'sidechain'}", session_id
        else:
            key, parent = session_id, None
        if key not in self.sessions:
            self.sessions[key] = _Session(key, parent, queries.find_session(self.user_id, external_id=key))
        return self.sessions[key]

    def _line(self, path, number, line):
        kind = line.get("type")
        if kind in TITLE_LINES:
            title = next((line[k] for k in TITLE_LINES[kind] if isinstance(line.get(k), str) and line[k].strip()), None)
            if title:
                title = " ".join(title.split())[:TITLE_CHARS]
                why = _unbounded(_TITLE, title)
                if why:
                    self.report.problem(path, number, f"its title ({why}) is left out")
                    return
                session = self._session_of(path, line)
                if session is not None:
                    session.titles[kind] = title
                else:
                    self.file_titles[path.stem] = title
            return
        if kind == "cost-state":
            self._cost_state(line)
            return
        if kind not in ("user", "assistant"):
            return  # attachments, file snapshots, hook notes, api-request shapes, ...: nothing to keep
        session = self._session_of(path, line)
        message = line.get("message")
        if session is None or not isinstance(message, dict):
            self.report.problem(path, number, "a user or assistant line without sessionId or message")
            return
        for dropped in session.saw(line, message):
            self.report.problem(path, number, f"{dropped} is left out; the rest of the line is kept")
        uuid = line.get("uuid")
        if not uuid:
            self.report.problem(path, number, "a message without uuid")
            return
        content = message.get("content")
        if _is_prompt(line, message):
            uuid = session.live_prompt(_text(content)) or uuid
        model = message.get("model")
        wire = {"sessionExternalId": session.external_id, "externalId": uuid, "source": SOURCE,
                "role": message.get("role") if message.get("role") in schemas.ROLES else kind,
                "textContent": _text(content), "createdAt": line.get("timestamp"),
                "model": model if isinstance(model, str) and model != SYNTHETIC else None,
                "parts": _parts(content), "isCompactSummary": line.get("isCompactSummary") or None}
        try:
            data = schemas.message_from_file.load({k: v for k, v in wire.items() if v is not None})
        except ValidationError as err:
            self.report.problem(path, number, f"invalid message ({', '.join(map(str, err.messages))})")
            return
        self.messages.append(data)
        usage = message.get("usage")
        if kind == "assistant" and isinstance(usage, dict):
            self._response(line, message, usage, session, uuid, data.get("created_at"))

    def _response(self, line, message, usage, session, uuid, created_at):
        message_id = message.get("id") if isinstance(message.get("id"), str) else None
        request = next((line[k] for k in ("requestId", "requestRef") if isinstance(line.get(k), str) and line[k]), None)
        key = (f"{message_id}:{request}" if request else message_id) if message_id else f"line:{uuid}"
        write = _count(usage, "cache_creation_input_tokens")
        split = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
        response = {
            "key": key, "session_external_id": session.external_id, "message_external_id": uuid,
            "model": message.get("model") if isinstance(message.get("model"), str) else None,
            "input_tokens": _count(usage, "input_tokens"), "output_tokens": _count(usage, "output_tokens"),
            "cache_write_tokens": write, "cache_read_tokens": _count(usage, "cache_read_input_tokens"),
            "cache_write_1h_tokens": min(write, _count(split, "ephemeral_1h_input_tokens")),
            "cost_usd": _cost(line.get("costUSD")), "created_at": created_at or 0,
        }
        earlier = self.responses.get(key)
        if earlier is None or ingest._size(response) > ingest._size(earlier):
            if earlier is not None:  # the tokens stay on the first copy's message
                response["session_external_id"] = earlier["session_external_id"]
                response["message_external_id"] = earlier["message_external_id"]
            self.responses[key] = response

    def _cost_state(self, line):
        """Claude Code's running total of the session's cost (its subagents' included): the
        largest one read is the latest. One with a model Claude Code could not price is left
        out, so the responses are priced instead."""
        session_id, cost = line.get("sessionId"), _cost(line.get("totalCostUSD"))
        if not session_id or cost is None or line.get("hasUnknownModelCost"):
            return
        key = f"{ingest.COST_STATE}{session_id}"
        earlier = self.responses.get(key)
        if earlier is None or cost > earlier["cost_usd"]:
            self.responses[key] = {
                "key": key, "session_external_id": session_id, "message_external_id": "", "model": None,
                **{name: 0 for name in (*ingest.TOKEN_KINDS, "cache_write_1h_tokens")}, "cost_usd": cost, "created_at": 0}

    # --- writing ---

    def flush(self):
        """Write the messages and responses read so far."""
        self.report.messages += len(self.messages)
        if not self.dry_run and (self.messages or self.responses):
            ingest.ingest_import(self.user_id, [], self.messages, list(self.responses.values()))
        self.messages, self.responses = [], {}

    def finish(self):
        """Write what the run learnt about each session (its title, project, model, times), then
        remember how far each file was read: a run that fails before is read again."""
        self.flush()
        rows = []
        for s in self.sessions.values():
            stored = s.stored
            title = s.titles and s.title() or self.file_titles.get(s.external_id) or (
                s.title() if stored is None or not stored["title"] or ingest.cut_from(stored["title"], s.title()) else None)
            wire = {"externalId": s.external_id, "source": SOURCE, "title": title, "projectPath": s.cwd,
                    "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model,
                    "parentExternalId": s.parent, "createdAt": s.first, "gitBranch": s.branch}
            data = session_row(self.report, wire, s.first, s.last, stored)
            if data is None:
                continue
            rows.append(data)
            if s.existed:
                self.report.sessions_updated += 1
            else:
                self.report.sessions_created += 1
        return finish_run(self, rows)


def run(user_id, files, dry_run=False, progress=None):
    """Import the transcripts ``files`` (from ``transcripts``); ``progress(path)`` is called
    per file."""
    return import_files(Importer(user_id, dry_run), files, progress)