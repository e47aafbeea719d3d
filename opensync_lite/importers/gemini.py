"""Import the Gemini CLI's chats: ``~/.gemini/tmp/<project>/chats/session-<ts>-<id8>.jsonl``
(0.61), an append log, and the older one-document ``session-….json`` (0.30).

The log's records, read as the CLI itself reads them: a metadata record (``sessionId``,
``projectHash``, ``startTime``, ``lastUpdated``; written again by every resume), message records
with an ``id`` (a later record with the same id replaces the earlier one in place: an answer is
written first bare, then again with its ``toolCalls``), ``{"$set": {…}}`` patches (a
``$set.messages`` replaces the whole list, as a resume does, with the messages in the API's
shape: no tokens, no toolCalls) and ``{"$rewindTo": id}`` (that message and all after it are
gone). A message a ``$set.messages`` repeats keeps the fuller record written for it before.

Because records are replaced, a read from where the last run stopped cannot tell what is
current: a changed file is read whole (each line bounded by ``MAX_LINE``, a ``.json`` by it
too) and the write path's upserts make that idempotent: a message is keyed by its id, an
answer's usage by ``gemini:<session>:<message id>`` (the largest copy of a key is kept, so the
twice-written answer counts once). The project is the folder's root, from ``.project_root``
beside ``chats/`` or ``~/.gemini/projects.json`` (root -> short name). No cost is written
anywhere: the write path prices the tokens."""

import json
import os
import stat as stats
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from . import FileState, Report, import_files, finish_run, session_row
from .bounds import count_of as _count
from .claude_code import MAX_LINE, LineTooLong, read_lines

SOURCE = "gemini-cli"
TITLE_CHARS = 100
BATCH_MESSAGES = 500  # written a batch of whole files at a time (a file's records only make sense together)
IGNORED_PROMPTS = ("/", "?", "<session_context>", "<hook_context>")  # the CLI's own isIgnoredUserContent
_time = schemas.EpochMs()


def default_root():
    """$GEMINI_CLI_HOME/.gemini/tmp (where the CLI keeps its home when set), else ~/.gemini/tmp."""
    return Path(os.environ.get("GEMINI_CLI_HOME") or Path.home()).expanduser() / ".gemini" / "tmp"


def _is_chat(path):
    return path.name.startswith("session-") and path.suffix in (".jsonl", ".json") and path.parent.name == "chats"


def chats(roots):
    """Every chat file under ``roots`` (folders or single files), in a stable order; regular files only."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("session-*.json*") if p.is_file() and _is_chat(p))
    return found


def _project_root(path, names):
    """The folder a chat was worked in: ``.project_root`` beside ``chats/``, else projects.json's entry."""
    folder = path.parent.parent
    marker_file = folder / ".project_root"
    try:
        if not marker_file.is_file():  # a fifo would block the read
            raise FileNotFoundError(marker_file)
        with open(marker_file, "rb") as f:  # a few bytes: a link may point at anything
            marker = f.read(4097).decode("utf-8", "replace").strip()
        if marker.startswith("/") and len(marker) <= 4096 and "\n" not in marker:
            return marker
    except OSError:
        pass
    return names.get(folder.name)


def _projects(tmp):
    """{short name: root} from the projects.json beside ``tmp``."""
    if not (tmp.parent / "projects.json").is_file():
        return {}
    try:
        with open(tmp.parent / "projects.json", "rb") as f:
            data = json.loads(f.read(MAX_LINE))
    except (OSError, ValueError, RecursionError):
        return {}
    projects = data.get("projects") if isinstance(data, dict) else None
    if not isinstance(projects, dict):
        return {}
    return {name: root for root, name in projects.items() if isinstance(name, str) and isinstance(root, str)}


def _texts(content):
    """(text, thoughts, function calls, function responses) of a record's ``content``: a string,
    or a list of API parts."""
    if isinstance(content, str):
        return content, [], [], []
    text, thoughts, calls, responses = [], [], [], []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(part["functionCall"])
        elif isinstance(part.get("functionResponse"), dict):
            responses.append(part["functionResponse"])
    return "".join(text), thoughts, calls, responses


