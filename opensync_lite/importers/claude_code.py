"""Import Claude Code's own transcripts: ``<projects>/<project>/<session>.jsonl``, one JSON
object a line, and subagents' ``<session>/subagents/agent-*.jsonl``.

The ids are the live plugin's (claude-code-sync): a session is its ``sessionId`` (not the file
name: a resumed session spans files), a message its line's ``uuid``. Tokens are counted the
way ccusage counts them: each response once, keyed on ``message.id`` + ``requestId`` across all
files, the largest copy winning; lines lacking either id count as they are."""

import json
import os
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from ..pricing import SYNTHETIC
from . import Report, file_state, save_file_state

SOURCE = "claude-code"
BATCH_LINES = 500
TITLE_CHARS = 100


def default_roots():
    """Where Claude Code keeps transcripts: $CLAUDE_CONFIG_DIR (comma-separated) or
    ~/.claude and ~/.config/claude, each with a projects/ folder."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    bases = [p for p in configured.split(",") if p.strip()] if configured else [
        Path.home() / ".claude", Path.home() / ".config" / "claude"]
    return [Path(b).expanduser() / "projects" for b in bases if (Path(b).expanduser() / "projects").is_dir()]


def transcripts(roots):
    """Every transcript under ``roots`` (folders or single files), in a stable order."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(root.rglob("*.jsonl"))
    return found


def read_lines(path, offset):
    """(line number, offset after the line, parsed object or the error) for each whole line
    from ``offset``; a last line without its newline is still being written and is left for
    the next run."""
    with open(path, "rb") as f:
        f.seek(offset)
        number = 0
        for raw in f:
            number += 1
            if not raw.endswith(b"\n"):
                return
            offset += len(raw)
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
    """A real user prompt: not injected text (isMeta), not a tool result, not a command echo."""
    if line.get("type") != "user" or line.get("isMeta") or message.get("role") != "user":
        return False
    content = message.get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return False
    text = _text(content).strip()
    return bool(text) and not text.startswith("<")


class _Session:
    """What a run learns about one session from its lines."""

    def __init__(self, external_id, parent=None, stored=None):
        self.external_id, self.parent, self.stored = external_id, parent, stored  # stored: before this run
        self.existed = stored is not None
        self.first = self.last = None
        self.cwd = self.model = self.title = self.prompt = None
        self.live_prompts = None  # {text: externalId} of prompts the live plugin sent
        self.live_ids = set()  # every externalId stored before this run (tool calls are theirs)

    def _load_live(self):
        if self.live_prompts is None:
            prefix = f"{self.external_id}-user-"
            messages = queries.session_messages(self.stored["id"]) if self.existed else []
            self.live_prompts = {m["text_content"]: m["external_id"] for m in messages
                                 if m["external_id"].startswith(prefix)}
            self.live_ids = {m["external_id"] for m in messages}

    def live_prompt(self, text):
        """The id under which claude-code-sync already stored this prompt, if it did: it names
        prompts `<session>-user-<time of the hook>`, which a transcript cannot reproduce, so
        the text decides (each live prompt is matched once)."""
        self._load_live()
        return self.live_prompts.pop(text, None)

    def live_tool(self, tool_use_id):
        """Whether the live plugin stored this tool call (and its result) as a message of its
        own, named by the tool_use id: the transcript's copy is then left out."""
        self._load_live()
        return tool_use_id in self.live_ids

    def saw(self, line, message):
        stamp = line.get("timestamp")
        if isinstance(stamp, str):
            self.first = min(self.first or stamp, stamp)
            self.last = max(self.last or stamp, stamp)
        self.cwd = self.cwd or line.get("cwd")
        model = message.get("model")
        if model and model != SYNTHETIC and not self.model:
            self.model = model
        if self.prompt is None and _is_prompt(line, message):
            self.prompt = " ".join(_text(message.get("content")).split())[:TITLE_CHARS]


