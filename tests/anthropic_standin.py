"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1, and a tiny OTLP/HTTP
receiver: what the real Claude Code CLI talks to in the tests.

``StandIn`` answers ``POST /v1/messages`` (``?beta=true``, streaming SSE or the plain JSON form)
the way the real API does: ``message_start`` (message id ``msg_…``, model, usage with the 5-minute
/ 1-hour cache-write split), ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``) / ``content_block_stop`` per block, ``message_delta`` (stop reason, the
cumulative usage) and ``message_stop``, with a ``request-id: req_…`` header. Which answer a
request gets comes from a script of ``Conversation`` s: the conversation is picked by a phrase in
the request's first user message, the turn by how many assistant messages the request already
holds, so the same script answers a fresh run, a resumed one and a subagent alike. Requests
that match no conversation, or go past its turns (side requests: a title, a quota check; 2.1.332
run with ``-p`` and non-essential traffic off makes none) get a short text answer with
``SIDE_USAGE``. ``/v1/messages/count_tokens`` and ``/v1/models`` are answered too; anything else
gets a 404 in the API's error shape. Every request is recorded (``requests``), with what it was
answered, so a test can tell which is which and sum the usage it handed out.

``OtlpReceiver`` records every ``POST /v1/logs`` / ``/v1/metrics`` / ``/v1/traces`` body (JSON
or protobuf, as sent) and answers 200 as an OTLP collector does.
"""

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from standin_http import Handler, Served

# Real model ids that Claude Code 2.1.332's own price table knows.
MAIN_MODEL = "claude-sonnet-4-5-20250929"
SMALL_MODEL = "claude-haiku-4-5-20251001"

# The usage every scripted answer reports unless its turn says otherwise: 1 000 cache-write
# tokens split 600 five-minute / 400 one-hour.
USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 5000,
    "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
    "output_tokens": 34,
}
# What the side requests (title, quota check, anything unscripted) report: small and uncached,
# so that a sum over the wrong requests cannot come out right by accident.
SIDE_USAGE = {
    "input_tokens": 7,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 5,
}
TOKEN_KINDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


def text(value):
    """A text content block for a ``Turn``."""
    return {"type": "text", "text": value}


def thinking(value, signature="c2lnbmF0dXJl"):
    """A thinking content block for a ``Turn`` (streamed as thinking_delta then signature_delta)."""
    return {"type": "thinking", "thinking": value, "signature": signature}


def tool_use(name, input, id=None):
    """A tool_use content block for a ``Turn`` (``id`` made up when not given)."""
    return {"type": "tool_use", "id": id or "toolu_" + uuid.uuid4().hex[:24], "name": name, "input": input}


def bash(command, description="Run the command"):
    """A Bash tool_use block."""
    return tool_use("Bash", {"command": command, "description": description})


def agent(prompt, description="Run a subagent", subagent_type="general-purpose", background=False):
    """An Agent (subagent, formerly Task) tool_use block. Claude Code 2.1.332 runs an agent in
    the background unless ``run_in_background`` is false."""
    return tool_use("Agent", {"description": description, "prompt": prompt, "subagent_type": subagent_type,
                              "run_in_background": background})


@dataclass
class Turn:
    """One scripted answer: content blocks, the usage it reports, its stop reason (``tool_use``
    when it has a tool_use block, else ``end_turn``), the model it claims (the requested one when
    None)."""

    blocks: list
    usage: dict = field(default_factory=lambda: copy.deepcopy(USAGE))
    stop_reason: str = None
    model: str = None

    def __post_init__(self):
        if self.stop_reason is None:
            self.stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in self.blocks) else "end_turn"


@dataclass
class Conversation:
    """The turns answered to every request whose first user message contains ``match``: turn i
    answers the request that already holds i assistant messages."""

    match: str
    turns: list
    name: str = "main"


def tool_then_answer(match, command="echo expected 10 tokens", answer="The command printed: expected 10 tokens.",
                     name="main", usage=None):
    """The usual script: a text block plus a Bash tool_use, then (after the tool_result) a final
    text answer."""
    usage = usage or USAGE
    return Conversation(match, [
        Turn([text("I will run the command."), bash(command)], usage=copy.deepcopy(usage)),
        Turn([text(answer)], usage=copy.deepcopy(usage)),
    ], name=name)


def message_text(message):
    """All the text of one request message (a string, or its text / tool_result blocks)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            parts.append(inner if isinstance(inner, str) else message_text({"content": inner}))
    return "\n".join(parts)


def tool_results(body):
    """Every tool_result block in a request body's messages, in order."""
    out = []
    for message in body.get("messages", []):
        if isinstance(message.get("content"), list):
            out += [b for b in message["content"] if b.get("type") == "tool_result"]
    return out