def _output(result):
    """A tool result's text: the function responses' output (or error), else as recorded."""
    if isinstance(result, str):
        return result
    out = []
    for part in result if isinstance(result, list) else [result]:
        response = part.get("functionResponse") if isinstance(part, dict) else None
        body = response.get("response") if isinstance(response, dict) else None
        if isinstance(body, dict) and isinstance(body.get("output", body.get("error")), str):
            out.append(body.get("output", body.get("error")))
        elif part is not None:
            out.append(part if isinstance(part, str) else json.dumps(part))
    return "\n".join(out)


def _thought(item):
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return ""
    subject, description = item.get("subject"), item.get("description")
    return " ".join(s for s in (subject if isinstance(subject, str) else "",
                                description if isinstance(description, str) else "") if s)


def _tokens(tokens):
    """Gemini's usage as our four kinds. Its ``input`` includes the cached tokens; ``tool`` (the
    tool-use prompt) is billed as input besides it. Thoughts are billed at the output rate and
    are not inside ``output``: stored as output. Gemini has no cache write."""
    total_input, cached = _count(tokens, "input"), _count(tokens, "cached")
    return {"input_tokens": max(0, total_input - cached) + _count(tokens, "tool"),
            "cache_read_tokens": min(cached, total_input), "cache_write_tokens": 0,
            "output_tokens": _count(tokens, "output") + _count(tokens, "thoughts")}


def _one_per_session(sessions):
    """A resume in a later minute starts a second file for the same session (its metadata and
    the CLI's context only, while the turns go on in the first): one row per session, over the
    span of all its files, titled by its first prompt, with the model it used last."""
    merged = {}
    for path, chat, prompt, model in sorted(sessions, key=lambda s: s[1].first or 0):
        if chat.session_id not in merged:
            merged[chat.session_id] = [path, chat, prompt, model]
            continue
        held = merged[chat.session_id]
        span = _Chat()
        span.session_id = chat.session_id
        for stamp in (held[1].first, held[1].last, chat.first, chat.last):
            if stamp is not None:
                span.first = stamp if span.first is None else min(span.first, stamp)
                span.last = stamp if span.last is None else max(span.last, stamp)
        held[1], held[2], held[3] = span, held[2] or prompt, model or held[3]
    return [tuple(entry) for entry in merged.values()]


class _Chat:
    """One file's conversation as the CLI would load it: records by id, in order."""

    def __init__(self):
        self.session_id = self.project_hash = None
        self.first = self.last = None
        self.records = {}  # id -> record (dict order is the conversation's order)
        self.full = {}  # id -> the latest record written on its own line (with tokens, toolCalls), never cleared

    def saw(self, stamp):
        try:
            when = _time.deserialize(stamp) if isinstance(stamp, str) else None
        except ValidationError:
            return
        if when is not None:
            self.first = when if self.first is None else min(self.first, when)
            self.last = when if self.last is None else max(self.last, when)

    def metadata(self, record):
        if isinstance(record.get("sessionId"), str) and record["sessionId"]:
            self.session_id = self.session_id or record["sessionId"]
        if isinstance(record.get("projectHash"), str):
            self.project_hash = record["projectHash"]
        for key in ("startTime", "lastUpdated"):
            self.saw(record.get(key))

    def message(self, record):
        self.records[record["id"]] = self.full[record["id"]] = record  # replaced in place, as a Map.set
        self.saw(record.get("timestamp"))

    def replace(self, messages):
        """A ``$set.messages``: the list is now these, each keeping a fuller record written before."""
        self.records = {}
        for m in messages:
            if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]:
                self.records[m["id"]] = self.full.get(m["id"], m)

    def rewind(self, message_id):
        ids = list(self.records)
        cut = ids.index(message_id) if message_id in ids else 0
        for gone in ids[cut:]:
            del self.records[gone]

    def take(self, record):
        """Apply one record; why it cannot be taken, or None."""
        if not isinstance(record, dict):
            return "not a JSON object"
        if isinstance(record.get("$rewindTo"), str):
            self.rewind(record["$rewindTo"])
        elif isinstance(record.get("id"), str):
            if not record["id"]:
                return "a message with an empty id"
            self.message(record)
        elif isinstance(record.get("$set"), dict):
            patch = record["$set"]
            if isinstance(patch.get("messages"), list):
                self.replace(patch["messages"])
            self.metadata(patch)
        elif isinstance(record.get("sessionId"), str):
            self.metadata(record)
            if isinstance(record.get("messages"), list):  # the one-document .json
                for m in record["messages"]:
                    if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]:
                        self.message(m)
        else:
            return "neither a message, a $set, a $rewindTo nor session metadata"
        return None