class Importer:
    def __init__(self, user_id, dry_run=False, report=None):
        self.user_id, self.dry_run = user_id, dry_run
        self.report = report or Report()
        self.sessions = {}
        self.file_titles = {}  # a summary line names no session: its file's stem does
        self.messages, self.responses = [], {}
        self.read_files = []  # (path, size, mtime_ns, offset) to record once their lines are written

    # --- reading ---

    def import_file(self, path):
        path = Path(path)
        stat = path.stat()
        state = file_state(self.user_id, str(path))
        offset = 0
        if state is not None:
            size, mtime_ns, offset = state
            if (size, mtime_ns) == (stat.st_size, stat.st_mtime_ns) or stat.st_size == offset:
                self.report.files_unchanged += 1
                return
            if stat.st_size < offset:  # rewritten: read it again (what was stored stays, once)
                offset = 0
        self.report.files += 1
        for number, offset_after, line in read_lines(path, offset):
            self.report.lines += 1
            if isinstance(line, Exception):
                self.report.problem(path, number, f"not JSON ({line})")
            elif not isinstance(line, dict):
                self.report.problem(path, number, "not a JSON object")
            else:
                self._line(path, number, line)
            offset = offset_after
            if len(self.messages) >= BATCH_LINES:
                self.flush()
        self.read_files.append((str(path), stat.st_size, stat.st_mtime_ns, offset))

    def _session_of(self, path, line):
        session_id = line.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
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
        if kind in ("summary", "ai-title"):
            title = line.get("title") or line.get("summary") or line.get("aiTitle")
            if isinstance(title, str) and title.strip():
                session = self._session_of(path, line)
                title = " ".join(title.split())[:TITLE_CHARS]
                if session is not None:
                    session.title = title
                else:
                    self.file_titles[path.stem] = title
            return
        if kind not in ("user", "assistant"):
            return  # file snapshots, system notes, ...: nothing to keep
        session = self._session_of(path, line)
        message = line.get("message")
        if session is None or not isinstance(message, dict):
            self.report.problem(path, number, "a user or assistant line without sessionId or message")
            return
        session.saw(line, message)
        uuid = line.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            self.report.problem(path, number, "a message without uuid")
            return
        if _is_prompt(line, message):
            uuid = session.live_prompt(_text(message.get("content"))) or uuid
        content = message.get("content")
        if session.existed and isinstance(content, list):
            content = [b for b in content if not (isinstance(b, dict) and (
                (b.get("type") == "tool_use" and session.live_tool(b.get("id")))
                or (b.get("type") == "tool_result" and session.live_tool(b.get("tool_use_id")))))]
            if not content and not isinstance(message.get("usage"), dict):
                return  # all of it is already there, as the live plugin sent it
            message = {**message, "content": content}
        wire = {"sessionExternalId": session.external_id, "externalId": uuid, "source": SOURCE,
                "role": message.get("role") if message.get("role") in schemas.ROLES else kind,
                "textContent": _text(message.get("content")), "createdAt": line.get("timestamp"),
                "model": message.get("model") if message.get("model") != SYNTHETIC else None,
                "parts": _parts(message.get("content"))}
        try:
            data = schemas.message_in.load({k: v for k, v in wire.items() if v is not None})
        except ValidationError as err:
            self.report.problem(path, number, f"invalid message ({', '.join(map(str, err.messages))})")
            return
        self.messages.append(data)
        usage = message.get("usage")
        if kind == "assistant" and isinstance(usage, dict):
            self._response(path, number, line, message, usage, session, uuid, data.get("created_at"))

    def _response(self, path, number, line, message, usage, session, uuid, created_at):
        def count(name):
            value = usage.get(name) or 0
            return value if type(value) is int and 0 <= value <= schemas.MAX_COUNT else 0

        message_id, request_id = message.get("id"), line.get("requestId")
        key = f"{message_id}:{request_id}" if message_id and request_id else f"line:{uuid}"
        cost = line.get("costUSD")
        response = {
            "key": key, "session_external_id": session.external_id, "message_external_id": uuid,
            "model": message.get("model"), "input_tokens": count("input_tokens"), "output_tokens": count("output_tokens"),
            "cache_write_tokens": count("cache_creation_input_tokens"), "cache_read_tokens": count("cache_read_input_tokens"),
            "cost_usd": float(cost) if type(cost) in (int, float) and cost >= 0 else None, "created_at": created_at or 0,
        }
        earlier = self.responses.get(key)
        if earlier is None or ingest._size(response) > ingest._size(earlier):
            if earlier is not None:  # the tokens stay on the first copy's message
                response["session_external_id"] = earlier["session_external_id"]
                response["message_external_id"] = earlier["message_external_id"]
            self.responses[key] = response

    # --- writing ---

    def flush(self):
        """Write what was read so far; then remember how far each finished file was read."""
        self.report.messages += len(self.messages)
        if not self.dry_run:
            if self.messages or self.responses:
                ingest.ingest_import(self.user_id, [], self.messages, list(self.responses.values()))
            for state in self.read_files:
                save_file_state(self.user_id, *state)
        self.messages, self.responses, self.read_files = [], {}, []

    def finish(self):
        """Write what the run learnt about each session (its title, project, model, times)."""
        self.flush()
        rows = []
        for s in self.sessions.values():
            stored = s.stored
            title = s.title or self.file_titles.get(s.external_id) or (
                s.prompt if stored is None or not stored["title"] else None)
            wire = {"externalId": s.external_id, "source": SOURCE, "title": title, "projectPath": s.cwd,
                    "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model,
                    "parentExternalId": s.parent, "createdAt": s.first}
            try:
                data = schemas.session_in.load({k: v for k, v in wire.items() if v is not None})
            except ValidationError as err:
                self.report.problem(s.external_id, 0, f"invalid session ({', '.join(map(str, err.messages))})")
                continue
            first = data.get("created_at")
            if s.last and first is not None:
                start = first if stored is None else min(first, stored["created_at"])
                data["duration_ms"] = max(0, schemas.EpochMs().deserialize(s.last) - start)
            rows.append(data)
            if s.existed:
                self.report.sessions_updated += 1
            else:
                self.report.sessions_created += 1
        if rows and not self.dry_run:
            ingest.ingest_import(self.user_id, rows, [], [])
        return self.report


def run(user_id, files, dry_run=False, progress=None):
    """Import the transcripts ``files`` (from ``transcripts``); ``progress(path)`` is called
    per file."""
    importer = Importer(user_id, dry_run)
    for path in files:
        try:
            importer.import_file(path)
        except OSError as err:
            importer.report.problem(path, 0, f"unreadable ({err.strerror or err})")
        if progress:
            progress(path)
    return importer.finish()