@dataclass
class Request:
    """One request the stand-in received, with what it answered: ``kind`` is ``main`` (or the
    conversation's name) for scripted answers, ``side`` for unscripted messages, or the endpoint
    (``count_tokens``, ``models``, ``other``)."""

    method: str
    path: str
    headers: dict
    body: object
    kind: str = "other"
    turn: int = None
    message_id: str = None
    request_id: str = None
    model: str = None
    usage: dict = None
    stream: bool = None
    session_id: str = None
    status: int = 200
    at: float = field(default_factory=time.time)

    @property
    def query(self):
        return self.path.partition("?")[2]


class _MessagesHandler(Handler):
    def do_GET(self):
        standin = self.server.owner
        record = standin._record("GET", self.path, self.headers, None)
        route = self.path.split("?")[0]
        if route in ("/v1/models", "/v1/models/"):
            record.kind = "models"
            self._json(200, {"data": [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
                                      for m in (MAIN_MODEL, SMALL_MODEL)],
                             "has_more": False, "first_id": MAIN_MODEL, "last_id": SMALL_MODEL})
        elif route.startswith("/v1/models/"):
            record.kind = "models"
            model = route.rsplit("/", 1)[1]
            self._json(200, {"type": "model", "id": model, "display_name": model, "created_at": "2025-09-29T00:00:00Z"})
        else:
            record.status = 404
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"stand-in: no {route}"}})

    def do_HEAD(self):
        self.server.owner._record("HEAD", self.path, self.headers, None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        standin = self.server.owner
        raw = self._raw_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = standin._record("POST", self.path, self.headers, body)
        route = self.path.split("?")[0]
        if route == "/v1/messages/count_tokens":
            record.kind = "count_tokens"
            n = sum(len(json.dumps(m)) // 4 for m in (body or {}).get("messages", []))
            self._json(200, {"input_tokens": max(n, 1)})
        elif route == "/v1/messages" and isinstance(body, dict):
            self._message(standin, record, body)
        else:
            record.status = 404
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"stand-in: no {route}"}})

    def _message(self, standin, record, body):
        kind, turn, answer = standin._answer(body)
        model = answer.model or body.get("model") or MAIN_MODEL
        record.kind, record.turn, record.model = kind, turn, model
        record.usage = copy.deepcopy(answer.usage)
        record.stream = bool(body.get("stream"))
        record.message_id = "msg_" + uuid.uuid4().hex[:24]
        record.request_id = "req_" + uuid.uuid4().hex[:24] if standin.request_id_header else None
        content = copy.deepcopy(answer.blocks)
        headers = [("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")]
        if standin.request_id_header:
            headers.append(("request-id", record.request_id))
        message = {"id": record.message_id, "type": "message", "role": "assistant", "model": model, "content": content,
                   "stop_reason": answer.stop_reason, "stop_sequence": None,
                   "usage": {**answer.usage, "service_tier": "standard"}}
        if not record.stream:
            self._json(200, message, headers)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        for event in sse_events(message):
            self.wfile.write(event)
            self.wfile.flush()


