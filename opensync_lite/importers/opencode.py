"""Import OpenCode's history: the SQLite store of OpenCode 1.2 and later (``opencode.db``:
tables ``session``, ``message`` and ``part``, JSON in ``data``) and the older folders
(``storage/session/<project>/<id>.json``, ``storage/message/<session>/<id>.json``,
``storage/part/<message>/<id>.json``). A session found in both is one session.

Ids are OpenCode's own (``ses_…``, ``msg_…``), as the opencode plugin sends them. Tokens are the
sum of the ``step-finish`` parts (an assistant message's own ``tokens`` holds only its last
step); prompt = input + cache read + cache write, completion = output + reasoning; the cost
OpenCode recorded is kept. Each assistant message's usage is one counted response
(``<source>:<message id>``), so a plugin's resend of a message the file gave keeps the file's.

Kilo (an OpenCode fork) writes the same database as ``kilo.db`` under ``$XDG_DATA_HOME/kilo``:
the same importer reads it as source ``kilo``."""

import json
import os
import sqlite3
import stat
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from . import Report, bounds, file_state, save_file_state

SOURCE = "opencode"
# source: (its data folder under $XDG_DATA_HOME, its database there)
AGENTS = {"opencode": ("opencode", "opencode.db"), "kilo": ("kilo", "kilo.db")}


def default_root(source=SOURCE):
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / AGENTS[source][0]


MAX_FILE = 64 * 2**20  # bytes: OpenCode's JSON files are kilobytes; a larger one is not read at all


