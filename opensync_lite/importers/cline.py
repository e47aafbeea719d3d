"""Import the Cline CLI's sessions (3.0): ``~/.cline/data/sessions/<id>/``, two JSON documents
rewritten as the session goes on:

- ``<id>.messages.json``: ``{sessionId, messages: [...]}`` in the Anthropic shape — a ``user``
  message's content is text (the prompt, wrapped in ``<user_input mode="…">``) or
  ``tool_result`` blocks (``tool_use_id``, ``content``, ``is_error``); an ``assistant`` one's is
  ``thinking``, ``text`` and ``tool_use`` blocks, with ``modelInfo {id, provider}`` and the
  response's ``metrics {inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, cost}``;
- ``<id>.json``: the session's record (``cwd``, ``workspace_root``, ``provider``, ``model``,
  ``started_at``/``ended_at``, ``metadata.title``, its usage totals).

Usage: one response per assistant message, keyed by the session and its id. Cline's
``inputTokens`` is the provider's own: from an Anthropic-style API it leaves out the cached
tokens, from an OpenAI-style one (``openai``, ``openai-compatible``, ``cline``, OpenRouter…) it
includes them, so they are taken out. The cost is Cline's own ``metrics.cost`` when it knew the
model's price; a 0 there with tokens spent means it did not, and the write path estimates it.
A session is read whole when either document changed (both are bounded by ``MAX_LINE``); the
write path's upserts make that idempotent."""

import json
import os
import re
import stat as stats
from pathlib import Path
from types import SimpleNamespace

from marshmallow import ValidationError

from .. import schemas
from . import FileState, import_files
from .bounds import cost as _cost
from .bounds import count_of as _count
from .claude_code import MAX_LINE
from .whole_file import WholeFileImporter

SOURCE = "cline"
TITLE_CHARS = 100
MESSAGES = ".messages.json"
# Providers whose input count leaves the cached tokens out (Anthropic's usage shape).
CACHE_APART = ("anthropic", "bedrock", "vertex", "claude-code", "minimax")
_USER_INPUT = re.compile(r"^\s*<user_input(?: [^>]*)?>(.*)</user_input>\s*$", re.S)
_time = schemas.EpochMs()


