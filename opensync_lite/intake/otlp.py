"""OTLP over HTTP: the agents' own telemetry at /v1/logs and /v1/metrics, JSON or protobuf.

Set three lines and Claude Code syncs with no plugin at all (README): its ``api_request``
events carry each request's four token kinds and its own cost, ``user_prompt`` and
``assistant_response`` the conversation, ``tool_result`` the tools it ran. Bodies are decoded by
the maintained ``opentelemetry-proto`` messages, never by hand; each record is turned into the
same wire dicts the sync routes validate, and handed to the one write path
(``ingest.ingest_telemetry``), which merges it with what the plugin and the transcript say.
"""

import gzip
import json
import zlib

from flask import Blueprint, Response, g, request
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from marshmallow import ValidationError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)

from .. import ingest, schemas
from ..auth import require_user
from ..errors import ApiError
from ..importers.bounds import cost as _cost, count as _count

bp = Blueprint("otlp", __name__)
bp.before_request(require_user)

PROTOBUF = "application/x-protobuf"
MAX_INFLATED = 64 * 1024 * 1024  # a compressed body may not unpack past this
SOURCES = {"claude-code": "claude-code"}  # service.name -> our source, for the agents mapped here
EVENT_PREFIX = "claude_code."
PROMPT_HIDDEN = "<REDACTED>"  # Claude Code's prompt text unless OTEL_LOG_USER_PROMPTS=1
TOKEN_TYPES = {"input": "input_tokens", "output": "output_tokens", "cacheRead": "cache_read_tokens",
               "cacheCreation": "cache_write_tokens"}


# --- decoding ------------------------------------------------------------------------------------

def _body():
    raw = request.get_data(cache=False)
    encoding = request.headers.get("Content-Encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            raw = inflater.decompress(raw, MAX_INFLATED)
        except (zlib.error, gzip.BadGzipFile):
            raise ApiError(400, f"The body is not valid {encoding}.") from None
        if inflater.unconsumed_tail:
            raise ApiError(413, "The body unpacks to more than 64 MiB.")
    elif encoding not in ("", "identity"):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported: send gzip or none.")
    return raw


def _decode(message, prune=None):
    """The request's OTLP body into ``message`` (protobuf or its JSON form), or a 4xx. A JSON
    body is first cut down by ``prune`` to the records read here (protobuf's JSON parser is
    pure Python, and start-up and hook events would otherwise be most of its work)."""
    raw = _body()
    if request.mimetype == PROTOBUF:
        try:
            message.ParseFromString(raw)
        except (DecodeError, ValueError, RecursionError):
            raise ApiError(400, "The body is not a valid OTLP protobuf message.") from None
    elif request.mimetype in ("application/json", ""):
        try:
            tree = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise ApiError(400, "The body is not valid OTLP JSON: not JSON.") from None
        try:
            json_format.ParseDict(_repaired(prune(tree) if prune else tree), message, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as err:
            raise ApiError(400, f"The body is not valid OTLP JSON: {str(err)[:200]}") from None
    else:
        raise ApiError(415, f"Content-Type {request.mimetype!r}: send application/json or {PROTOBUF}.")
    return message


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _repaired(node):
    """Every string of a decoded JSON body with its lone surrogates replaced (protobuf's
    strings must be valid Unicode; a prompt cut inside an emoji is stored, not refused)."""
    if isinstance(node, str):
        return schemas.repaired(node, "an OTLP body") if schemas.LONE_SURROGATE.search(node) else node
    if isinstance(node, list):
        return [_repaired(v) for v in node]
    if isinstance(node, dict):
        return {k: _repaired(v) for k, v in node.items()}
    return node


def _answer(response, rejected, field):
    """OTLP's own answer: an empty Export*ServiceResponse, or its partial success."""
    if rejected:
        setattr(response.partial_success, field, rejected)
        response.partial_success.error_message = f"{rejected} records were invalid and not kept"
    if request.mimetype == PROTOBUF:
        return Response(response.SerializeToString(), mimetype=PROTOBUF)
    return Response(json_format.MessageToJson(response, indent=None), mimetype="application/json")


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


# --- Claude Code's events as sessions, messages and responses --------------------------------------

class Telemetry:
    """What one export says, in the write path's shapes: sessions, messages, responses."""

    def __init__(self):
        self.sessions, self.messages, self.responses, self.rejected = {}, [], {}, 0

    def session(self, attrs, source, when):
        """The session an event belongs to (a subagent's own, named as the importer names it)."""
        session_id = attrs.get("session.id")
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
        name = attrs.get("event.name") or str(value(record.body) or "").removeprefix(EVENT_PREFIX)
        handler = getattr(self, f"_on_{name}", None)
        if handler is None:
            return  # start-up, hook and settings events say nothing of the session's work
        when = _when(attrs.get("event.timestamp")) or (record.time_unix_nano // 1_000_000 or None)
        session = self.session(attrs, source, when)
        if session is not None:
            handler(attrs, session, when)

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


def _source(resource):
    return SOURCES.get(attributes(resource.attributes).get("service.name"))


HANDLED = {f"{EVENT_PREFIX}{name}" for name in ("user_prompt", "assistant_response", "tool_result", "api_request")}
METRICS = ("claude_code.token.usage", "claude_code.cost.usage")


def _kept(items, wanted):
    return [item for item in items if isinstance(item, dict) and wanted(item)] if isinstance(items, list) else items


def _prune_logs(tree):
    """Only the log records of the events read here (by their body, as Claude Code names them)."""
    def wanted(record):
        body = record.get("body")
        return isinstance(body, dict) and body.get("stringValue") in HANDLED
    for resource in tree.get("resourceLogs") or () if isinstance(tree, dict) else ():
        for scope in resource.get("scopeLogs") or () if isinstance(resource, dict) else ():
            if isinstance(scope, dict):
                scope["logRecords"] = _kept(scope.get("logRecords"), wanted)
    return tree


def _prune_metrics(tree):
    for resource in tree.get("resourceMetrics") or () if isinstance(tree, dict) else ():
        for scope in resource.get("scopeMetrics") or () if isinstance(resource, dict) else ():
            if isinstance(scope, dict):
                scope["metrics"] = _kept(scope.get("metrics"), lambda m: m.get("name") in METRICS)
    return tree


@bp.post("/v1/logs")
def logs():
    export = _decode(ExportLogsServiceRequest(), _prune_logs)
    telemetry = Telemetry()
    for resource_logs in export.resource_logs:
        source = _source(resource_logs.resource)
        for scope in resource_logs.scope_logs:
            for record in scope.log_records:
                if source is not None:
                    telemetry.event(record, resource_logs.resource, source)
    telemetry.write(g.user_id)
    return _answer(ExportLogsServiceResponse(), telemetry.rejected, "rejected_log_records")


@bp.post("/v1/metrics")
def metrics():
    export = _decode(ExportMetricsServiceRequest(), _prune_metrics)
    telemetry = Telemetry()
    for resource_metrics in export.resource_metrics:
        source = _source(resource_metrics.resource)
        if source is None:
            continue
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name in METRICS and metric.WhichOneof("data") == "sum":
                    for point in metric.sum.data_points:
                        telemetry.point(metric.name, point, metric.sum.aggregation_temporality, source)
    telemetry.write(g.user_id)
    return _answer(ExportMetricsServiceResponse(), telemetry.rejected, "rejected_data_points")