def _object(data, what):
    """The JSON object held in ``data`` (text or bytes); ValueError saying why not."""
    try:
        value = json.loads(data)
    except RecursionError:  # the C parser recurses once per level: a deep file would end the run
        raise ValueError("JSON nested too deeply") from None
    except TypeError:  # a database column holding a number
        raise ValueError(f"{type(data).__name__} where JSON text belongs") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _json_file(path, what):
    """The JSON object in the file at ``path``. Opened without blocking, so a FIFO named *.json
    is refused rather than waited on; a device or a file past MAX_FILE is never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ValueError(f"larger than {MAX_FILE // 2**20} MiB")
    return _object(data, what)


def _is_id(value):
    return isinstance(value, str) and value != ""


# --- the two layouts, one session at a time: {"info": {...}, "messages": {id: {"info", "parts"}}} ---

class Folders:
    """storage/session/<project>/<id>.json, storage/message/<session>/…, storage/part/<message>/…"""

    def __init__(self, root, report):
        self.storage, self.report = Path(root) / "storage", report
        self.ids = {}
        for path in sorted((self.storage / "session").glob("*/*.json")):
            self.ids[path.stem] = path

    def _read(self, path, what):
        """The object in ``path``, or None once its problem is reported."""
        try:
            return _json_file(path, what)
        except (OSError, ValueError) as err:
            self.report.problem(path, 0, f"unreadable {what} ({err})")
            return None

    def session(self, session_id):
        path = self.ids.get(session_id)
        if path is None:
            return None
        info = self._read(path, "session")
        if info is None:
            return None
        if info.setdefault("id", session_id) != session_id:  # OpenCode names the file by the id
            self.report.problem(path, 0, f"session id {info['id']!r} is not the file's name")
            return None
        session = {"info": info, "messages": {}}
        for message_path in sorted((self.storage / "message" / session_id).glob("*.json")):
            info = self._read(message_path, "message")
            if info is None:
                continue
            if not _is_id(info.get("id")):
                self.report.problem(message_path, 0, f"message id {info.get('id')!r} is not a string")
                continue
            parts = [self._read(p, "part") for p in sorted((self.storage / "part" / info["id"]).glob("*.json"))]
            session["messages"][info["id"]] = {"info": info, "parts": [p for p in parts if p is not None]}
        return session


class Database:
    """opencode.db (OpenCode >= 1.2), opened read-only."""

    def __init__(self, path, report):
        self.path, self.report, self.conn, self.ids = path, report, None, {}
        try:
            self.conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
            self.conn.row_factory = sqlite3.Row
            for (session_id,) in self.conn.execute("SELECT id FROM session"):
                if _is_id(session_id):
                    self.ids[session_id] = session_id
                else:  # SQLite keeps any type in any column
                    report.problem(path, 0, f"session id {session_id!r} is not a string")
        except sqlite3.Error as err:
            report.problem(path, 0, f"unreadable database ({err})")

    def _rows(self, session_id, columns, table, what):
        """(id, row, data object) for each row of ``table`` in ``session_id`` whose id and data
        are sound; the others are reported. A ``data`` past MAX_FILE is never fetched."""
        sql = (f"SELECT {columns}, length(CAST(data AS BLOB)) AS size, "
               f"CASE WHEN length(CAST(data AS BLOB)) <= {MAX_FILE} THEN data END AS data "
               f"FROM {table} WHERE session_id = ? ORDER BY time_created, id")
        for row in self.conn.execute(sql, (session_id,)):
            try:
                if not _is_id(row["id"]):
                    raise ValueError(f"id {row['id']!r} is not a string")
                if (row["size"] or 0) > MAX_FILE:
                    raise ValueError(f"data larger than {MAX_FILE // 2**20} MiB")
                yield row["id"], row, _object(row["data"], what)
            except ValueError as err:
                self.report.problem(self.path, 0, f"session {session_id}: {what} {row['id']!r} skipped ({err})")

    def session(self, session_id):
        if session_id not in self.ids:
            return None
        try:
            info = dict(self.conn.execute("SELECT * FROM session WHERE id = ?", (session_id,)).fetchone())
            if info.get("data"):
                info = {**info, **_object(info["data"], "session data"), "id": session_id}
            info.setdefault("parentID", info.get("parent_id"))
            info.setdefault("time", {"created": info.get("time_created"), "updated": info.get("time_updated")})
            session = {"info": info, "messages": {}}
            for message_id, _, data in self._rows(session_id, "id", "message", "message"):
                session["messages"][message_id] = {"info": {**data, "id": message_id}, "parts": []}
            for part_id, row, data in self._rows(session_id, "id, message_id", "part", "part"):
                message = session["messages"].get(row["message_id"])
                if message is not None:
                    message["parts"].append({**data, "id": part_id})
            return session
        except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
            self.report.problem(self.path, 0, f"session {session_id}: unexpected layout ({err})")
            return None

    def close(self):
        if self.conn is not None:
            self.conn.close()


def _merged(sources, session_id):
    """The session as every layout holding it has it: one session, every message once."""
    found = [s for s in (source.session(session_id) for source in sources) if s is not None]
    if not found:
        return None
    merged = found[0]
    for other in found[1:]:
        merged["info"] = {**merged["info"], **other["info"]}
        merged["messages"].update(other["messages"])
    return merged


# --- one session as sync bodies -------------------------------------------------------------------

def _tokens(t):
    t = t if isinstance(t, dict) else {}
    cache = t.get("cache") if isinstance(t.get("cache"), dict) else {}
    n = bounds.count
    return {"input": n(t.get("input")), "output": bounds.total_count(n(t.get("output")) + n(t.get("reasoning"))),
            "read": n(cache.get("read")), "write": n(cache.get("write"))}


def _add(total, tokens):
    for k, v in tokens.items():
        total[k] = bounds.total_count(total[k] + v)


def _prompt(tokens):
    return bounds.total_count(tokens["input"] + tokens["read"] + tokens["write"])


def _message_usage(message):
    """(tokens, cost): the step-finish parts' sum, else the message's own figures. A figure
    out of bounds counts as unrecorded; sums stop at the bounds."""
    steps = [p for p in message["parts"] if p.get("type") == "step-finish"]
    info = message["info"]
    if steps:
        total = {"input": 0, "output": 0, "read": 0, "write": 0}
        for step in steps:
            _add(total, _tokens(step.get("tokens")))
        return total, bounds.total_cost(sum(bounds.cost(s.get("cost")) or 0 for s in steps))
    return _tokens(info.get("tokens")), bounds.cost(info.get("cost")) or 0


def _unquoted(text):
    """A prompt as typed: `opencode run` (1.18) joins its arguments quoting each that holds a
    space (``"…"``, inner quotes as ``\\"``), so a prompt given as one argument is stored quoted."""
    inner = text[1:-1]
    if len(text) > 2 and text[0] == text[-1] == '"' and " " in inner and '"' not in inner.replace('\\"', ""):
        return inner.replace('\\"', '"')
    return text


def _parts(parts, role=None):
    out, texts = [], []
    for p in parts:
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str):
            said = _unquoted(p["text"]) if role == "user" and not p.get("synthetic") else p["text"]
            if not p.get("synthetic"):
                texts.append(said)
            out.append({"type": "text", "content": said})
        elif kind == "reasoning":
            out.append({"type": "thinking", "content": p.get("text", "")})
        elif kind == "tool":
            state = p.get("state") if isinstance(p.get("state"), dict) else {}
            out.append({"type": "tool-call", "content": {"id": p.get("callID"), "name": p.get("tool"), "input": state.get("input")}})
            if state.get("status") in ("completed", "error"):
                out.append({"type": "tool-result", "content": {
                    "toolUseId": p.get("callID"), "content": state.get("output", state.get("error")),
                    "isError": state.get("status") == "error"}})
    return out, "\n".join(texts)


