"""The agent's own telemetry: what the real Claude Code 2.1.332 exported (recorded in
tests/data/claude-code-2.1, OTLP JSON and protobuf) sent to /v1/logs and /v1/metrics, alone and
beside the transcript in every order. The stand-in's usage (run.json) and Claude Code's own JSON
result are the only figures these tests know."""

import gzip
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI, LiveServer

CORPUS = Path(__file__).parent / "data" / "claude-code-2.1"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "otlp").is_dir())
KINDS = {"input_tokens": "inputTokens", "output_tokens": "outputTokens",
         "cache_creation_input_tokens": "cacheWriteTokens", "cache_read_input_tokens": "cacheReadTokens"}
JSON, PROTOBUF = "application/json", "application/x-protobuf"


def exports(name, only=None):
    """(path, content type, body) of a case's recorded exports, in the order they were sent."""
    out = []
    for f in sorted((CORPUS / name / "otlp").iterdir()):
        kind = "logs" if "logs" in f.name else "metrics"
        if only in (None, kind):
            out.append((f"/v1/{kind}", PROTOBUF if f.suffix == ".bin" else JSON, f.read_bytes()))
    return out


def manifest(name):
    folder = CORPUS / name
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("result*.json"))]
    return json.loads((folder / "run.json").read_text()), results


def usage_of(responses, kind):
    out = dict.fromkeys(KINDS.values(), 0)
    for r in responses:
        if r["kind"] == kind:
            for theirs, ours in KINDS.items():
                out[ours] += r["usage"][theirs]
    return out


def four(session):
    return {k: session[k] for k in KINDS.values()}


def tool_uses(name, session_file_glob):
    """The tool calls the agent's transcript records (the truth the counts are checked on)."""
    calls = set()
    for path in (CORPUS / name / "projects").rglob(session_file_glob):
        for line in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
            if line.get("type") == "assistant":
                calls |= {b["id"] for b in line["message"]["content"] if b.get("type") == "tool_use"}
    return calls


