"""Import OpenCode's history: the SQLite store of OpenCode 1.2 and later (``opencode.db``:
tables ``session``, ``message`` and ``part``, JSON in ``data``) and the older folders
(``storage/session/<project>/<id>.json``, ``storage/message/<session>/<id>.json``,
``storage/part/<message>/<id>.json``). A session found in both is one session.

Ids are OpenCode's own (``ses_…``, ``msg_…``), as the opencode plugin sends them. Tokens are the
sum of the ``step-finish`` parts (an assistant message's own ``tokens`` holds only its last
step); prompt = input + cache read + cache write, completion = output + reasoning; the cost
OpenCode recorded is kept."""

import json
import os
import sqlite3
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from . import Report, file_state, save_file_state

SOURCE = "opencode"


def default_root():
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opencode"


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --- the two layouts, read into one shape: {id: {"info": {...}, "messages": {id: {"info", "parts"}}}} ---

def _from_folders(root, report):
    storage = Path(root) / "storage"
    sessions = {}
    for path in sorted((storage / "session").glob("*/*.json")):
        try:
            info = _json(path)
            sessions[info["id"]] = {"info": info, "messages": {}}
        except (OSError, ValueError, KeyError, TypeError) as err:
            report.problem(path, 0, f"unreadable session ({err})")
    for session_id, session in sessions.items():
        for path in sorted((storage / "message" / session_id).glob("*.json")):
            try:
                info = _json(path)
                parts = []
                for part_path in sorted((storage / "part" / info["id"]).glob("*.json")):
                    parts.append(_json(part_path))
                session["messages"][info["id"]] = {"info": info, "parts": parts}
            except (OSError, ValueError, KeyError, TypeError) as err:
                report.problem(path, 0, f"unreadable message ({err})")
    return sessions


def _from_database(path, report):
    sessions = {}
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        report.problem(path, 0, f"unreadable database ({err})")
        return sessions
    conn.row_factory = sqlite3.Row
    try:
        for row in conn.execute("SELECT * FROM session"):
            info = dict(row)
            if "data" in info and info["data"]:
                info = {**info, **json.loads(info["data"])}
            info.setdefault("parentID", info.get("parent_id"))
            info.setdefault("time", {"created": info.get("time_created"), "updated": info.get("time_updated")})
            sessions[info["id"]] = {"info": info, "messages": {}}
        for row in conn.execute("SELECT id, session_id, data FROM message ORDER BY time_created, id"):
            if row["session_id"] in sessions:
                info = {**json.loads(row["data"]), "id": row["id"], "sessionID": row["session_id"]}
                sessions[row["session_id"]]["messages"][row["id"]] = {"info": info, "parts": []}
        for row in conn.execute("SELECT id, message_id, session_id, data FROM part ORDER BY time_created, id"):
            message = sessions.get(row["session_id"], {}).get("messages", {}).get(row["message_id"])
            if message is not None:
                message["parts"].append({**json.loads(row["data"]), "id": row["id"]})
    except (sqlite3.Error, ValueError, KeyError) as err:
        report.problem(path, 0, f"unexpected layout ({err})")
    finally:
        conn.close()
    return sessions


# --- one session as sync bodies -------------------------------------------------------------------

def _tokens(t):
    t = t if isinstance(t, dict) else {}
    cache = t.get("cache") if isinstance(t.get("cache"), dict) else {}

    def n(value):
        return value if type(value) is int and 0 <= value <= schemas.MAX_COUNT else 0

    return {"input": n(t.get("input")), "output": n(t.get("output")) + n(t.get("reasoning")),
            "read": n(cache.get("read")), "write": n(cache.get("write"))}


def _message_usage(message):
    """(tokens, cost): the step-finish parts' sum, else the message's own figures."""
    steps = [p for p in message["parts"] if p.get("type") == "step-finish"]
    info = message["info"]
    if steps:
        total = {"input": 0, "output": 0, "read": 0, "write": 0}
        for step in steps:
            for k, v in _tokens(step.get("tokens")).items():
                total[k] += v
        cost = sum(s.get("cost") for s in steps if type(s.get("cost")) in (int, float) and s.get("cost") >= 0)
        return total, cost
    cost = info.get("cost")
    return _tokens(info.get("tokens")), cost if type(cost) in (int, float) and cost >= 0 else 0