def _bodies(session, source=SOURCE, external_id=None):
    """(session body, message bodies, updated time, responses) of one session, stored under
    ``external_id`` (default: its own id)."""
    info = session["info"]
    external_id = external_id or info["id"]
    times = info.get("time") if isinstance(info.get("time"), dict) else {}
    messages, totals, cost, model, provider = [], {"input": 0, "output": 0, "read": 0, "write": 0}, 0.0, None, None
    responses = []
    for message in session["messages"].values():
        m = message["info"]
        parts, text = _parts(message["parts"], m.get("role"))
        tokens, message_cost = _message_usage(message)
        _add(totals, tokens)
        cost = bounds.total_cost(cost + message_cost)
        if m.get("role") == "assistant":
            model, provider = model or m.get("modelID"), provider or m.get("providerID")
        created = (m.get("time") or {}).get("created") if isinstance(m.get("time"), dict) else None
        if m.get("role") == "assistant" and (any(tokens.values()) or message_cost):
            responses.append({
                "key": f"{source}:{m.get('id')}", "session_external_id": external_id, "message_external_id": m.get("id"),
                "model": m.get("modelID") if isinstance(m.get("modelID"), str) else None, "input_tokens": tokens["input"],
                "output_tokens": tokens["output"], "cache_read_tokens": tokens["read"], "cache_write_tokens": tokens["write"],
                "cache_write_1h_tokens": 0, "cost_usd": message_cost,
                "created_at": created if type(created) is int and 0 <= created < 2**53 else 0})
        messages.append({
            "sessionExternalId": external_id, "externalId": m.get("id"), "role": m.get("role"), "source": source,
            "textContent": text, "model": m.get("modelID"), "createdAt": created, "parts": parts,
            "inputTokens": tokens["input"], "outputTokens": tokens["output"], "cacheReadTokens": tokens["read"],
            "cacheWriteTokens": tokens["write"], "promptTokens": _prompt(tokens),
            "completionTokens": tokens["output"],
        })
    directory = info.get("directory")
    created, updated = times.get("created"), times.get("updated")
    body = {
        "externalId": external_id, "source": source, "title": info.get("title"), "projectPath": directory,
        "projectName": Path(directory).name if isinstance(directory, str) and directory else None,
        "model": model, "provider": provider, "parentExternalId": info.get("parentID"), "createdAt": created,
        "inputTokens": totals["input"], "outputTokens": totals["output"], "cacheReadTokens": totals["read"],
        "cacheWriteTokens": totals["write"], "promptTokens": _prompt(totals),
        "completionTokens": totals["output"], "cost": round(cost, 10),
    }
    if type(created) is int and type(updated) is int and updated >= created:
        body["durationMs"] = updated - created
    return body, messages, updated, responses


def _version(session):
    """What changes when OpenCode writes to a session: its updated time, and its messages."""
    times = session["info"].get("time") if isinstance(session["info"].get("time"), dict) else {}
    updated = times.get("updated") if type(times.get("updated")) is int else 0
    parts = sum(len(m["parts"]) for m in session["messages"].values())
    return updated, len(session["messages"]) * 1_000_000 + parts


def run(user_id, root=None, dry_run=False, progress=None, source=SOURCE):
    """Import both layouts under ``root`` (default: $XDG_DATA_HOME/opencode, or Kilo's folder
    for ``source`` "kilo"), one session at a time, so memory holds one session however long
    the history."""
    database = AGENTS[source][1]
    root = Path(root or default_root(source)).expanduser()
    report = Report()
    sources = [Folders(root, report)]
    if (root / database).is_file():
        sources.append(Database(root / database, report))
    try:
        for session_id in sorted({sid for reader in sources for sid in reader.ids}):
            session = _merged(sources, session_id)
            if session is not None:
                _import_session(user_id, root, session_id, session, dry_run, report, source)
            if progress:
                progress(session_id)
    finally:
        for reader in sources[1:]:
            reader.close()
    return report


def _stored_as(user_id, session_id, source):
    """(the externalId the session is stored under, whether it is stored yet): its own id,
    unless another agent's session holds that id (Kilo keeps OpenCode's id scheme), then
    ``<source>:<id>``, so the two never merge."""
    own = f"{source}:{session_id}"
    if queries.find_session(user_id, external_id=own) is not None:
        return own, True
    stored = queries.find_session(user_id, external_id=session_id)
    if stored is not None and stored["source"] not in (None, source):
        return own, False
    return session_id, stored is not None


def _import_session(user_id, root, session_id, session, dry_run, report, source=SOURCE):
    report.lines += len(session["messages"])
    state_key = f"{source}:{root}:{session_id}"
    version = _version(session)
    if file_state(user_id, state_key) == (*version, 0):
        report.files_unchanged += 1
        return
    report.files += 1
    external_id, existed = _stored_as(user_id, session_id, source)
    body, messages, updated, responses = _bodies(session, source, external_id)
    try:
        session_data = schemas.session_in.load({k: v for k, v in body.items() if v is not None})
    except ValidationError as err:
        report.problem(session_id, 0, f"invalid session ({', '.join(map(str, err.messages))})")
        return
    if type(updated) is int and 0 < updated < 2**53:
        session_data["updated_at"] = updated  # the latest activity: OpenCode's, not this run's
    loaded = []
    for message in messages:
        try:
            loaded.append(schemas.message_in.load({k: v for k, v in message.items() if v is not None}))
        except ValidationError as err:
            report.problem(session_id, 0, f"invalid message {message.get('externalId')} ({', '.join(map(str, err.messages))})")
    held = {m["external_id"] for m in loaded}
    report.sessions_updated += existed
    report.sessions_created += not existed
    report.messages += len(loaded)
    if not dry_run:
        ingest.ingest_import(user_id, [session_data], loaded, [r for r in responses if r["message_external_id"] in held])
        save_file_state(user_id, state_key, *version, 0)