def sse_events(message):
    """The server-sent events that stream ``message`` as the real API does."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": min(usage["output_tokens"], 1)}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}

    def event(name, data):
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    out = [event("message_start", {"type": "message_start", "message": start}),
           event("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": {"type": "text", "text": ""}}))
            words = block["text"].split(" ")
            pieces = [w + " " for w in words[:-1]] + [words[-1]]
            for piece in _chunks(pieces, 3):
                out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": {"type": "text_delta", "text": piece}}))
        elif block["type"] == "tool_use":
            out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": {"type": "tool_use", "id": block["id"],
                                                                       "name": block["name"], "input": {}}}))
            partial = json.dumps(block["input"])
            out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                     "delta": {"type": "input_json_delta", "partial_json": ""}}))
            for i in range(0, len(partial), 20):
                out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": {"type": "input_json_delta",
                                                                   "partial_json": partial[i:i + 20]}}))
        elif block["type"] == "thinking":
            out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                     "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}))
            out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                     "delta": {"type": "signature_delta", "signature": block["signature"]}}))
        else:
            raise ValueError(f"the stand-in streams text, thinking and tool_use blocks, not {block['type']}")
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    # message_delta's usage is cumulative, as the API's is today.
    delta_usage = {k: usage[k] for k in TOKEN_KINDS}
    out.append(event("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                       "usage": delta_usage}))
    out.append(event("message_stop", {"type": "message_stop"}))
    return out


def _chunks(pieces, n):
    for i in range(0, len(pieces), n):
        yield "".join(pieces[i:i + n])


class StandIn(Served):
    """The Messages API stand-in. ``script``: a list of ``Conversation`` s. ``side``: the Turn
    answered to unscripted message requests. ``request_id_header``: send ``request-id: req_…``
    as the real API does (Claude Code writes it as the transcript's ``requestId``); a gateway that
    drops it leaves only ``requestRef``. Use as a context manager, or start()/stop()."""

    handler = _MessagesHandler
    request_type = Request

    def __init__(self, script=(), side=None, request_id_header=True):
        self.script = list(script)
        self.request_id_header = request_id_header
        self.side = side or Turn([text("Echo test")], usage=copy.deepcopy(SIDE_USAGE))
        self.requests = []
        self.lock = threading.Lock()

    def _record(self, method, path, headers, body):
        session_id = {k.lower(): v for k, v in headers.items()}.get("x-claude-code-session-id")
        return super()._record(method, path, headers, body, session_id=session_id)

    def _answer(self, body):
        messages = body.get("messages") or []
        first_user = next((m for m in messages if m.get("role") == "user"), None)
        first_text = message_text(first_user) if first_user else ""
        for conversation in self.script:
            if conversation.match in first_text:
                turn = sum(1 for m in messages if m.get("role") == "assistant")
                if turn < len(conversation.turns):
                    return conversation.name, turn, conversation.turns[turn]
        return "side", None, self.side

    # What the tests read.
    def messages(self, kind=None):
        """The /v1/messages requests answered, in order (only those of ``kind`` when given)."""
        return [r for r in self.requests if r.message_id and (kind is None or r.kind == kind)]

    def usage_sum(self, kind="main", model=None):
        """The four token kinds (and the 5m / 1h split) summed over the answers of ``kind``."""
        total = dict.fromkeys(TOKEN_KINDS + ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"), 0)
        for r in self.messages(kind):
            if model and r.model != model:
                continue
            for k in TOKEN_KINDS:
                total[k] += r.usage[k]
            for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
                total[k] += r.usage.get("cache_creation", {}).get(k, 0)
        return total

    def log(self, compact=False):
        """Every request as a plain dict, with what it was answered (for a corpus or a failure
        message). ``compact`` keeps the tools' names and the system prompt's length only."""
        out = []
        for r in self.requests:
            body = r.body
            if compact and isinstance(body, dict):
                body = dict(body)
                if "tools" in body:
                    body["tools"] = [t.get("name") for t in body["tools"]]
                if isinstance(body.get("system"), list):
                    body["system"] = [{"type": b.get("type"), "chars": len(b.get("text", ""))} for b in body["system"]]
            out.append({"method": r.method, "path": r.path, "kind": r.kind, "turn": r.turn, "status": r.status,
                        "session_id": r.session_id, "model": r.model, "message_id": r.message_id,
                        "request_id": r.request_id, "stream": r.stream, "usage": r.usage,
                        "headers": {k: v for k, v in r.headers.items() if k not in ("x-api-key", "authorization")},
                        "body": body})
        return out


class _OtlpHandler(Handler):
    def do_POST(self):
        receiver = self.server.owner
        raw = self._raw_body()
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        export = Export(self.path.split("?")[0], content_type, dict(self.headers.items()), raw)
        with receiver.lock:
            receiver.exports.append(export)
            receiver.arrived.notify_all()
        if content_type == "application/x-protobuf":
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class Export:
    """One OTLP export as received: path, content type, headers, raw body (decompressed)."""

    path: str
    content_type: str
    headers: dict
    raw: bytes

    @property
    def json(self):
        return json.loads(self.raw) if self.content_type == "application/json" else None


def attributes(attrs):
    """OTLP JSON ``[{key, value: AnyValue}]`` as a plain dict (intValue as an int)."""
    def plain(value):
        if "stringValue" in value:
            return value["stringValue"]
        if "intValue" in value:
            return int(value["intValue"])
        if "doubleValue" in value:
            return float(value["doubleValue"])
        if "boolValue" in value:
            return value["boolValue"]
        if "arrayValue" in value:
            return [plain(v) for v in value["arrayValue"].get("values", [])]
        if "kvlistValue" in value:
            return attributes(value["kvlistValue"].get("values", []))
        return None

    return {a["key"]: plain(a.get("value", {})) for a in attrs or []}


class OtlpReceiver(Served):
    """Records what an OTLP/HTTP exporter posts. ``log_records()`` flattens the JSON log exports
    into ``{"body", "attributes", "resource", "scope", "time"}`` dicts."""

    handler = _OtlpHandler

    def __init__(self):
        self.exports = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def of(self, path):
        return [e for e in self.exports if e.path == path]

    def log_records(self):
        out = []
        for export in self.of("/v1/logs"):
            payload = export.json
            if not payload:
                continue
            for resource_logs in payload.get("resourceLogs", []):
                resource = attributes(resource_logs.get("resource", {}).get("attributes"))
                for scope_logs in resource_logs.get("scopeLogs", []):
                    scope = scope_logs.get("scope", {}).get("name")
                    for rec in scope_logs.get("logRecords", []):
                        body = rec.get("body", {})
                        out.append({"body": body.get("stringValue", body), "attributes": attributes(rec.get("attributes")),
                                    "resource": resource, "scope": scope, "time": rec.get("timeUnixNano")})
        return out

    def metric_names(self):
        names = []
        for export in self.of("/v1/metrics"):
            for rm in (export.json or {}).get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    names += [m["name"] for m in sm.get("metrics", [])]
        return names

    def wait_for(self, predicate, seconds=10):
        """Wait until ``predicate(self)`` is true (exports may land just after the CLI exits)."""
        deadline = time.time() + seconds
        with self.lock:
            while not predicate(self):
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

