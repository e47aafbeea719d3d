"""What the agents' telemetry says, in the write path's shapes: each OTLP log record and
metric point of an agent mapped here becomes (part of) a session, a message or a counted
response. One table per agent of the events read (HANDLERS); everything else is left out.

- Claude Code (service.name claude-code): ``api_request`` events carry each request's four
  token kinds and Claude Code's own cost; ``user_prompt`` (text with OTEL_LOG_USER_PROMPTS=1),
  ``assistant_response`` and ``tool_result`` the conversation; subagents' events name their
  ``agent_id``. Its metrics count only when its events are off (ingest._counted).
- Codex (service.name codex_exec, codex_tui, ...): ``codex.sse_event`` of kind
  ``response.completed`` carries a response's tokens (its input includes the cached ones and
  the cache writes);
  ``codex.user_prompt`` (with ``log_user_prompt = true``) and ``codex.tool_result`` (the call's
  arguments and output) the conversation; no cost (the write path prices it).
- Gemini CLI (service.name gemini-cli): ``gemini_cli.api_response`` carries each response's
  tokens (input includes the cached ones; thoughts are billed as output) and, in
  ``response_text``, the streamed chunks the answer is read from; ``gemini_cli.user_prompt``
  (with ``logPrompts``) and ``gemini_cli.tool_call`` the conversation. Its router's calls
  (role ``utility_*``) are real spend that the chat files never record, so they are counted
  beside the files' copy (ingest._counted); no cost (the write path prices it).
"""

import json

from marshmallow import ValidationError

from .. import ingest, schemas
from ..importers.bounds import cost as _cost, count as _count

PROMPT_HIDDEN = "<REDACTED>"  # Claude Code's prompt text unless OTEL_LOG_USER_PROMPTS=1
TOKEN_TYPES = {"input": "input_tokens", "output": "output_tokens", "cacheRead": "cache_read_tokens",
               "cacheCreation": "cache_write_tokens"}
NAMING = ("event.name", "event.kind")  # the attributes an event's name is read from
METRICS = ("claude_code.token.usage", "claude_code.cost.usage")


def source(service_name):
    """Our source for a service.name, or None for an agent not mapped here."""
    if service_name == "claude-code":
        return "claude-code"
    if isinstance(service_name, str) and service_name.startswith("codex"):
        return "codex-cli"
    if service_name == "gemini-cli":
        return "gemini-cli"
    return None


def event_name(body, attrs):
    """Claude Code names an event in its body (``claude_code.api_request``), Codex and Gemini
    CLI in its ``event.name`` attribute (Gemini's body is a sentence); a Codex SSE event's kind
    is part of its name here."""
    name = body if isinstance(body, str) and body in HANDLERS else attrs.get("event.name")
    if name == "codex.sse_event":
        name = f"{name}:{attrs.get('event.kind')}"
    return name