class Http:
    """A live serve, over HTTP, with one key."""

    def __init__(self, server, key):
        self.server, self.key = server, key

    def send(self, path, body, content_type=JSON, headers=None, key=True):
        request = urllib.request.Request(self.server.url + path, body, method="POST", headers={
            "Content-Type": content_type, **({"Authorization": f"Bearer {self.key}"} if key else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("Content-Type"), response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type"), err.read()

    def get(self, path):
        request = urllib.request.Request(self.server.url + path, headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def session(self, external_id):
        return self.get(f"/api/sessions/get?id={urllib.parse.quote(external_id)}")

    def replay(self, name, only=None):
        for path, content_type, body in exports(name, only):
            status, answer_type, answer = self.send(path, body, content_type)
            assert status == 200, (answer, self.server.logs()[-3000:])
            assert answer_type.startswith(content_type)  # OTLP answers in the form it was asked


@pytest.fixture
def http(db_path):
    server = LiveServer(db_path)
    try:
        yield Http(server, server.create_key())
    finally:
        server.stop()


@pytest.mark.parametrize("name", CASES)
def test_telemetry_alone_holds_claude_codes_own_figures(http, name):
    run, results = manifest(name)
    http.replay(name)
    session_id = results[0]["session_id"]
    got = http.session(session_id)
    main = got["session"]
    assert four(main) == usage_of(run["responses"], "main")
    assert main["source"] == "claude-code" and main["costBasis"] == "recorded"
    assert main["durationMs"] == main["updatedAt"] - main["createdAt"] > 0  # first event to last
    subagents = [s for s in http.get("/api/sessions?limit=50")["sessions"] if s["parentExternalId"] == session_id]
    if any(r["kind"] != "main" for r in run["responses"]):
        (sub,) = subagents
        assert four(sub) == usage_of(run["responses"], "subagent")
        assert sub["externalId"].startswith(f"{session_id}/agent-")
    else:
        assert subagents == []
    # The cost is Claude Code's own (its 1-hour cache writes at 2x input), to the cent's fraction.
    assert got["subagents"]["withSubagents"]["cost"] == pytest.approx(results[-1]["total_cost_usd"], rel=1e-9)
    # The conversation as far as telemetry tells it: the prompts, the answers, the tool calls.
    messages = got["messages"]
    assert main["title"] == messages[0]["textContent"] and messages[0]["role"] == "user"
    assert not [m for m in messages if not m["textContent"] and not m["parts"]]
    assert [m["createdAt"] for m in messages] == sorted(m["createdAt"] for m in messages)
    calls = {p["content"]["id"] for m in messages for p in m["parts"] if p["type"] == "tool-call"}
    assert calls == tool_uses(name, f"{session_id}.jsonl") and main["toolCallCount"] == len(calls)


def test_telemetry_sent_twice_is_counted_once(http):
    http.replay("c-resume")
    first = http.session(manifest("c-resume")[1][0]["session_id"])
    http.replay("c-resume")
    again = http.session(first["session"]["externalId"])
    assert four(again["session"]) == four(first["session"]) and again["session"]["cost"] == first["session"]["cost"]
    assert len(again["messages"]) == len(first["messages"])


def test_metrics_alone_give_the_tokens_and_cost(http):
    """Without the log events the metrics still hold every request's tokens and Claude Code's
    cost; they do not name the subagent, so its share is the parent's."""
    run, results = manifest("d-subagent")
    http.replay("d-subagent", only="metrics")
    main = http.session(results[0]["session_id"])["session"]
    both = {k: usage_of(run["responses"], "main")[k] + usage_of(run["responses"], "subagent")[k] for k in KINDS.values()}
    assert four(main) == both
    assert main["cost"] == pytest.approx(results[-1]["total_cost_usd"], rel=1e-9)


@pytest.mark.both_databases
@pytest.mark.parametrize("order", ["telemetry-first", "transcript-first", "metrics-transcript-logs"])
@pytest.mark.parametrize("name", ["c-resume", "d-subagent"])
def test_telemetry_and_transcript_in_any_order_are_one_copy(tmp_path, db_path, name, order):
    """The transcript's copy and telemetry's are the same requests: whatever arrives first,
    the session ends as the transcript alone makes it (tokens, cost, messages with the tool's
    output), never the sum of both."""
    run, results = manifest(name)
    alone_db, both_db = str(tmp_path / "alone.db"), db_path
    imported = lambda db: subprocess.run([*CLI, "import", "claude-code", str(CORPUS / name / "projects"), "--db", db],
                                         check=True, capture_output=True, timeout=120)
    imported(alone_db)
    steps = {"telemetry-first": [None, "import"], "transcript-first": ["import", None],
             "metrics-transcript-logs": ["metrics", "import", "logs"]}[order]
    server = LiveServer(both_db)
    try:
        http = Http(server, server.create_key())
        for step in steps:
            if step == "import":
                imported(both_db)
            else:
                http.replay(name, only=step)
        session_id = results[0]["session_id"]
        both = http.session(session_id)
        listed = http.get("/api/sessions?limit=50")["sessions"]
    finally:
        server.stop()
    server = LiveServer(alone_db)
    try:
        alone = Http(server, server.create_key()).session(session_id)
    finally:
        server.stop()
    assert four(both["session"]) == four(alone["session"]) == usage_of(run["responses"], "main")
    assert both["session"]["cost"] == pytest.approx(alone["session"]["cost"], rel=1e-9)
    assert both["subagents"]["withSubagents"]["cost"] == pytest.approx(results[-1]["total_cost_usd"], rel=1e-9)
    assert [m["externalId"] for m in both["messages"]] == [m["externalId"] for m in alone["messages"]]
    assert both["session"]["messageCount"] == len(both["messages"])
    assert len(listed) == (2 if name == "d-subagent" else 1)
    outputs = [p for m in both["messages"] for p in m["parts"] if p["type"] == "tool-result"]
    assert outputs and all(p["content"]["content"] for p in outputs)


@pytest.mark.both_databases
def test_a_plugins_messages_replace_telemetrys_copy(http):
    """A session telemetry made alone keeps its copy of the conversation only until a fuller
    copy arrives; after that, telemetry adds no messages (the tokens stay telemetry's)."""
    run, results = manifest("a-tool-call")
    session_id = results[0]["session_id"]
    http.replay("a-tool-call", only="logs")
    assert len(http.session(session_id)["messages"]) == 4
    prompt = {"sessionExternalId": session_id, "externalId": f"{session_id}-user-1", "role": "user",
              "textContent": "Please run a shell command that echoes the expected token count"}
    status, _, answer = http.send("/sync/message", json.dumps(prompt).encode())
    assert status == 200, answer
    http.replay("a-tool-call", only="logs")
    got = http.session(session_id)
    assert [m["externalId"] for m in got["messages"]] == [prompt["externalId"]]
    assert got["session"]["messageCount"] == 1
    assert four(got["session"]) == usage_of(run["responses"], "main")


def test_telemetrys_metrics_do_not_hold_a_plugins_prompt(http):
    """A plugin's resend of its prompt replaces it: telemetry's metrics are the session's figures,
    not the agent's file answering that prompt (which alone holds a prompt as the file gave it)."""
    _, results = manifest("d-subagent")
    session_id = results[0]["session_id"]
    prompt = {"sessionExternalId": session_id, "externalId": f"{session_id}-user-1", "role": "user",
              "textContent": "draft", "createdAt": 1_000_000_000_000}  # before the metrics' windows
    assert http.send("/sync/message", json.dumps(prompt).encode())[0] == 200
    http.replay("d-subagent", only="metrics")
    assert four(http.session(session_id)["session"])["outputTokens"] > 0  # the metrics were counted
    assert http.send("/sync/message", json.dumps({**prompt, "textContent": "the prompt as sent"}).encode())[0] == 200
    assert [m["textContent"] for m in http.session(session_id)["messages"]] == ["the prompt as sent"]


def test_a_plugins_uncounted_totals_do_not_replace_telemetrys(http):
    """claude-code-sync's promptTokens fold the cache in and carry no split: they are kept
    aside, and the session holds telemetry's exact kinds and Claude Code's cost, in either order."""
    run, results = manifest("a-tool-call")
    session_id = results[0]["session_id"]
    plugin = json.dumps({"externalId": session_id, "source": "claude-code", "promptTokens": 18036,
                         "completionTokens": 102, "cost": 0}).encode()
    assert http.send("/sync/session", plugin)[0] == 200
    http.replay("a-tool-call")
    assert http.send("/sync/session", plugin)[0] == 200
    session = http.session(session_id)["session"]
    assert four(session) == usage_of(run["responses"], "main")
    assert session["cost"] == pytest.approx(results[0]["total_cost_usd"], rel=1e-9) and session["costBasis"] == "recorded"


def test_otlp_refuses_what_it_cannot_take_and_loses_nothing_it_can(http):
    path, content_type, body = exports("a-tool-call", only="logs")[0]
    status, _, answer = http.send(path, body, key=False)
    assert status == 401 and "API key" in json.loads(answer)["error"]
    assert http.send(path, body, "text/plain")[0] == 415
    assert http.send(path, b"\x0a\xff\xff\xff", PROTOBUF)[0] == 400
    status, _, answer = http.send(path, b'{"resourceLogs": [', JSON)
    assert status == 400 and "OTLP JSON" in json.loads(answer)["error"]
    assert http.send(path, b"not gzip", JSON, {"Content-Encoding": "gzip"})[0] == 400
    assert http.send(path, body, JSON, {"Content-Encoding": "br"})[0] == 415
    # Compressed, as exporters may send it (OTEL_EXPORTER_OTLP_COMPRESSION=gzip), it is taken.
    assert http.send(path, gzip.compress(body), JSON, {"Content-Encoding": "gzip"})[0] == 200
    # A record the sync routes would refuse is left out and counted; the rest of the export is kept.
    export = json.loads(body)
    records = export["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    bad = json.loads(json.dumps(next(r for r in records if r["body"]["stringValue"] == "claude_code.api_request")))
    for attr in bad["attributes"]:
        if attr["key"] == "session.id":
            attr["value"] = {"stringValue": "s" * 300}
    # A prompt cut inside an emoji (a lone surrogate) is repaired, not refused.
    cut = next(r for r in records if r["body"]["stringValue"] == "claude_code.user_prompt")
    for attr in cut["attributes"]:
        if attr["key"] == "prompt":
            attr["value"] = {"stringValue": "deploy \ud83d"}
    records.append(bad)
    status, _, answer = http.send(path, json.dumps(export).encode(), JSON)
    assert status == 200
    assert json.loads(answer)["partialSuccess"]["rejectedLogRecords"] == "1"
    session_id = manifest("a-tool-call")[1][0]["session_id"]
    prompts = [m["textContent"] for m in http.session(session_id)["messages"] if m["role"] == "user"]
    assert prompts == ["deploy \ufffd"]
    assert len(http.get("/api/sessions?limit=50")["sessions"]) == 1


def test_traces_are_taken_unread_with_the_same_key_and_checks(http):
    spans = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "gemini-cli"}}]}, "scopeSpans": []}]}).encode()
    status, _, answer = http.send("/v1/traces", spans, JSON, key=False)
    assert status == 401 and "API key" in json.loads(answer)["error"]
    status, _, answer = http.send("/v1/traces", spans, JSON)
    assert status == 200 and json.loads(answer) == {}
    assert http.send("/v1/traces", gzip.compress(spans), JSON, {"Content-Encoding": "gzip"})[0] == 200
    assert http.send("/v1/traces", b"", PROTOBUF)[0] == 200
    assert http.send("/v1/traces", spans, "text/plain")[0] == 415
    assert http.send("/v1/traces", b"not gzip", JSON, {"Content-Encoding": "gzip"})[0] == 400
    assert http.get("/api/sessions?limit=5")["sessions"] == []  # nothing is made of spans
