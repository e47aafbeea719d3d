"""A scripted stand-in for the OpenAI Chat Completions API on 127.0.0.1: what the real Qwen Code
and Cline CLIs talk to in the tests (their OpenAI-compatible base URL set to ``StandIn.url + "/v1"``).

``StandIn`` answers ``POST …/chat/completions`` the way the real API does: with ``stream: true``,
SSE ``data: {"object": "chat.completion.chunk", …}`` lines — a first chunk with the role, the
reasoning (``delta.reasoning_content``, as OpenAI-compatible reasoning models stream it), the
text a few words a chunk, a tool call as ``delta.tool_calls`` (its id and name first, then the
arguments in pieces), a chunk with the ``finish_reason``, then (when
``stream_options.include_usage`` is set) one with ``choices: []`` and the ``usage``, then
``data: [DONE]``; without ``stream`` one ``chat.completion`` object. The usage is OpenAI's:
``prompt_tokens`` including the cached ones (``prompt_tokens_details.cached_tokens``),
``completion_tokens`` including ``completion_tokens_details.reasoning_tokens``.

Which answer a request gets comes from its ``messages``: the turn is how many ``tool`` messages
follow its last user message, so the same script answers a fresh run and a resumed one. A
request that offers no ``tools`` (a title or a summary the agent asks for on the side), or one
past the script's turns, gets a short text answer with ``SIDE_USAGE``. ``GET …/models`` lists
``MODEL``; anything else gets a 404 in the API's error shape. Every request is recorded
(``requests``) with what it was answered, so a test can sum the usage it handed out."""

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from standin_http import Handler, Served

MODEL = "gpt-4o"  # a model genai-prices knows, so an import can estimate its cost

# The tool call's and the final answer's usage differ, so a total that counts one response
# twice, or only one of them, cannot come out right.
TOOL_USAGE = {"prompt_tokens": 1500, "completion_tokens": 60, "total_tokens": 1560,
              "prompt_tokens_details": {"cached_tokens": 1200},
              "completion_tokens_details": {"reasoning_tokens": 20}}
ANSWER_USAGE = {"prompt_tokens": 1700, "completion_tokens": 25, "total_tokens": 1725,
                "prompt_tokens_details": {"cached_tokens": 1536},
                "completion_tokens_details": {"reasoning_tokens": 0}}
SIDE_USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}


@dataclass
class Turn:
    """One scripted response: its text, reasoning, tool calls ``[(name, arguments)]`` and usage."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list = field(default_factory=list)
    usage: dict = field(default_factory=lambda: copy.deepcopy(SIDE_USAGE))


def tool_then_answer(tool="run_shell_command", arguments=None, answer="The command printed: expected 10 tokens.",
                     reasoning="Run the command the user asked for."):
    """The usual script: reasoning and one tool call, then (after its output) a text answer."""
    arguments = {"command": "echo expected 10 tokens"} if arguments is None else arguments
    return [Turn(reasoning=reasoning, tool_calls=[(tool, arguments)], usage=TOOL_USAGE),
            Turn(text=answer, usage=ANSWER_USAGE)]


def content_text(content):
    """A message's ``content``: a string, or a list of parts."""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or () if isinstance(p, dict) and isinstance(p.get("text"), str))


def user_prompts(body):
    """The user messages' texts of a request, in order."""
    return [content_text(m.get("content")) for m in body.get("messages") or ()
            if isinstance(m, dict) and m.get("role") == "user"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: object
    kind: str = "other"  # "main" (scripted), "side" (no tools, or past the script), or "other"
    turn: int = None
    response_id: str = None
    usage: dict = None
    tool_call_ids: list = None
    status: int = 200
    at: float = field(default_factory=time.time)


class _Handler(Handler):
    def _not_found(self, record):
        record.status = 404
        self._json(404, {"error": {"message": f"stand-in: no {record.path}", "type": "invalid_request_error",
                                   "param": None, "code": "not_found"}})

    def do_GET(self):
        record = self.server.owner._record("GET", self.path, self.headers, None)
        if self.path.split("?")[0].endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1700000000,
                                                         "owned_by": "stand-in"}]})
        else:
            self._not_found(record)

    def do_POST(self):
        standin = self.server.owner
        body = self._json_body()
        record = standin._record("POST", self.path, self.headers, body)
        if not self.path.split("?")[0].endswith("/chat/completions") or not isinstance(body, dict):
            self._not_found(record)
            return
        record.kind, record.turn, answer = standin._answer(body)
        record.response_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        record.usage = copy.deepcopy(answer.usage)
        record.tool_call_ids = ["call_" + uuid.uuid4().hex[:24] for _ in answer.tool_calls]
        model = body.get("model") or MODEL
        if not body.get("stream"):
            self._json(200, completion(record, model, answer))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.close_connection = True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for chunk in sse_chunks(record, model, answer, include_usage):
            self.wfile.write(chunk)
            self.wfile.flush()


