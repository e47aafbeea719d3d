"""A scripted stand-in for the OpenAI Responses API on 127.0.0.1: what the real Codex CLI talks
to in the tests (its provider's ``base_url`` set to ``StandIn.url + "/v1"``).

``StandIn`` answers ``POST /v1/responses`` with ``stream: true`` the way the real API does: SSE
``event: <type>`` / ``data: {…, "type", "sequence_number"}`` — ``response.created``,
``response.in_progress``, per output item ``response.output_item.added``, its reasoning summary /
output text / function-call argument deltas and dones, ``response.output_item.done``, and
``response.completed`` carrying the response's ``usage`` (``input_tokens`` including the cached
ones and the cache writes, ``input_tokens_details {cached_tokens, cache_write_tokens}``, ``output_tokens`` including
``output_tokens_details.reasoning_tokens``). Which answer a request gets comes from its
``input``: the turn is how many ``function_call_output`` items follow its last user message,
so the same script answers a fresh run and a resumed one (the ``<…>`` context Codex injects as
user messages, such as a ``<subagent_notification>``, is not a user message here). ``agents``
gives other scripts by a marker in that last user message: a sub-agent's task, or the prompt
that has the model spawn one (``spawn_agent`` / ``wait_agent``, Codex's ``multi_agent_v1``
tools; a turn's items may be a function of the request, to wait on the ids the spawns
returned). A request past its script's turns gets a short text answer with ``SIDE_USAGE``. Anything else (Codex 0.171.0's
``/v1/analytics/codex/turn-costs``, a models list) gets a 404 in the API's error shape. Every
request is recorded (``requests``) with what it was answered, so a test can sum the usage it
handed out."""

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from standin_http import Handler, Served

MODEL = "gpt-5-codex"  # a model genai-prices knows, so an import can estimate its cost

# The usage of the scripted answers: the tool call's and the final answer's differ, so a total
# that counts one response twice, or only one of them, cannot come out right.
TOOL_USAGE = {"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 1200, "cache_write_tokens": 40},
              "output_tokens": 60, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 1560}
ANSWER_USAGE = {"input_tokens": 1700, "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
                "output_tokens": 25, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 1725}
SIDE_USAGE = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
              "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12}


def message(text):
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}


def reasoning(summary):
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}


def function_call(name, arguments, call_id=None):
    """A function_call item (its ``call_id`` made up per response when not given)."""
    item = {"type": "function_call", "name": name, "arguments": json.dumps(arguments)}
    return {**item, "call_id": call_id} if call_id else item


def exec_command(cmd):
    """Codex's shell tool."""
    return function_call("exec_command", {"cmd": cmd})


def spawn_agent(task, fork_context=False):
    """Codex 0.171's tool that starts a sub-agent on ``task`` (in its ``multi_agent_v1`` namespace)."""
    return {**function_call("spawn_agent", {"message": task, "fork_context": fork_context}),
            "namespace": "multi_agent_v1"}


def spawned_ids(body):
    """The agent ids the ``spawn_agent`` calls of a request's ``input`` returned, in order."""
    spawns = {i.get("call_id") for i in body.get("input") or () if i.get("type") == "function_call"
              and i.get("name") == "spawn_agent"}
    found = []
    for item in body.get("input") or ():
        if item.get("type") == "function_call_output" and item.get("call_id") in spawns:
            try:
                found.append(json.loads(item["output"])["agent_id"])
            except (ValueError, KeyError, TypeError):
                pass
    return found


def wait_for_spawned(index):
    """A Turn's items: a ``wait_agent`` call on the agent the request's ``index`` th spawn
    started (it returns when any of its targets finishes, so one target a call)."""
    def items(body):
        return [{**function_call("wait_agent", {"targets": spawned_ids(body)[index:index + 1], "timeout_ms": 60000}),
                 "namespace": "multi_agent_v1"}]
    return items


@dataclass
class Turn:
    """One scripted response: its output items (or a function of the request's body giving
    them) and the usage it reports."""

    items: object
    usage: dict


def tool_then_answer(command="echo expected 10 tokens", answer="The command printed: expected 10 tokens."):
    """The usual script: reasoning and an ``exec_command`` call, then (after its output) a text answer."""
    return [Turn([reasoning("Run the command the user asked for."), exec_command(command)], TOOL_USAGE),
            Turn([message(answer)], ANSWER_USAGE)]


def item_text(item):
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(c.get("text", "") for c in content or () if isinstance(c, dict))