class Importer:
    def __init__(self, user_id, dry_run=False):
        self.user_id, self.dry_run = user_id, dry_run
        self.report = Report()
        self.sessions, self.messages, self.responses, self.read_files = [], [], {}, {}
        self.known, self.projects = {}, {}

    def import_file(self, path):
        self._read_file(Path(path))
        if len(self.messages) >= BATCH_MESSAGES:
            self.flush()

    def _read_file(self, path):
        st = os.stat(path)
        if not stats.S_ISREG(st.st_mode):
            self.report.problem(path, 0, "not a regular file")
            return
        state = self.known.get(str(path))
        if state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
            self.report.files_unchanged += 1
            return
        self.report.files += 1
        chat, lines = _Chat(), 0
        if path.suffix == ".json":
            lines = 1
            self.report.lines += 1
            if st.st_size > MAX_LINE:
                self.report.problem(path, 1, f"a document of {st.st_size} bytes (more than {MAX_LINE})")
                return
            try:
                document = json.loads(path.read_bytes())
            except (ValueError, RecursionError) as err:
                self.report.problem(path, 1, f"not JSON ({err})")
                return
            if (why := chat.take(document)) is not None:
                self.report.problem(path, 1, why)
                return
        else:
            with open(path, "rb") as f:
                for lines, _, record in read_lines(f, 0):
                    self.report.lines += 1
                    if isinstance(record, Exception):
                        self.report.problem(path, lines, record if isinstance(record, LineTooLong) else f"not JSON ({record})")
                    elif (why := chat.take(record)) is not None:
                        self.report.problem(path, lines, why)
        if chat.session_id is None:
            self.report.problem(path, 0, "no session metadata names this chat's session")
        elif len(chat.session_id) > 256 or "\x00" in chat.session_id:  # what schemas.session_in takes
            self.report.problem(path, 0, "a sessionId longer than 256 characters or with a NUL")
        else:
            self._session(path, chat)
        # A re-run reads a changed file whole again (records replace each other); this only tells unchanged.
        self.read_files[str(path)] = FileState(st.st_size, st.st_mtime_ns, st.st_size, lines)

    def _session(self, path, chat):
        session_id = chat.session_id
        prompt = model = None
        answered = set()  # tool calls whose result is stored (the CLI writes it twice more as user parts)
        for record in chat.records.values():
            kind, stamp = record.get("type"), record.get("timestamp")
            text, thoughts, calls, results = _texts(record.get("content"))
            base = {"sessionExternalId": session_id, "source": SOURCE, "createdAt": stamp}
            if kind == "user" and results and not text.strip():
                fresh = [r for r in results if r.get("id") not in answered]
                answered.update(r.get("id") for r in fresh)
                parts = [{"type": "tool-result", "content": {"toolUseId": r.get("id"), "content": _output([{"functionResponse": r}]),
                                                             "isError": False}} for r in fresh]
                if parts:
                    self._message(path, {**base, "externalId": f"{session_id}:{record['id']}", "role": "tool",
                                         "textContent": "", "parts": parts})
            elif kind == "user":
                if not text.strip() or text.strip().startswith(IGNORED_PROMPTS):
                    continue  # the context the CLI sends as a user turn, a slash command
                prompt = prompt or " ".join(text.split())[:TITLE_CHARS]
                self._message(path, {**base, "externalId": f"{session_id}:{record['id']}", "role": "user",
                                     "textContent": text, "parts": [{"type": "text", "content": text}]})
            elif kind == "gemini":
                model = record.get("model") if isinstance(record.get("model"), str) and record["model"] else model
                self._answer(path, session_id, record, base, model, text, thoughts, calls, answered)
        self.sessions.append((path, chat, prompt, model))

    def _answer(self, path, session_id, record, base, model, text, thoughts, calls, answered):
        thoughts = thoughts + [_thought(t) for t in record.get("thoughts") or () if isinstance(record.get("thoughts"), list)]
        tool_calls = [c for c in record.get("toolCalls") or () if isinstance(c, dict)] if isinstance(record.get("toolCalls"), list) else []
        parts = [{"type": "thinking", "content": "\n".join(t for t in thoughts if t)}] if any(thoughts) else []
        parts += [{"type": "text", "content": text}] if text else []
        for call in tool_calls or calls:
            parts.append({"type": "tool-call", "content": {"id": call.get("id"), "name": call.get("name"), "input": call.get("args")}})
        external_id = f"{session_id}:{record['id']}"
        held = parts and self._message(path, {**base, "externalId": external_id, "role": "assistant",
                                              "textContent": text, "model": model, "parts": parts})
        results = [c for c in tool_calls if "result" in c and c.get("id") not in answered]
        if results:
            answered.update(c.get("id") for c in results)
            self._message(path, {**base, "externalId": f"{external_id}:result", "role": "tool", "textContent": "",
                                 "parts": [{"type": "tool-result", "content": {
                                     "toolUseId": c.get("id"), "content": _output(c["result"]),
                                     "isError": c.get("status") not in (None, "success")}} for c in results]})
        if held and isinstance(record.get("tokens"), dict):  # usage needs the message that holds it
            tokens = _tokens(record["tokens"])
            try:
                created = _time.deserialize(record.get("timestamp")) if record.get("timestamp") else 0
            except ValidationError:
                created = 0
            key = f"gemini:{session_id}:{record['id']}"
            response = {"key": key, "session_external_id": session_id, "message_external_id": external_id,
                        "model": model, **tokens, "cache_write_1h_tokens": 0, "cost_usd": None, "created_at": created}
            earlier = self.responses.get(key)
            if earlier is None or ingest._size(response) > ingest._size(earlier):
                self.responses[key] = response

    def _message(self, path, wire):
        """Queue one message; whether it was valid."""
        try:
            data = schemas.message_in.load({k: v for k, v in wire.items() if v is not None})
        except ValidationError as err:
            self.report.problem(path, 0, f"invalid message {wire['externalId']} ({', '.join(map(str, err.messages))})")
            return False
        self.messages.append(data)
        return True

    def flush(self):
        """Write the sessions read so far, their messages and their usage, in one transaction."""
        rows = []
        for path, chat, prompt, model in _one_per_session(self.sessions):
            stored = queries.find_session(self.user_id, external_id=chat.session_id)
            tmp = path.parent.parent.parent
            if str(tmp) not in self.projects:
                self.projects[str(tmp)] = _projects(tmp)
            root = _project_root(path, self.projects[str(tmp)])
            wire = {"externalId": chat.session_id, "source": SOURCE, "projectPath": root,
                    "projectName": Path(root).name if root else None, "model": model, "createdAt": chat.first,
                    "title": prompt if stored is None or not stored["title"] else None}
            data = session_row(self.report, wire, chat.first, chat.last, stored, where=path)
            if data is None:
                continue
            rows.append(data)
            if stored is not None:
                self.report.sessions_updated += 1
            else:
                self.report.sessions_created += 1
        self.report.messages += len(self.messages)
        if not self.dry_run and (rows or self.messages):
            ingest.ingest_import(self.user_id, rows, self.messages, list(self.responses.values()))
        self.sessions, self.messages, self.responses = [], [], {}

    def finish(self):
        """Write what is left, then remember each file as read."""
        self.flush()
        return finish_run(self)


def run(user_id, files, dry_run=False, progress=None):
    """Import the chats ``files`` (from ``chats``; files not named ``session-*``, which the
    watcher may pass, are passed over); ``progress(path)`` is called per file."""
    chats_only = [p for p in map(Path, files) if p.name.startswith("session-")]
    return import_files(Importer(user_id, dry_run), chats_only, progress)