def default_root():
    """$CLINE_DATA_DIR/sessions, else ~/.cline/data/sessions (the CLI's default --data-dir)."""
    base = os.environ.get("CLINE_DATA_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".cline" / "data") / "sessions"


def _messages_file(path):
    """The messages document of a session file (either of its two), or None."""
    if path.name.endswith(MESSAGES):
        return path
    if path.suffix == ".json" and path.stem == path.parent.name:
        return path.with_name(path.stem + MESSAGES)
    return None


def sessions(roots):
    """Every session's messages document under ``roots`` (folders or single files), in a stable order."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        found += [root] if root.is_file() else sorted(p for p in root.rglob("*" + MESSAGES) if p.is_file())
    return found


def _document(path):
    """A bounded JSON document: (object, None) or (None, why)."""
    st = os.stat(path)
    if not stats.S_ISREG(st.st_mode):
        return None, "not a regular file"
    if st.st_size > MAX_LINE:
        return None, f"a document of {st.st_size} bytes (more than {MAX_LINE})"
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:
        return None, f"not JSON ({err})"
    return (data, None) if isinstance(data, dict) else (None, "not a JSON object")


def _prompt(text):
    match = _USER_INPUT.match(text)
    return match.group(1) if match else text


def _output(content):
    """A tool result's text: the commands' results, else as recorded."""
    if isinstance(content, str):
        return content
    out = []
    for item in content if isinstance(content, list) else [content]:
        if isinstance(item, dict) and isinstance(item.get("result"), str):
            out.append(item["result"])
        elif isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            out.append(item["text"])
        elif item is not None:
            out.append(item if isinstance(item, str) else json.dumps(item))
    return "\n".join(out)


def _failed(block):
    content = block.get("content")
    return block.get("is_error") is True or (isinstance(content, list) and any(
        isinstance(i, dict) and i.get("success") is False for i in content))


def _usage(metrics, provider):
    """Cline's metrics as our four kinds, and its cost when it priced the response."""
    total, cached = _count(metrics, "inputTokens"), _count(metrics, "cacheReadTokens")
    fresh = total if str(provider or "").startswith(CACHE_APART) else max(0, total - cached)
    tokens = {"input_tokens": fresh, "cache_read_tokens": cached, "cache_write_tokens": _count(metrics, "cacheWriteTokens"),
              "output_tokens": _count(metrics, "outputTokens")}
    cost = _cost(metrics.get("cost"))
    return {**tokens, "cost_usd": cost if cost or not any(tokens.values()) else None}


def _stamp(value):
    try:
        return _time.deserialize(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    except ValidationError:
        return None


class Importer(WholeFileImporter):
    """A session is two JSON documents read whole (no lines to go on from), so only the
    writing is the shared importer's."""
    SOURCE = SOURCE

    def _read_file(self, path):
        meta_path = path.with_name(path.name[:-len(MESSAGES)] + ".json")
        st = os.stat(path)
        meta_st = os.stat(meta_path) if meta_path.is_file() else None
        size = st.st_size + (meta_st.st_size if meta_st else 0)  # either document changing reads the session again
        mtime = max(st.st_mtime_ns, meta_st.st_mtime_ns if meta_st else 0)
        state = self.known.get(str(path))
        if state is not None and (state.size, state.mtime_ns) == (size, mtime):
            self.report.files_unchanged += 1
            return
        self.report.files += 1
        self.report.lines += 1
        document, why = _document(path)
        if document is None:
            self.report.problem(path, 1, why)
            return
        meta = {}
        if meta_st is not None:
            meta, why = _document(meta_path)
            if meta is None:
                self.report.problem(meta_path, 1, why)
                meta = {}
        session_id = document.get("sessionId") or meta.get("session_id") or path.parent.name
        if not isinstance(session_id, str) or not session_id or len(session_id) > 256 or "\x00" in session_id:
            self.report.problem(path, 0, "no usable sessionId")
            return
        messages = document.get("messages")
        if not isinstance(messages, list):
            self.report.problem(path, 1, "no messages list")
            return
        self._session(path, session_id, messages, meta)
        self.read_files[str(path)] = FileState(size, mtime, st.st_size, 1)

    def _session(self, path, session_id, messages, meta):
        text_of = lambda v: v if isinstance(v, str) and v else None  # noqa: E731
        provider, model = text_of(meta.get("provider")), text_of(meta.get("model"))
        first, last, prompt = _stamp(meta.get("started_at")), _stamp(meta.get("ended_at")), None
        for n, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                self.report.problem(path, 1, f"message {n}: neither a user nor an assistant message")
                continue
            message_id = message.get("id") if isinstance(message.get("id"), str) and message["id"] else str(n)
            stamp = _stamp(message.get("ts"))
            for s in (stamp,) if stamp is not None else ():
                first, last = min(first or s, s), max(last or s, s)
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else [
                b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
            base = {"sessionExternalId": session_id, "source": SOURCE, "externalId": f"{session_id}:{message_id}",
                    "createdAt": stamp}
            if message["role"] == "user":
                results = [b for b in blocks if b.get("type") == "tool_result"]
                if results:
                    self._message(path, {**base, "role": "tool", "textContent": "", "parts": [
                        {"type": "tool-result", "content": {"toolUseId": b.get("tool_use_id"), "content": _output(b.get("content")),
                                                            "isError": _failed(b)}} for b in results]})
                text = "\n".join(_prompt(b["text"]) for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
                if text.strip():
                    prompt = prompt or " ".join(text.split())[:TITLE_CHARS]
                    self._message(path, {**base, "externalId": base["externalId"] + (":prompt" if results else ""),
                                         "role": "user", "textContent": text, "parts": [{"type": "text", "content": text}]})
                continue
            info = message.get("modelInfo") if isinstance(message.get("modelInfo"), dict) else {}
            answer_model = text_of(info.get("id")) or model
            thinking = [b["thinking"] for b in blocks if b.get("type") == "thinking" and isinstance(b.get("thinking"), str)]
            text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
            parts = [{"type": "thinking", "content": "\n".join(thinking)}] if any(t.strip() for t in thinking) else []
            parts += [{"type": "text", "content": text}] if text else []
            parts += [{"type": "tool-call", "content": {"id": b.get("id"), "name": b.get("name"), "input": b.get("input")}}
                      for b in blocks if b.get("type") == "tool_use"]
            if not parts or not self._message(path, {**base, "role": "assistant", "textContent": text,
                                                     "model": answer_model, "parts": parts}):
                continue
            if isinstance(message.get("metrics"), dict):
                key = f"cline:{session_id}:{message_id}"
                self.responses[key] = {"key": key, "session_external_id": session_id,
                                       "message_external_id": base["externalId"], "model": answer_model,
                                       **_usage(message["metrics"], text_of(info.get("provider")) or provider),
                                       "cache_write_1h_tokens": 0, "created_at": stamp or first or 0}
        metadata = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
        title = text_of(metadata.get("title"))
        cwd = next((c for c in (meta.get("cwd"), meta.get("workspace_root")) if isinstance(c, str) and c.startswith("/")), None)
        self.sessions.append((path, SimpleNamespace(id=session_id, title=(title or "").strip()[:TITLE_CHARS] or prompt,
                                                    cwd=cwd, model=model, provider=provider, first=first, last=last)))

    def _message(self, path, wire):
        """Queue one message; whether it was valid."""
        try:
            data = schemas.message_in.load({k: v for k, v in wire.items() if v is not None})
        except ValidationError as err:
            self.report.problem(path, 0, f"invalid message {wire['externalId']} ({', '.join(map(str, err.messages))})")
            return False
        self.messages.append(data)
        return True

    def session_wire(self, path, s, stored):
        return {"externalId": s.id, "source": SOURCE, "title": s.title, "projectPath": s.cwd,
                "projectName": Path(s.cwd).name if s.cwd else None, "model": s.model, "provider": s.provider,
                "createdAt": s.first}


def run(user_id, files, dry_run=False, progress=None):
    """Import Cline's sessions ``files`` (from ``sessions``; the watcher may pass either of a
    session's two documents, or other files, passed over); ``progress(path)`` is called per file."""
    picked = []
    for path in map(Path, files):
        messages = _messages_file(path)
        if messages is not None and messages not in picked and messages.is_file():
            picked.append(messages)
    return import_files(Importer(user_id, dry_run), picked, progress)