def _arguments(arguments):
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def completion(record, model, answer):
    """The one ``chat.completion`` object of a request without ``stream``."""
    message = {"role": "assistant", "content": answer.text or None}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": _arguments(args)}}
                                 for call_id, (name, args) in zip(record.tool_call_ids, answer.tool_calls)]
    return {"id": record.response_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if answer.tool_calls else "stop"}],
            "usage": answer.usage, "system_fingerprint": "fp_standin"}


def sse_chunks(record, model, answer, include_usage):
    """The server-sent events that stream ``answer`` as the Chat Completions API does."""
    created = int(time.time())
    out = []

    def chunk(delta, finish_reason=None, usage=None, choices=True):
        payload = {"id": record.response_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "fp_standin",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}] if choices else []}
        if include_usage:
            payload["usage"] = usage
        out.append(f"data: {json.dumps(payload)}\n\n".encode())

    chunk({"role": "assistant", "content": ""})
    if answer.reasoning:
        for word in _pieces(answer.reasoning):
            chunk({"reasoning_content": word})
    for word in _pieces(answer.text):
        chunk({"content": word})
    for index, (call_id, (name, args)) in enumerate(zip(record.tool_call_ids, answer.tool_calls)):
        chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                               "function": {"name": name, "arguments": ""}}]})
        arguments = _arguments(args)
        for i in range(0, len(arguments), 16):
            chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + 16]}}]})
    chunk({}, finish_reason="tool_calls" if answer.tool_calls else "stop")
    if include_usage:
        chunk(None, usage=answer.usage, choices=False)
    out.append(b"data: [DONE]\n\n")
    return out


def _pieces(text):
    words = text.split(" ") if text else []
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


class StandIn(Served):
    """The Chat Completions stand-in, a threaded HTTP server on a free port. ``script``: the
    list of ``Turn`` s (``tool_then_answer()`` when not given). Use as a context manager."""

    handler = _Handler
    request_type = Request

    def __init__(self, script=None):
        self.script = list(script or tool_then_answer())
        self.side = Turn(text="Nothing more to do.", usage=SIDE_USAGE)
        self.requests = []
        self.lock = threading.Lock()

    def _answer(self, body):
        if not body.get("tools"):
            return "side", None, self.side
        messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
        last_user = max((n for n, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        turn = sum(1 for m in messages[last_user + 1:] if m.get("role") == "tool")
        if turn < len(self.script):
            return "main", turn, self.script[turn]
        return "side", None, self.side

    # What the tests read.
    def answers(self, kind="main"):
        """The completions answered, in order (only those of ``kind``; every one when None)."""
        return [r for r in self.requests if r.response_id and (kind is None or r.kind == kind)]

    def usage_sum(self, kind="main"):
        """prompt (cached included), cached, completion (reasoning included) and reasoning tokens
        summed over the answers of ``kind`` (every one when None)."""
        total = dict.fromkeys(("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"), 0)
        for r in self.answers(kind):
            total["prompt_tokens"] += r.usage["prompt_tokens"]
            total["cached_tokens"] += r.usage["prompt_tokens_details"]["cached_tokens"]
            total["completion_tokens"] += r.usage["completion_tokens"]
            total["reasoning_tokens"] += r.usage["completion_tokens_details"]["reasoning_tokens"]
        return total
