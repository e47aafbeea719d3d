"""OTLP over HTTP: the agents' own telemetry at /v1/logs and /v1/metrics, JSON or protobuf
(/v1/traces is taken and left unread: agents that export all three signals, as Gemini CLI
does, would otherwise log an error for every export).

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
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .. import schemas
from ..auth import require_user
from ..errors import ApiError
from . import telemetry
from .telemetry import HANDLED, METRICS, Telemetry, attributes

bp = Blueprint("otlp", __name__)
bp.before_request(require_user)

PROTOBUF = "application/x-protobuf"
MAX_INFLATED = 64 * 1024 * 1024  # a compressed body may not unpack past this


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


def _source(resource):
    return telemetry.source(attributes(resource.attributes).get("service.name"))


def _json_value(any_value):
    return next(iter(any_value.values()), None) if isinstance(any_value, dict) else None


def _json_attributes(record):
    """A JSON log record's attributes that name its event (read before protobuf's parser)."""
    pairs = record.get("attributes")
    return {a.get("key"): _json_value(a.get("value")) for a in pairs if isinstance(a, dict)
            and a.get("key") in telemetry.NAMING} if isinstance(pairs, list) else {}


def _kept(items, wanted):
    return [item for item in items if isinstance(item, dict) and wanted(item)] if isinstance(items, list) else items


def _prune_logs(tree):
    """Only the log records of the events read here (by their body, as Claude Code names them)."""
    def wanted(record):
        return telemetry.event_name(_json_value(record.get("body")), _json_attributes(record)) in HANDLED
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


@bp.post("/v1/traces")
def traces():
    """Spans say nothing the logs do not (and are most of the bytes): taken, not read."""
    _body()
    if request.mimetype not in (PROTOBUF, "application/json", ""):
        raise ApiError(415, f"Content-Type {request.mimetype!r}: send application/json or {PROTOBUF}.")
    return _answer(ExportTraceServiceResponse(), 0, "rejected_spans")