def user_prompts(body):
    """The user messages' texts of a request's ``input``, in order."""
    return [item_text(i) for i in body.get("input") or () if i.get("type") == "message" and i.get("role") == "user"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: object
    kind: str = "other"  # "main" (scripted), an agents marker, "side" (past a script), or "other"
    turn: int = None
    response_id: str = None
    usage: dict = None
    status: int = 200
    at: float = field(default_factory=time.time)


class _Handler(Handler):
    def _not_found(self, record):
        record.status = 404
        self._json(404, {"error": {"message": f"stand-in: no {record.path}", "type": "invalid_request_error",
                                   "param": None, "code": "not_found"}})

    def do_GET(self):
        self._not_found(self.server.owner._record("GET", self.path, self.headers, None))

    def do_POST(self):
        standin = self.server.owner
        body = self._json_body()
        record = standin._record("POST", self.path, self.headers, body)
        if self.path.split("?")[0] != "/v1/responses" or not isinstance(body, dict):
            self._not_found(record)
            return
        record.kind, record.turn, answer = standin._answer(body)
        record.response_id = "resp_" + uuid.uuid4().hex
        record.usage = copy.deepcopy(answer.usage)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.close_connection = True
        if callable(answer.items):
            answer = Turn(answer.items(body), answer.usage)
        for event in sse_events(record.response_id, body.get("model") or MODEL, answer):
            self.wfile.write(event)
            self.wfile.flush()


def sse_events(response_id, model, answer):
    """The server-sent events that stream ``answer`` as the Responses API does."""
    sequence = iter(range(10**6))
    out = []

    def event(kind, **data):
        payload = {"type": kind, "sequence_number": next(sequence), **data}
        out.append(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())

    response = {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
                "model": model, "output": [], "usage": None}
    event("response.created", response=response)
    event("response.in_progress", response=response)
    done = []
    for index, template in enumerate(answer.items):
        item = {**copy.deepcopy(template), "id": f"{template['type'][:2]}_{uuid.uuid4().hex}"}
        if item["type"] == "function_call":
            item.setdefault("call_id", "call_" + uuid.uuid4().hex[:24])
        if item["type"] == "reasoning":
            event("response.output_item.added", output_index=index, item={**item, "summary": []})
            for s, part in enumerate(item["summary"]):
                event("response.reasoning_summary_part.added", item_id=item["id"], output_index=index,
                      summary_index=s, part={"type": "summary_text", "text": ""})
                event("response.reasoning_summary_text.delta", item_id=item["id"], output_index=index,
                      summary_index=s, delta=part["text"])
                event("response.reasoning_summary_text.done", item_id=item["id"], output_index=index,
                      summary_index=s, text=part["text"])
                event("response.reasoning_summary_part.done", item_id=item["id"], output_index=index,
                      summary_index=s, part=part)
        elif item["type"] == "message":
            item["status"] = "completed"
            event("response.output_item.added", output_index=index,
                  item={**item, "content": [], "status": "in_progress"})
            for c, part in enumerate(item["content"]):
                event("response.content_part.added", item_id=item["id"], output_index=index, content_index=c,
                      part={**part, "text": ""})
                words = part["text"].split(" ")
                for i, word in enumerate(words):
                    event("response.output_text.delta", item_id=item["id"], output_index=index, content_index=c,
                          delta=word if i == len(words) - 1 else word + " ")
                event("response.output_text.done", item_id=item["id"], output_index=index, content_index=c,
                      text=part["text"])
                event("response.content_part.done", item_id=item["id"], output_index=index, content_index=c, part=part)
        elif item["type"] == "function_call":
            item["status"] = "completed"
            event("response.output_item.added", output_index=index,
                  item={**item, "arguments": "", "status": "in_progress"})
            arguments = item["arguments"]
            for i in range(0, len(arguments), 16):
                event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                      delta=arguments[i:i + 16])
            event("response.function_call_arguments.done", item_id=item["id"], output_index=index, arguments=arguments)
        else:
            raise ValueError(f"the stand-in streams reasoning, message and function_call items, not {item['type']}")
        event("response.output_item.done", output_index=index, item=item)
        done.append(item)
    event("response.completed", response={**response, "status": "completed", "output": done, "usage": answer.usage})
    return out


class StandIn(Served):
    """The Responses API stand-in, a threaded HTTP server on a free port. ``script``: the list
    of ``Turn`` s (``tool_then_answer()`` when not given); ``agents``: {marker: script} for the
    requests whose last user message holds the marker. Use as a context manager."""

    handler = _Handler
    request_type = Request

    def __init__(self, script=None, agents=None):
        self.script = list(script or tool_then_answer())
        self.agents = {marker: list(turns) for marker, turns in (agents or {}).items()}
        self.side = Turn([message("Nothing more to do.")], SIDE_USAGE)
        self.requests = []
        self.lock = threading.Lock()

    def _answer(self, body):
        items = [i for i in body.get("input") or () if isinstance(i, dict)]
        users = [n for n, i in enumerate(items) if i.get("type") == "message" and i.get("role") == "user"
                 and not item_text(i).lstrip().startswith("<")]
        last_user = max(users, default=-1)
        turn = sum(1 for i in items[last_user + 1:] if i.get("type") == "function_call_output")
        prompt = item_text(items[last_user]) if users else ""
        kind, script = next(((m, s) for m, s in self.agents.items() if m in prompt), ("main", self.script))
        if turn < len(script):
            return kind, turn, script[turn]
        return "side", None, self.side

    # What the tests read.
    def responses(self, kind=None):
        """The /v1/responses requests answered, in order (only those of ``kind`` when given)."""
        return [r for r in self.requests if r.response_id and (kind is None or r.kind == kind)]

    def usage_sum(self, kind=None):
        """input (cached included), cached, cache write and output tokens summed over the answers."""
        total = dict.fromkeys(("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens"), 0)
        for r in self.responses(kind):
            total["input_tokens"] += r.usage["input_tokens"]
            total["cached_tokens"] += r.usage["input_tokens_details"]["cached_tokens"]
            total["cache_write_tokens"] += r.usage["input_tokens_details"]["cache_write_tokens"]
            total["output_tokens"] += r.usage["output_tokens"]
        return total
