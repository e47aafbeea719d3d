"""A scripted stand-in for the Gemini API on 127.0.0.1: what the real Gemini CLI talks to in the
tests (``GOOGLE_GEMINI_BASE_URL=StandIn.url``, the key sent as ``x-goog-api-key``).

``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` is answered the way the real API
streams: SSE ``data: {GenerateContentResponse}`` chunks, the text split over several, the last
with ``finishReason`` and ``usageMetadata {promptTokenCount (cached included),
candidatesTokenCount, cachedContentTokenCount, thoughtsTokenCount, totalTokenCount}``. Which
answer a request gets comes from its ``contents``: the turn is how many ``functionResponse``
parts follow its last typed user prompt, so the same script answers a fresh run and a resumed
one. ``:generateContent`` is the CLI's own side calls (the model router's complexity score, a
next-speaker check): answered from the JSON schema they ask for, with ``SIDE_USAGE``. Anything
else gets a 404 in the API's error shape. Every request is recorded with what it was answered,
so a test can sum the usage handed out."""

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from standin_http import Handler, Served

# The usage of the scripted answers: the tool call's and the final answer's differ, so a total
# that counts one answer twice, or only one of them, cannot come out right.
TOOL_USAGE = {"promptTokenCount": 2100, "candidatesTokenCount": 40, "cachedContentTokenCount": 1800,
              "thoughtsTokenCount": 30, "totalTokenCount": 2170}
ANSWER_USAGE = {"promptTokenCount": 2300, "candidatesTokenCount": 22, "cachedContentTokenCount": 2048,
                "thoughtsTokenCount": 11, "totalTokenCount": 2333}
SIDE_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}


def text(value):
    return {"text": value}


def thought(value):
    return {"text": value, "thought": True}


def function_call(name, args):
    return {"functionCall": {"name": name, "args": args}}


def run_shell_command(command):
    """Gemini CLI's shell tool."""
    return function_call("run_shell_command", {"command": command})


@dataclass
class Turn:
    """One scripted answer: its parts and the usage it reports."""

    parts: list
    usage: dict


def tool_then_answer(command="echo expected 10 tokens", answer="The command printed: expected 10 tokens."):
    """The usual script: a thought and a ``run_shell_command`` call, then (after its output) a text answer."""
    return [Turn([thought("Run the command the user asked for."), run_shell_command(command)], TOOL_USAGE),
            Turn([text(answer)], ANSWER_USAGE)]


def _typed(content):
    """Whether a ``contents`` entry is a prompt the user typed (not a function response)."""
    parts = content.get("parts") or ()
    return content.get("role") == "user" and not any("functionResponse" in p for p in parts if isinstance(p, dict))


def user_prompts(body):
    """The texts of a request's typed user contents, in order."""
    return ["".join(p.get("text", "") for p in c.get("parts") or () if isinstance(p, dict))
            for c in body.get("contents") or () if isinstance(c, dict) and _typed(c)]


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: object
    kind: str = "other"  # "main" (scripted), "extra" (past the script), "side" (generateContent) or "other"
    turn: int = None
    model: str = None
    usage: dict = None
    status: int = 200
    at: float = field(default_factory=time.time)


def _side_answer(body):
    """A JSON answer for a side call, shaped by the schema it asks for."""
    config = body.get("generationConfig") or body.get("config") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
    names = set((schema.get("properties") or {}))
    if "complexity_score" in names:
        return {"complexity_reasoning": "A single shell command.", "complexity_score": 10}
    if "model_choice" in names:  # 0.30's router
        return {"reasoning": "A single shell command.", "model_choice": "flash"}
    if "next_speaker" in names:
        return {"reasoning": "The answer is complete.", "next_speaker": "user"}
    return {name: "" for name in names}


class _Handler(Handler):
    def _not_found(self, record):
        record.status = 404
        self._json(404, {"error": {"code": 404, "message": f"stand-in: no {record.path}", "status": "NOT_FOUND"}})

    def do_GET(self):
        self._not_found(self.server.owner._record("GET", self.path, self.headers, None))

    def do_POST(self):
        standin = self.server.owner
        body = self._json_body()
        record = standin._record("POST", self.path, self.headers, body)
        route = self.path.split("?")[0]
        if not route.startswith("/v1beta/models/") or ":" not in route or not isinstance(body, dict):
            self._not_found(record)
            return
        record.model, method = route[len("/v1beta/models/"):].rsplit(":", 1)
        if method == "generateContent":
            record.kind, record.usage = "side", dict(SIDE_USAGE)
            self._json(200, {"candidates": [{"content": {"role": "model", "parts": [text(json.dumps(_side_answer(body)))]},
                                             "finishReason": "STOP", "index": 0}],
                             "usageMetadata": record.usage, "modelVersion": record.model,
                             "responseId": uuid.uuid4().hex[:20]})
            return
        if method != "streamGenerateContent":
            self._not_found(record)
            return
        record.kind, record.turn, answer = standin._answer(body)
        record.usage = copy.deepcopy(answer.usage)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in sse_chunks(record.model, answer):
            self.wfile.write(chunk)
            self.wfile.flush()


def sse_chunks(model, answer):
    """The server-sent events that stream ``answer`` as the Gemini API does: text in pieces, a
    function call whole, the usage and finishReason on the last chunk."""
    response_id = uuid.uuid4().hex[:20]
    pieces = []
    for part in answer.parts:
        if "text" in part and not part.get("thought"):  # thoughts arrive whole, text in pieces
            words = part["text"].split(" ")
            pieces += [{**part, "text": w if i == len(words) - 1 else w + " "} for i, w in enumerate(words)]
        else:
            pieces.append(part)
    out = []
    for n, piece in enumerate(pieces):
        candidate = {"content": {"role": "model", "parts": [piece]}, "index": 0}
        chunk = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
        if n == len(pieces) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = answer.usage
        out.append(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    return out


class StandIn(Served):
    """The Gemini API stand-in, a threaded HTTP server on a free port. ``script``: the list of
    ``Turn`` s (``tool_then_answer()`` when not given). Use as a context manager."""

    handler = _Handler
    request_type = Request

    def __init__(self, script=None):
        self.script = list(script or tool_then_answer())
        self.extra = Turn([text("Nothing more to do.")], {**SIDE_USAGE, "cachedContentTokenCount": 0})
        self.requests = []
        self.lock = threading.Lock()

    def _answer(self, body):
        contents = [c for c in body.get("contents") or () if isinstance(c, dict)]
        last_user = max((n for n, c in enumerate(contents) if _typed(c)), default=-1)
        turn = sum(1 for c in contents[last_user + 1:] for p in c.get("parts") or ()
                   if isinstance(p, dict) and "functionResponse" in p)
        if turn < len(self.script):
            return "main", turn, self.script[turn]
        return "extra", None, self.extra

    # What the tests read.
    def answers(self, kind=None):
        """The streamed requests answered, in order (only those of ``kind`` when given)."""
        return [r for r in self.requests if r.kind in ((kind,) if kind else ("main", "extra"))]

    def usage_sum(self, kind=None):
        """prompt (cached included), cached, thoughts and candidates tokens summed over the streamed answers."""
        names = ("promptTokenCount", "cachedContentTokenCount", "thoughtsTokenCount", "candidatesTokenCount")
        return {n: sum(r.usage.get(n, 0) for r in self.answers(kind)) for n in names}