def value(any_value):
    """An OTLP AnyValue as plain Python."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)


def attributes(pairs):
    return {pair.key: value(pair.value) for pair in pairs}


def _int(raw):
    """A count sent as an int, a whole float or a digit string (OTLP JSON's intValue)."""
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    elif isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return _count(raw)


def _number(raw):
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            return None
    return _cost(raw)


class Telemetry:
    """What one export says, in the write path's shapes: sessions, messages, responses."""

    def __init__(self):
        self.sessions, self.messages, self.responses, self.rejected = {}, [], {}, 0

    def session(self, attrs, source, when):
        """The session an event belongs to (a subagent's own, named as the importer names it)."""
        session_id = attrs.get("session.id") or attrs.get("conversation.id")  # Claude Code's, Codex's
        if not isinstance(session_id, str) or not session_id:
            return None
        agent = attrs.get("agent_id")
        key = f"{session_id}/agent-{agent}" if isinstance(agent, str) and agent else session_id
        s = self.sessions.setdefault(key, {"externalId": key, "source": source, "first": when, "last": when,
                                           "parentExternalId": session_id if key != session_id else None})
        if when:
            s["first"] = min(filter(None, (s["first"], when)))
            s["last"] = max(filter(None, (s["last"], when)))
        return s

    def event(self, record, resource, source):
        attrs = attributes(record.attributes)
        handler = HANDLERS.get(event_name(value(record.body), attrs))
        if handler is None:
            return  # start-up, hook, settings and streaming events say nothing of the session's work
        when = _when(attrs.get("event.timestamp")) or (record.time_unix_nano // 1_000_000 or None)
        session = self.session(attrs, source, when)
        if session is not None:
            handler(self, attrs, session, when)

    def _message(self, wire):
        try:
            self.messages.append(schemas.message_in.load({k: v for k, v in wire.items() if v is not None}))
        except ValidationError:
            self.rejected += 1

    def _on_user_prompt(self, attrs, session, when):
        text = attrs.get("prompt")
        if not isinstance(text, str) or not text or text == PROMPT_HIDDEN:
            return  # the prompt was not logged: its length alone is no message
        session.setdefault("title", text[:4096])  # the first prompt, as the importer titles it
        uuid = attrs.get("message.uuid") or f"{attrs.get('prompt.id')}:{attrs.get('event.sequence')}"
        self._message({"sessionExternalId": session["externalId"], "externalId": f"{ingest.OTEL}{uuid}",
                       "role": "user", "textContent": text, "createdAt": when,
                       "parts": [{"type": "text", "content": text}]})

    def _on_assistant_response(self, attrs, session, when):
        text = attrs.get("response")
        if not isinstance(text, str) or not text:
            return
        uuid = attrs.get("message.uuid") or attrs.get("request_id") or attrs.get("event.sequence")
        self._message({"sessionExternalId": session["externalId"], "externalId": f"{ingest.OTEL}{uuid}",
                       "role": "assistant", "textContent": text, "createdAt": when, "model": attrs.get("model"),
                       "parts": [{"type": "text", "content": text}]})

    def _on_tool_result(self, attrs, session, when):
        tool_id, name = attrs.get("tool_use_id"), attrs.get("tool_name")
        if not isinstance(tool_id, str) or not tool_id:
            return
        call = {"id": tool_id, "name": name}
        # With OTEL_LOG_TOOL_DETAILS=1: the tool's input as the model gave it (else its summary)
        details = attrs.get("tool_input") or attrs.get("tool_parameters")
        if isinstance(details, str):
            try:
                call["input"] = json.loads(details)
            except ValueError:
                call["input"] = details
        success = str(attrs.get("success", "")).lower()
        self._message({"sessionExternalId": session["externalId"], "externalId": f"{ingest.OTEL}{tool_id}",
                       "role": "assistant", "textContent": "", "createdAt": when,
                       "durationMs": _int(attrs.get("duration_ms")) or None,
                       "parts": [{"type": "tool-call", "content": call}],
                       "toolSucceeded": success == "true" if success in ("true", "false") else None})

    def _on_api_request(self, attrs, session, when):
        request_id = attrs.get("request_id")
        key = (f"{ingest.OTEL_REQUEST}{request_id}" if isinstance(request_id, str) and request_id else
               f"{ingest.OTEL}{session['externalId']}:{attrs.get('prompt.id')}:{attrs.get('event.sequence')}")
        model = attrs.get("model") if isinstance(attrs.get("model"), str) else None
        write = _int(attrs.get("cache_creation_tokens"))
        self.responses[key] = {
            "key": key, "session_external_id": session["externalId"], "message_external_id": "", "model": model,
            "input_tokens": _int(attrs.get("input_tokens")), "output_tokens": _int(attrs.get("output_tokens")),
            "cache_write_tokens": write, "cache_read_tokens": _int(attrs.get("cache_read_tokens")),
            "cache_write_1h_tokens": min(write, _int(attrs.get("cache_creation_1h_tokens"))),
            "cost_usd": _number(attrs.get("cost_usd")), "created_at": when or 0}
        if model:
            session["model"] = model

    # Codex

    def _codex_user_prompt(self, attrs, session, when):
        text = attrs.get("prompt")
        if not isinstance(text, str) or not text:
            return  # log_user_prompt is off
        session.setdefault("title", text[:4096])
        self._message({"sessionExternalId": session["externalId"],
                       "externalId": f"{ingest.OTEL}{session['externalId']}:prompt:{attrs.get('event.timestamp')}",
                       "role": "user", "textContent": text, "createdAt": when, "model": attrs.get("model"),
                       "parts": [{"type": "text", "content": text}]})

    def _codex_tool_result(self, attrs, session, when):
        call_id = attrs.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            return
        call = {"id": call_id, "name": attrs.get("tool_name")}
        arguments = attrs.get("arguments")
        if isinstance(arguments, str):
            try:
                call["input"] = json.loads(arguments)
            except ValueError:
                call["input"] = arguments
        parts = [{"type": "tool-call", "content": call}]
        if isinstance(attrs.get("output"), str):
            parts.append({"type": "tool-result", "content": {"toolUseId": call_id, "content": attrs["output"],
                                                            "isError": str(attrs.get("success")).lower() == "false"}})
        self._message({"sessionExternalId": session["externalId"], "externalId": f"{ingest.OTEL}{call_id}",
                       "role": "assistant", "textContent": "", "createdAt": when,
                       "durationMs": _int(attrs.get("duration_ms")) or None, "parts": parts})

    def _codex_response(self, attrs, session, when):
        if "input_token_count" not in attrs:
            return  # the kind alone (each completed response is logged twice, once with its counts)
        total_input = _int(attrs.get("input_token_count"))
        cached = min(_int(attrs.get("cached_token_count")), total_input)
        written = min(_int(attrs.get("cache_write_token_count")), total_input - cached)  # inside the input too
        model = attrs.get("model") if isinstance(attrs.get("model"), str) else None
        # No response id in the event: keyed by its time, so the rollout's copy (keyed by the
        # response id) cannot be matched, and ingest._counted takes the file's when both exist.
        key = f"{ingest.OTEL}{session['externalId']}:{attrs.get('event.timestamp')}"
        self.responses[key] = {
            "key": key, "session_external_id": session["externalId"], "message_external_id": "", "model": model,
            "input_tokens": total_input - cached - written,
            "output_tokens": _int(attrs.get("output_token_count")), "cache_read_tokens": cached,
            "cache_write_tokens": written, "cache_write_1h_tokens": 0,
            "cost_usd": None, "created_at": when or 0}
        if model:
            session["model"] = model

    # Gemini CLI

    def _gemini_user_prompt(self, attrs, session, when):
        text = attrs.get("prompt")
        if not isinstance(text, str) or not text:
            return  # logPrompts is off: the length alone is no message
        session.setdefault("title", text[:4096])
        self._message({"sessionExternalId": session["externalId"],
                       "externalId": f"{ingest.OTEL}{session['externalId']}:prompt:{attrs.get('event.timestamp')}",
                       "role": "user", "textContent": text, "createdAt": when,
                       "parts": [{"type": "text", "content": text}]})

    def _gemini_tool_call(self, attrs, session, when):
        name = attrs.get("function_name")
        if not isinstance(name, str) or not name:
            return
        call = {"id": f"{name}:{attrs.get('event.timestamp')}", "name": name}
        if isinstance(attrs.get("function_args"), str):
            try:
                call["input"] = json.loads(attrs["function_args"])
            except ValueError:
                call["input"] = attrs["function_args"]
        success = str(attrs.get("success", "")).lower()
        self._message({"sessionExternalId": session["externalId"],
                       "externalId": f"{ingest.OTEL}{session['externalId']}:tool:{attrs.get('event.timestamp')}",
                       "role": "assistant", "textContent": "", "createdAt": when,
                       "durationMs": _int(attrs.get("duration_ms")) or None,
                       "parts": [{"type": "tool-call", "content": call}],
                       "toolSucceeded": success == "true" if success in ("true", "false") else None})

    def _gemini_response(self, attrs, session, when):
        chunks = _chunks(attrs.get("response_text"))
        response_id = next((c.get("responseId") for c in chunks if isinstance(c.get("responseId"), str)), None)
        model = attrs.get("model") if isinstance(attrs.get("model"), str) else None
        role = attrs.get("role") if isinstance(attrs.get("role"), str) else "main"
        total_input, cached = _int(attrs.get("input_token_count")), _int(attrs.get("cached_content_token_count"))
        tokens = {"input_tokens": max(0, total_input - cached) + _int(attrs.get("tool_token_count")),
                  "cache_read_tokens": min(cached, total_input), "cache_write_tokens": 0,
                  "output_tokens": _int(attrs.get("output_token_count")) + _int(attrs.get("thoughts_token_count"))}
        ident = response_id or attrs.get("event.timestamp")
        # The main thread's answers are the chat file's too (which then counts them); a utility
        # call (the model router) is in no file, so it is kept as a request the file lacks.
        key = (f"{ingest.OTEL_REQUEST}{ident}" if role.startswith("utility") and response_id else
               f"{ingest.OTEL}{session['externalId']}:{ident}")
        self.responses[key] = {"key": key, "session_external_id": session["externalId"], "message_external_id": "",
                               "model": model, **tokens, "cache_write_1h_tokens": 0, "cost_usd": None,
                               "created_at": when or 0}
        if role.startswith("utility"):
            return
        if model:
            session["model"] = model
        text = "".join(part["text"] for chunk in chunks for candidate in chunk.get("candidates") or []
                       if isinstance(candidate, dict) for part in (candidate.get("content") or {}).get("parts") or []
                       if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"))
        if text:
            self._message({"sessionExternalId": session["externalId"],
                           "externalId": f"{ingest.OTEL}{session['externalId']}:answer:{ident}",
                           "role": "assistant", "textContent": text, "createdAt": when, "model": model,
                           "parts": [{"type": "text", "content": text}]})

    def point(self, metric_name, point, temporality, source):
        """A data point of claude_code.token.usage / cost.usage: a response row per session,
        model and export window (a delta's window is its own; a cumulative one's running total
        keeps one key, and the larger copy wins)."""
        attrs = attributes(point.attributes)
        amount = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
        when = point.time_unix_nano // 1_000_000 or None
        session = self.session(attrs, source, when)
        if session is None or attrs.get("agent_id"):
            return
        model = attrs.get("model") if isinstance(attrs.get("model"), str) else None
        key = f"{ingest.OTEL_METRIC}{session['externalId']}:{model}:{attrs.get('agent.name') or ''}:{point.start_time_unix_nano}"
        row = self.responses.setdefault(key, {
            "key": key, "session_external_id": session["externalId"], "message_external_id": "", "model": model,
            **{name: 0 for name in (*ingest.TOKEN_KINDS, "cache_write_1h_tokens")}, "cost_usd": None,
            "created_at": when or 0})
        if metric_name == "claude_code.cost.usage":
            row["cost_usd"] = _number(amount)
        elif attrs.get("type") in TOKEN_TYPES:
            row[TOKEN_TYPES[attrs["type"]]] = _int(amount)

    def sessions_in(self):
        out = []
        for s in self.sessions.values():
            wire = {k: s.get(k) for k in ("externalId", "source", "parentExternalId", "model", "title")}
            wire["createdAt"] = s["first"]
            try:
                data = schemas.session_in.load({k: v for k, v in wire.items() if v is not None})
            except ValidationError:
                self.rejected += 1
                continue
            if s["last"] is not None:
                data["updated_at"] = s["last"]
            out.append(data)
        return out

    def write(self, user_id):
        if self.sessions:
            ingest.ingest_telemetry(user_id, self.sessions_in(), self.messages, list(self.responses.values()))


def _when(text):
    try:
        return schemas.EpochMs().deserialize(text) if isinstance(text, str) and text else None
    except ValidationError:
        return None


def _chunks(response_text):
    """Gemini's ``response_text``: one GenerateContentResponse, or the list a stream was."""
    try:
        chunks = json.loads(response_text) if isinstance(response_text, str) else None
    except ValueError:
        return []
    chunks = [chunks] if isinstance(chunks, dict) else chunks
    return [c for c in chunks if isinstance(c, dict)] if isinstance(chunks, list) else []


HANDLERS = {
    "claude_code.user_prompt": Telemetry._on_user_prompt,
    "claude_code.assistant_response": Telemetry._on_assistant_response,
    "claude_code.tool_result": Telemetry._on_tool_result,
    "claude_code.api_request": Telemetry._on_api_request,
    "codex.user_prompt": Telemetry._codex_user_prompt,
    "codex.tool_result": Telemetry._codex_tool_result,
    "codex.sse_event:response.completed": Telemetry._codex_response,
    "gemini_cli.user_prompt": Telemetry._gemini_user_prompt,
    "gemini_cli.tool_call": Telemetry._gemini_tool_call,
    "gemini_cli.api_response": Telemetry._gemini_response,
}
HANDLED = frozenset(HANDLERS)