def _parts(parts):
    out, texts = [], []
    for p in parts:
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str):
            if not p.get("synthetic"):
                texts.append(p["text"])
            out.append({"type": "text", "content": p["text"]})
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


def _bodies(session):
    info = session["info"]
    times = info.get("time") if isinstance(info.get("time"), dict) else {}
    messages, totals, cost, model, provider = [], {"input": 0, "output": 0, "read": 0, "write": 0}, 0.0, None, None
    for message in session["messages"].values():
        m = message["info"]
        parts, text = _parts(message["parts"])
        tokens, message_cost = _message_usage(message)
        for k in totals:
            totals[k] += tokens[k]
        cost += message_cost
        if m.get("role") == "assistant":
            model, provider = model or m.get("modelID"), provider or m.get("providerID")
        created = (m.get("time") or {}).get("created") if isinstance(m.get("time"), dict) else None
        messages.append({
            "sessionExternalId": info["id"], "externalId": m.get("id"), "role": m.get("role"), "source": SOURCE,
            "textContent": text, "model": m.get("modelID"), "createdAt": created, "parts": parts,
            "inputTokens": tokens["input"], "outputTokens": tokens["output"], "cacheReadTokens": tokens["read"],
            "cacheWriteTokens": tokens["write"], "promptTokens": tokens["input"] + tokens["read"] + tokens["write"],
            "completionTokens": tokens["output"],
        })
    directory = info.get("directory")
    created, updated = times.get("created"), times.get("updated")
    body = {
        "externalId": info["id"], "source": SOURCE, "title": info.get("title"), "projectPath": directory,
        "projectName": Path(directory).name if isinstance(directory, str) and directory else None,
        "model": model, "provider": provider, "parentExternalId": info.get("parentID"), "createdAt": created,
        "inputTokens": totals["input"], "outputTokens": totals["output"], "cacheReadTokens": totals["read"],
        "cacheWriteTokens": totals["write"], "promptTokens": totals["input"] + totals["read"] + totals["write"],
        "completionTokens": totals["output"], "cost": round(cost, 10),
    }
    if type(created) is int and type(updated) is int and updated >= created:
        body["durationMs"] = updated - created
    return body, messages


def _version(session):
    """What changes when OpenCode writes to a session: its updated time, and its messages."""
    times = session["info"].get("time") if isinstance(session["info"].get("time"), dict) else {}
    updated = times.get("updated") if type(times.get("updated")) is int else 0
    parts = sum(len(m["parts"]) for m in session["messages"].values())
    return updated, len(session["messages"]) * 1_000_000 + parts


def run(user_id, root=None, dry_run=False, progress=None):
    """Import both layouts under ``root`` (default: $XDG_DATA_HOME/opencode)."""
    root = Path(root or default_root()).expanduser()
    report = Report()
    sessions = _from_folders(root, report) if (root / "storage").is_dir() else {}
    if (root / "opencode.db").is_file():
        for session_id, session in _from_database(root / "opencode.db", report).items():
            known = sessions.setdefault(session_id, session)
            if known is not session:  # in both layouts: one session, every message once
                known["messages"].update(session["messages"])
                known["info"] = {**known["info"], **session["info"]}
    for session_id, session in sessions.items():
        report.lines += len(session["messages"])
        state_key = f"opencode:{root}:{session_id}"
        version = _version(session)
        if file_state(user_id, state_key) == (*version, 0):
            report.files_unchanged += 1
            if progress:
                progress(session_id)
            continue
        report.files += 1
        body, messages = _bodies(session)
        try:
            session_data = schemas.session_in.load({k: v for k, v in body.items() if v is not None})
        except ValidationError as err:
            report.problem(session_id, 0, f"invalid session ({', '.join(map(str, err.messages))})")
            continue
        loaded = []
        for message in messages:
            try:
                loaded.append(schemas.message_in.load({k: v for k, v in message.items() if v is not None}))
            except ValidationError as err:
                report.problem(session_id, 0, f"invalid message {message.get('externalId')} ({', '.join(map(str, err.messages))})")
        existed = queries.find_session(user_id, external_id=session_id) is not None
        report.sessions_updated += existed
        report.sessions_created += not existed
        report.messages += len(loaded)
        if not dry_run:
            ingest.ingest_import(user_id, [session_data], loaded, [])
            save_file_state(user_id, state_key, *version, 0)
        if progress:
            progress(session_id)
    return report
