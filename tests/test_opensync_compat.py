"""OpenSync's own API under /opensync, checked against the shapes of OpenSync's code
(convex/http.ts routes, convex/api.ts listSessions, getSession, fullTextSearch, semanticSearch,
hybridSearch, getContext, exportSession, getStats; convex/evals.ts generateEvalExport): field
names and types, keys left out when unset, headers, error texts; a script written for OpenSync
run against a live `serve` by changing only its base URL; our own routes unchanged."""

import sys
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Api, LiveServer, downgrade_to_version_7, make_key, rows
from opensync_lite import create_app
from opensync_lite.opensync_api import answering
from opensync_lite.search.kinds import AVAILABLE_TYPES

pytestmark = pytest.mark.both_databases

BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
HOME = "/home/alice/shop"

# The keys of each OpenSync answer (convex/api.ts validators); optional ones only when set.
SESSION_KEYS = {"id", "externalId", "title", "projectPath", "projectName", "model", "provider", "promptTokens",
                "completionTokens", "totalTokens", "cost", "durationMs", "isPublic", "messageCount", "createdAt", "updatedAt"}
SESSION_OPTIONAL = {"title", "projectPath", "projectName", "model", "provider"}
MESSAGE_KEYS = {"id", "externalId", "role", "textContent", "model", "promptTokens", "completionTokens", "durationMs",
                "createdAt", "parts"}
FULLTEXT_KEYS = {"id", "externalId", "title", "projectPath", "model", "totalTokens", "cost", "messageCount", "createdAt"}
SEMANTIC_KEYS = {"_id", "externalId", "title", "projectPath", "projectName", "model", "totalTokens", "cost", "isPublic",
                 "messageCount", "createdAt", "updatedAt"}
DEEPEVAL_KEYS = {"input", "actual_output", "expected_output", "context", "retrieval_context", "metadata"}
DEEPEVAL_META = {"session_id", "model", "tool", "timestamp", "tokens_input", "tokens_output", "latency_ms", "project",
                 "tags", "eval_status"}


def _message(session, n, role, text, parts=None, **extra):
    return {"sessionExternalId": session, "externalId": f"{session}-{n}", "role": role, "textContent": text,
            "parts": parts if parts is not None else [{"type": "text", "content": text}],
            "createdAt": BASE + n * 1000, **extra}


SESSIONS = [
    {"externalId": "hook-0001", "source": "claude-code", "title": "Stripe webhook retries", "projectPath": HOME,
     "projectName": "shop", "model": "claude-sonnet-4", "provider": "anthropic", "promptTokens": 1200,
     "completionTokens": 300, "cost": 0.5, "durationMs": 9000, "createdAt": BASE},
    {"externalId": "queue-0002", "source": "cursor-sync", "title": "Webhook queue depth", "model": "gpt-5",
     "promptTokens": 40, "completionTokens": 10, "createdAt": BASE + 2 * DAY},
    {"externalId": "bare-0003", "createdAt": BASE + 4 * DAY},  # no source, title, model or project
    {"externalId": "parse-0004", "source": "opencode", "title": "Parser bug", "model": "gpt-5", "promptTokens": 5,
     "completionTokens": 5, "createdAt": BASE + 6 * DAY},
]
MESSAGES = [
    _message("hook-0001", 1, "user", f"Why does the webhook in {HOME}/api.py fail with error 500?"),
    _message("hook-0001", 2, "assistant", "", [{"type": "tool-call", "content": {"toolName": "Read",
                                                                                  "args": {"file_path": f"{HOME}/api.py"}}}]),
    _message("hook-0001", 3, "assistant", "The signature check is off.\n```python\nverify(sig)\n```",
             promptTokens=700, completionTokens=120, durationMs=2500),
    _message("hook-0001", 4, "user", "write a test for it"),
    _message("hook-0001", 5, "assistant", "Added test_webhook.py.", promptTokens=500, completionTokens=180, durationMs=1500),
    _message("queue-0002", 1, "user", "explain the webhook queue depth"),
    _message("queue-0002", 2, "assistant", "It grows when workers stall."),
    _message("bare-0003", 1, "system", "You are terse."),
    _message("bare-0003", 2, "user", "improve the webhook logging"),
    _message("bare-0003", 3, "assistant", "Logged each retry."),
    _message("parse-0004", 1, "user", "the parser crashes"),
    _message("parse-0004", 2, "assistant", "Fixed the parser."),
]


def embedded(app):
    """The vectors serve's background job would make, made now (when semantic search is installed)."""
    if "semantic" not in AVAILABLE_TYPES:
        return
    from opensync_lite import db
    from opensync_lite.semantic import encoders, worker

    with app.app_context():
        db.connect()
        worker.backfill(encoders.encoder_for(app.config))


@pytest.fixture
def history(app, api):
    """Four sessions posted through /opensync/sync/batch, three of them graded (one with
    OpenSync's `needs_review`, through our own PATCH)."""
    answer = api.post("/opensync/sync/batch", {"sessions": SESSIONS, "messages": MESSAGES})
    assert answer.status_code == 200 and answer.get_json()["errors"] == [], answer.get_json()
    for ext, body in (("hook-0001", {"evalStatus": "golden", "tags": ["billing", "api"]}),
                      ("queue-0002", {"evalStatus": "needs_review"}), ("bare-0003", {"evalStatus": "correct", "tags": ["misc"]})):
        response = api.client.patch(f"/api/sessions/{ext}", json=body, headers=api.headers)
        assert response.status_code == 200, response.get_json()
    embedded(app)
    return {s["externalId"]: s["id"] for s in api.get("/api/sessions").get_json()["sessions"]}


def ok(api, path, **params):
    response = api.get(path, query_string=params)
    assert response.status_code == 200, (path, response.get_data(as_text=True))
    return response


def bad(api, path, code, error=None, field=None, **params):
    response = api.get(path, query_string=params)
    body = response.get_json()
    assert response.status_code == code and response.mimetype == "application/json", (path, params, body)
    if error:
        assert body["error"] == error, body
    if field:
        assert field in body["fields"], body
    return body


# --- sessions ---------------------------------------------------------------------------------

def test_sessions_list_is_listsessions(api, history):
    sessions = ok(api, "/opensync/api/sessions").get_json()["sessions"]
    assert set(ok(api, "/opensync/api/sessions").get_json()) == {"sessions"}
    assert [s["externalId"] for s in sessions] == ["parse-0004", "bare-0003", "queue-0002", "hook-0001"]  # updatedAt desc
    for s in sessions:
        assert SESSION_KEYS - SESSION_OPTIONAL <= set(s) <= SESSION_KEYS, s
        assert isinstance(s["id"], str) and isinstance(s["isPublic"], bool) and isinstance(s["cost"], (int, float))
        assert all(isinstance(s[k], int) for k in ("promptTokens", "completionTokens", "totalTokens", "messageCount",
                                                     "createdAt", "updatedAt", "durationMs"))
    hook = sessions[-1]
    assert hook == {**hook, "id": history["hook-0001"], "title": "Stripe webhook retries", "projectPath": HOME,
                    "projectName": "shop", "model": "claude-sonnet-4", "provider": "anthropic", "promptTokens": 1200,
                    "completionTokens": 300, "totalTokens": 1500, "cost": 0.5, "durationMs": 9000, "messageCount": 5,
                    "createdAt": BASE, "isPublic": False}
    assert set(sessions[1]) == SESSION_KEYS - SESSION_OPTIONAL  # unset fields are left out, never null
    assert [s["externalId"] for s in ok(api, "/opensync/api/sessions", limit=2).get_json()["sessions"]] == \
        ["parse-0004", "bare-0003"]
    for value in ("0", "5001", "ten"):
        bad(api, "/opensync/api/sessions", 400, field="limit", limit=value)
    # OpenSync ignores parameters it does not know, and so does this route.
    assert len(ok(api, "/opensync/api/sessions", sortBy="nonsense").get_json()["sessions"]) == 4


def test_session_get_is_getsession(api, history):
    for ident in (history["hook-0001"], "hook-0001"):
        answer = ok(api, "/opensync/api/sessions/get", id=ident).get_json()
        assert set(answer) == {"session", "messages"} and set(answer["session"]) == SESSION_KEYS
        assert answer["session"]["id"] == history["hook-0001"]
    messages = answer["messages"]
    assert [m["externalId"] for m in messages] == [f"hook-0001-{n}" for n in range(1, 6)]
    for m in messages:
        assert MESSAGE_KEYS - {"model"} <= set(m) <= MESSAGE_KEYS, m
        assert all(set(p) == {"type", "content"} for p in m["parts"])
    assert messages[1]["parts"] == [{"type": "tool-call", "content": {"toolName": "Read", "args": {"file_path": f"{HOME}/api.py"}}}]
    assert messages[2]["promptTokens"] == 700 and messages[2]["durationMs"] == 2500
    # a page at a time past the first thousand (here two): where the rest is, in the answer
    first = ok(api, "/opensync/api/sessions/get", id="hook-0001", messagesLimit=2).get_json()
    assert [m["externalId"] for m in first["messages"]] == ["hook-0001-1", "hook-0001-2"]
    assert first["moreMessages"] is True and first["nextMessagesOffset"] == 2
    last = ok(api, "/opensync/api/sessions/get", id="hook-0001", messagesLimit=2, messagesOffset=4).get_json()
    assert [m["externalId"] for m in last["messages"]] == ["hook-0001-5"] and set(last) == {"session", "messages"}
    bad(api, "/opensync/api/sessions/get", 400, field="messagesLimit", id="hook-0001", messagesLimit=5001)
    bad(api, "/opensync/api/sessions/get", 400, "Missing session ID", "id")
    bad(api, "/opensync/api/sessions/get", 400, "Missing session ID", "id", id="")
    bad(api, "/opensync/api/sessions/get", 404, "Session not found", id="nope")


# --- search and context -----------------------------------------------------------------------

def test_search_answers_opensyncs_session_shapes_for_each_type(api, history):
    response = ok(api, "/opensync/api/search", q="webhook")
    results = response.get_json()["results"]
    assert set(response.get_json()) == {"results"} and response.headers["X-Search-Type"] == "fulltext"
    assert {r["externalId"] for r in results} == {"hook-0001", "queue-0002", "bare-0003"}
    hook = next(r for r in results if r["externalId"] == "hook-0001")
    assert hook == {"id": history["hook-0001"], "externalId": "hook-0001", "title": "Stripe webhook retries",
                    "projectPath": HOME, "model": "claude-sonnet-4", "totalTokens": 1500, "cost": 0.5,
                    "messageCount": 5, "createdAt": BASE}
    assert set(next(r for r in results if r["externalId"] == "bare-0003")) == FULLTEXT_KEYS - {"title", "projectPath", "model"}
    semantic = ok(api, "/opensync/api/search", q="webhook", type="semantic")
    assert semantic.headers["X-Search-Type"] == answering("semantic")  # what answered: semantic, when installed
    found = next(r for r in semantic.get_json()["results"] if r["externalId"] == "hook-0001")
    assert set(found) == SEMANTIC_KEYS and found["_id"] == history["hook-0001"] and found["isPublic"] is False
    hybrid = next(r for r in ok(api, "/opensync/api/search", q="webhook", type="hybrid").get_json()["results"]
                  if r["externalId"] == "hook-0001")
    assert set(hybrid) == FULLTEXT_KEYS | SEMANTIC_KEYS and hybrid["id"] == hybrid["_id"]
    assert len(ok(api, "/opensync/api/search", q="webhook", limit=1).get_json()["results"]) == 1
    bad(api, "/opensync/api/search", 400, "Missing query parameter 'q'", "q")
    bad(api, "/opensync/api/search", 400, field="type", q="webhook", type="vector")
    bad(api, "/opensync/api/search", 400, field="limit", q="webhook", limit="-1")
    # Ours keeps its hits.
    ours = ok(api, "/api/search", q="webhook").get_json()["results"][0]
    assert "matches" in ours and "snippet" in ours


def test_without_the_semantic_extra_search_and_context_answer_by_words(api, history, monkeypatch):
    monkeypatch.setitem(sys.modules, "wordllama", None)  # what an install without the extra sees
    monkeypatch.delenv("OPENSYNC_EMBED_URL", raising=False)
    for path, query in (("/opensync/api/context", {}), ("/opensync/api/search", {"type": "semantic"}),
                        ("/opensync/api/search", {"type": "hybrid"})):
        response = ok(api, path, q="webhook", **query)
        assert response.headers["X-Search-Type"] == "fulltext"
        assert "hook-0001" in response.get_data(as_text=True) or "Stripe webhook retries" in response.get_data(as_text=True)
    assert api.get("/api/search", query_string={"q": "webhook", "type": "semantic"}).status_code in (200, 503)


def test_context_is_getcontext(api, history):
    response = ok(api, "/opensync/api/context", q="webhook")
    answer = response.get_json()
    assert set(answer) == {"text", "sessionCount"} and answer["sessionCount"] >= 3  # by meaning, the fourth too
    assert response.headers["X-Search-Type"] == answering("hybrid")
    assert answer["text"].startswith('Relevant coding sessions for: "webhook"\n\n')
    assert "--- Session: Stripe webhook retries ---\nProject: /home/alice/shop\nModel: claude-sonnet-4\n\n" in answer["text"]
    messages = ok(api, "/opensync/api/context", q="webhook", format="messages", limit=1).get_json()
    assert set(messages) == {"messages", "sessionCount"} and messages["sessionCount"] == 1
    for m in messages["messages"]:
        assert set(m) == {"role", "content", "metadata"} and set(m["metadata"]) <= {"sessionId", "sessionTitle"}
    bad(api, "/opensync/api/context", 400, "Missing query parameter 'q'", "q")
    bad(api, "/opensync/api/context", 400, field="format", q="webhook", format="xml")


def test_stats_is_getstats(api, history):
    stats = ok(api, "/opensync/api/stats").get_json()
    assert stats == {"sessionCount": 4, "messageCount": 12, "totalTokens": 1500 + 50 + 0 + 10, "totalCost": 0.5,
                     "totalDurationMs": 9000, "modelUsage": {
                         "claude-sonnet-4": {"tokens": 1500, "cost": 0.5, "sessions": 1},
                         "gpt-5": {"tokens": 60, "cost": 0, "sessions": 2},
                         "unknown": {"tokens": 0, "cost": 0, "sessions": 1}}}


# --- one session's export ------------------------------------------------------------------------

def test_export_json_jsonl_markdown_are_exportsession(api, history):
    answer = ok(api, "/opensync/api/export", id="hook-0001").get_json()
    assert answer["session"] == {"id": history["hook-0001"], "title": "Stripe webhook retries", "model": "claude-sonnet-4"}
    assert [set(m) for m in answer["messages"]] == [{"role", "content"}] * 5
    assert answer["messages"][0] == {"role": "user", "content": f"Why does the webhook in {HOME}/api.py fail with error 500?"}
    assert answer["messages"][1] == {"role": "assistant", "content": ""}  # a tool call: no text
    assert ok(api, "/opensync/api/export", id="bare-0003").get_json()["session"] == {"id": history["bare-0003"]}
    jsonl = ok(api, "/opensync/api/export", id="hook-0001", format="jsonl").get_json()
    assert set(jsonl) == {"content", "filename"} and jsonl["filename"] == "Stripe-webhook-retries.jsonl"
    assert [json.loads(line) for line in jsonl["content"].split("\n")] == answer["messages"]
    assert ok(api, "/opensync/api/export", id="bare-0003", format="jsonl").get_json()["filename"] == "session.jsonl"
    markdown = ok(api, "/opensync/api/export", id="hook-0001", format="markdown")
    assert markdown.mimetype == "text/markdown"
    assert markdown.headers["Content-Disposition"] == 'attachment; filename="Stripe-webhook-retries.md"'
    text = markdown.get_data(as_text=True)
    assert text.startswith("# Stripe webhook retries\n\n- **Project:** /home/alice/shop\n- **Model:** claude-sonnet-4\n"
                           "- **Tokens:** 1500\n- **Cost:** $0.5000\n\n---\n\n## User\n\n")
    assert text.count("## Assistant") == 3
    bad(api, "/opensync/api/export", 400, "Missing session ID", "id")
    bad(api, "/opensync/api/export", 404, "Session not found", id="nope")
    bad(api, "/opensync/api/export", 400, field="format", id="hook-0001", format="pdf")


# --- evals --------------------------------------------------------------------------------------

def evals(api, **params):
    response = ok(api, "/opensync/api/export/evals", **params)
    assert response.headers["Content-Disposition"].startswith('attachment; filename="opensync-')
    return response


def test_evals_deepeval_per_turn(api, history):
    response = evals(api)
    assert response.mimetype == "application/json"
    cases = response.get_json()
    # Graded sessions only: hook (2 turns), queue (1), bare (1); the parser session is not graded.
    assert response.headers["X-Export-Sessions"] == "3" and response.headers["X-Export-TestCases"] == "4" == str(len(cases))
    assert response.headers["Content-Disposition"].endswith('.json"')
    for case in cases:
        assert set(case) == DEEPEVAL_KEYS and case["retrieval_context"] is None
        always = {"session_id", "model", "tool", "timestamp", "tokens_input", "tokens_output", "tags"}
        assert always <= set(case["metadata"]) <= DEEPEVAL_META
        assert case["metadata"]["timestamp"].endswith(".000Z")
    by_input = {c["input"]: c for c in cases}
    first = by_input["Why does the webhook in <project>/api.py fail with error 500?"]  # anonymized by default
    assert first["actual_output"].startswith("The signature check is off.")
    assert first["expected_output"] == first["actual_output"]  # golden: its answer is the expectation
    assert first["metadata"] == {"session_id": "hook-0001", "model": "claude-sonnet-4", "tool": "claude-code",
                                 "timestamp": "2026-01-01T00:00:00.000Z", "tokens_input": 700, "tokens_output": 120,
                                 "latency_ms": 2500, "project": "shop", "tags": ["api", "billing"], "eval_status": "golden"}
    second = by_input["write a test for it"]
    assert second["context"] == ["Why does the webhook in <project>/api.py fail with error 500?",
                                 first["actual_output"]] and second["metadata"]["tokens_output"] == 180
    queue = by_input["explain the webhook queue depth"]
    assert queue["metadata"]["tool"] == "cursor-sync" and queue["metadata"]["eval_status"] == "needs_review"
    assert queue["expected_output"] is None
    bare = by_input["improve the webhook logging"]
    assert bare["metadata"]["tool"] == "opencode" and bare["metadata"]["model"] == "unknown"  # as OpenSync shows none
    assert "project" not in bare["metadata"]
    assert HOME not in response.get_data(as_text=True)
    assert HOME in evals(api, anonymize="false").get_data(as_text=True)
    assert all(c["context"] == [] for c in evals(api, include_metadata="false").get_json())


def test_evals_turn_modes(api, history):
    full = {c["metadata"]["session_id"]: c for c in evals(api, turn_mode="full").get_json()}
    assert len(full) == 3
    hook = full["hook-0001"]
    assert hook["input"] == "Why does the webhook in <project>/api.py fail with error 500?\n\nwrite a test for it"
    assert hook["actual_output"].endswith("\n\nAdded test_webhook.py.") and hook["context"] == []
    assert hook["metadata"]["tokens_input"] == 1200 and hook["metadata"]["latency_ms"] == 9000  # the session's
    final = {c["metadata"]["session_id"]: c for c in evals(api, turn_mode="final_only").get_json()}
    assert final["hook-0001"]["input"] == "write a test for it" and len(final["hook-0001"]["context"]) == 2
    bad(api, "/opensync/api/export/evals", 400, field="turn_mode", turn_mode="every")


FILTERS = [
    ({"tool": "cursor-sync"}, {"queue-0002"}), ({"tool": "cursor"}, {"queue-0002"}),
    ({"tool": "opencode"}, {"bare-0003"}),  # OpenSync's default source for a session that names none
    ({"tool": "claude-code"}, {"hook-0001"}), ({"model": "gpt-5"}, {"queue-0002"}),
    ({"tags": "misc,billing"}, {"hook-0001", "bare-0003"}), ({"tags": "api"}, {"hook-0001"}),
    ({"status": "needs_review"}, {"queue-0002"}), ({"status": "needs-review"}, {"queue-0002"}),
    ({"status": "golden"}, {"hook-0001"}), ({"min_tokens": "50"}, {"hook-0001", "queue-0002"}),
    ({"date_from": "2026-01-03"}, {"queue-0002", "bare-0003"}), ({"date_to": "2026-01-03"}, {"hook-0001", "queue-0002"}),
    ({"date_from": "2026-01-02", "date_to": "2026-01-04"}, {"queue-0002"}),
]


def test_evals_filters(api, history):
    for params, sessions in FILTERS:  # one history for all: each case is one request
        response = evals(api, format="openai", **params)
        cases = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
        assert {c["metadata"]["session_id"] for c in cases} == sessions, params
        assert response.headers["X-Export-Sessions"] == str(len(sessions)), params


def test_evals_errors(api, other_api, history):
    bad(api, "/opensync/api/export/evals", 404, "No sessions match the specified filters", tool="gemini-cli")
    bad(other_api, "/opensync/api/export/evals", 404, "No eval-ready sessions found")
    bad(api, "/opensync/api/export/evals", 400, "Invalid format. Use: deepeval, openai, promptfoo, filesystem",
        "format", format="csv")
    for name, value in (("min_tokens", "many"), ("status", "great"), ("anonymize", "perhaps"), ("date_from", "yesterday"),
                        ("include_metadata", "2")):
        bad(api, "/opensync/api/export/evals", 400, field=name, **{name: value})
    bad(api, "/opensync/api/export/evals", 400, field="date_to", date_from="2026-01-05", date_to="2026-01-01")


def test_evals_openai_and_promptfoo_lines(api, history):
    response = evals(api, format="openai", turn_mode="full")  # always per turn, as OpenSync's
    assert response.mimetype == "application/x-ndjson" and response.headers["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert len(lines) == 4 == int(response.headers["X-Export-TestCases"])
    for line in lines:
        assert set(line) == {"input", "ideal", "metadata"} and set(line["metadata"]) == {"session_id", "model", "source"}
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in line["input"])
        assert line["input"][-1]["role"] == "user"
    second = next(line for line in lines if line["input"][-1]["content"] == "write a test for it")
    assert [m["role"] for m in second["input"]] == ["user", "assistant", "user"] and second["ideal"] == "Added test_webhook.py."
    promptfoo = evals(api, format="promptfoo")
    assert promptfoo.mimetype == "application/x-ndjson"
    tests = {t["vars"]["input"]: t for t in map(json.loads, promptfoo.get_data(as_text=True).splitlines())}
    hook = tests["Why does the webhook in <project>/api.py fail with error 500?"]
    assert hook["vars"] == {"input": hook["vars"]["input"], "language": "python", "task_type": "bug_fix"}
    assert hook["assert"] == [{"type": "llm-rubric", "value": "Response should be helpful and accurate"}]
    assert tests["write a test for it"]["vars"]["task_type"] == "code_generation"
    assert tests["explain the webhook queue depth"]["vars"] == {"input": "explain the webhook queue depth",
                                                                "task_type": "explanation"}
    assert "assert" not in tests["explain the webhook queue depth"]  # needs review: nothing to assert
    assert tests["improve the webhook logging"]["vars"]["task_type"] == "refactoring"


def test_evals_filesystem_bundle(api, history):
    response = evals(api, format="filesystem")
    assert response.mimetype == "application/json"
    bundle = response.get_json()
    assert set(bundle) == {"manifest", "files", "readme"}
    manifest = bundle["manifest"]
    assert set(manifest) == {"opensync_metadata", "sources", "models", "files"}
    meta = manifest["opensync_metadata"]
    assert set(meta) == {"export_version", "export_date", "total_sessions", "total_test_cases", "skipped_sessions"}
    assert (meta["export_version"], meta["total_sessions"], meta["total_test_cases"], meta["skipped_sessions"]) == ("1.0", 3, 4, 0)
    assert manifest["sources"] == {"opencode": 1, "claude-code": 1, "factory-droid": 0, "codex-cli": 0, "cursor-sync": 1}
    assert manifest["models"] == ["claude-sonnet-4", "gpt-5"]
    assert manifest["files"] == ["session-hook-000.txt", "session-queue-00.txt", "session-bare-000.txt"] == list(bundle["files"])
    hook = bundle["files"]["session-hook-000.txt"].split("\n")
    assert hook[:10] == ["=" * 80, "SESSION: hook-0001", "SOURCE: claude-code", "MODEL: claude-sonnet-4",
                         "DATE: 2026-01-01T00:00:00.000Z", "TOKENS: 1500", "STATUS: golden", "TAGS: api, billing",
                         "PROJECT: project", "=" * 80]
    assert hook[11:13] == ["[2026-01-01T00:00:01.000Z] USER:", "Why does the webhook in <project>/api.py fail with error 500?"]
    assert hook[-3:] == ["=" * 80, "END SESSION", "=" * 80]
    bare = bundle["files"]["session-bare-000.txt"]
    assert "SOURCE: opencode" in bare and "SYSTEM" not in bare and "STATUS: correct" in bare
    assert "STATUS: needs_review" in bundle["files"]["session-queue-00.txt"]
    assert "Sessions: 3" in bundle["readme"] and "Test cases: 4" in bundle["readme"]
    assert response.headers["X-Export-Sessions"] == "3" and response.headers["X-Export-TestCases"] == "4"
    assert "PROJECT: shop" in evals(api, format="filesystem", anonymize="false").get_json()["files"]["session-hook-000.txt"]


def test_evals_mask_secrets(api, history):
    token = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    api.post("/opensync/sync/message", _message("queue-0002", 3, "user", f"my token is {token}"))
    api.post("/opensync/sync/message", _message("queue-0002", 4, "assistant", "Rotate it."))
    for fmt in ("deepeval", "openai", "promptfoo", "filesystem"):
        response = evals(api, format=fmt)
        assert token not in response.get_data(as_text=True) and int(response.headers["X-Redacted-Secrets"]) >= 1, fmt
    assert token in evals(api, format="filesystem", redact="false").get_data(as_text=True)


# --- OpenSync's names on our own routes -------------------------------------------------------------

def test_our_routes_read_needs_review_and_cursor_sync(api, history):
    queue = api.session("queue-0002")["session"]
    assert queue["evalStatus"] == "needs-review" and queue["source"] == "cursor"  # stored our way
    for status in ("needs_review", "needs-review"):
        found = ok(api, "/api/sessions", evalStatus=status).get_json()["sessions"]
        assert [s["externalId"] for s in found] == ["queue-0002"]
    for source in ("cursor", "cursor-sync"):
        assert [s["externalId"] for s in ok(api, "/api/sessions", source=source).get_json()["sessions"]] == ["queue-0002"]
    assert ok(api, "/api/export/evals/preview", evalStatus="needs_review").get_json()["sessions"] == 1
    bad(api, "/api/sessions", 400, field="evalStatus", evalStatus="needs review")
    patched = api.client.patch("/api/sessions/parse-0004", json={"evalStatus": "needs_review"}, headers=api.headers)
    assert patched.get_json()["session"]["evalStatus"] == "needs-review"


# --- sync under the same base URL, keys, users ----------------------------------------------------------

def test_sync_routes_under_the_prefix(api, client):
    assert client.get("/opensync/health").get_json()["status"] == "ok"  # no key, as OpenSync's
    first = api.post("/opensync/sync/session", {"externalId": "cs-1", "source": "cursor-sync", "title": "From cursor"})
    assert first.status_code == 200 and set(first.get_json()) == {"ok", "sessionId"}
    message = api.post("/opensync/sync/message", {"sessionExternalId": "cs-1", "externalId": "cm-1", "role": "user",
                                                   "textContent": "hi"})
    assert message.status_code == 200 and message.get_json()["ok"] is True and "messageId" in message.get_json()
    assert api.get("/opensync/sync/sessions/list").get_json() == {"sessionIds": ["cs-1"]}
    batch = api.post("/opensync/sync/batch", {"sessions": [{"externalId": "cs-2"}, {"title": "no id"}], "messages": []})
    answer = batch.get_json()
    assert (answer["ok"], answer["sessions"], answer["messages"]) == (True, 1, 0)
    assert len(answer["errors"]) == 1 and isinstance(answer["errors"][0], str) and "session 1" in answer["errors"][0]
    assert api.session("cs-1")["session"]["source"] == "cursor"


def test_migration_to_version_8_reads_cursor_sync_as_cursor(db_path):
    """Sessions and keys stored as "cursor-sync" before intake read it as "cursor" become "cursor"."""
    app = create_app({"OPENSYNC_DB": db_path})
    api = Api(app.test_client(), make_key(app))
    api.post("/sync/batch", {"sessions": [{"externalId": "c1", "source": "cursor"}, {"externalId": "o1", "source": "opencode"}]})
    rows(db_path, "UPDATE sessions SET source = 'cursor-sync' WHERE external_id = 'c1'")  # as an older version stored it
    rows(db_path, "UPDATE api_keys SET default_source = 'cursor-sync'")
    app.extensions["opensync"].close()
    downgrade_to_version_7(db_path)
    app = create_app({"OPENSYNC_DB": db_path})
    try:
        assert sorted(rows(db_path, "SELECT external_id, source FROM sessions")) == [("c1", "cursor"), ("o1", "opencode")]
        assert rows(db_path, "SELECT DISTINCT default_source FROM api_keys") == [("cursor",)]
        api = Api(app.test_client(), make_key(app))
        assert [s["externalId"] for s in api.get("/api/sessions?source=cursor").get_json()["sessions"]] == ["c1"]
    finally:
        app.extensions["opensync"].close()


def compat_routes(app):
    return sorted({(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/opensync/")
                   for method in rule.methods - {"HEAD", "OPTIONS"}})


def test_every_route_refuses_a_missing_or_wrong_key(app, client, history):
    routes = compat_routes(app)
    assert len(routes) == 12
    for method, path in routes:
        if path == "/opensync/health":
            continue
        for headers in ({}, {"Authorization": "Bearer osk_" + "W" * 32}, {"Authorization": "Basic abc"}):
            response = client.open(path, method=method, headers=headers, json={} if method == "POST" else None,
                                   query_string={"id": "hook-0001", "q": "webhook"})
            assert response.status_code == 401 and set(response.get_json()) == {"error"}, (method, path, headers)


def test_another_users_sessions_never_show(api, other_api, history):
    other_api.post("/opensync/sync/batch", {"sessions": [{"externalId": "mine", "title": "Mallory webhook"}], "messages": [
        _message("mine", 1, "user", "a webhook of my own"), _message("mine", 2, "assistant", "yours")]})
    other_api.client.patch("/api/sessions/mine", json={"evalStatus": "golden"}, headers=other_api.headers)
    seen = [ok(other_api, "/opensync/api/sessions"), ok(other_api, "/opensync/api/search", q="webhook", type="hybrid"),
            ok(other_api, "/opensync/api/context", q="webhook", format="messages"), ok(other_api, "/opensync/api/stats"),
            ok(other_api, "/opensync/api/export/evals"), ok(other_api, "/opensync/api/export/evals", format="filesystem"),
            ok(other_api, "/opensync/sync/sessions/list")]
    for response in seen:
        text = response.get_data(as_text=True)
        assert "Mallory" in text or "mine" in text or '"sessionCount":1' in text.replace(" ", ""), text
        assert not any(word in text for word in ("hook-0001", "Stripe", "queue-0002", "signature")), text
    for ident in (history["hook-0001"], "hook-0001"):
        bad(other_api, "/opensync/api/sessions/get", 404, "Session not found", id=ident)
        bad(other_api, "/opensync/api/export", 404, "Session not found", id=ident)


# --- a script written for OpenSync, pointed at a live server -----------------------------------------

def opensync_script(base_url, key):
    """What an OpenSync API user's script does (its README's calls), given only a base URL."""
    def get(path, **params):
        request = urllib.request.Request(f"{base_url}{path}?{urllib.parse.urlencode(params)}",
                                         headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read()), response.headers

    sessions, _ = get("/api/sessions", limit=10)
    first = sessions["sessions"][0]
    detail, _ = get("/api/sessions/get", id=first["id"])
    found, _ = get("/api/search", q="webhook", type="hybrid")
    context, _ = get("/api/context", q="webhook", format="messages")
    stats, _ = get("/api/stats")
    exported, _ = get("/api/export", id=first["id"], format="json")
    cases, headers = get("/api/export/evals", format="deepeval")
    return {"titles": [s.get("title") for s in sessions["sessions"]], "messages": len(detail["messages"]),
            "found": sorted(r["externalId"] for r in found["results"]), "context": context["sessionCount"],
            "sessions": stats["sessionCount"], "exported": exported["session"]["id"] == first["id"],
            "cases": (len(cases), headers["X-Export-TestCases"])}


def test_an_opensync_script_works_by_changing_its_base_url(tmp_path):
    """Over HTTP once (the shapes are the database's either way, checked on both above)."""
    db_path = str(tmp_path / "live.db")
    app = create_app({"OPENSYNC_DB": db_path})
    key = make_key(app)  # in this process: a second CLI start-up would cost seconds
    app.extensions["opensync"].close()
    server = LiveServer(db_path, args=["--no-embed"])  # words alone: what hybrid finds does not wait on a job
    try:
        body = json.dumps({"sessions": SESSIONS, "messages": MESSAGES}).encode()
        post = urllib.request.Request(f"{server.url}/opensync/sync/batch", data=body, method="POST",
                                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert json.loads(urllib.request.urlopen(post).read())["errors"] == []
        grade = urllib.request.Request(f"{server.url}/api/sessions/hook-0001", data=b'{"evalStatus": "golden"}',
                                       method="PATCH", headers={"Authorization": f"Bearer {key}",
                                                                "Content-Type": "application/json"})
        urllib.request.urlopen(grade).read()
        answer = opensync_script(f"{server.url}/opensync", key)
        assert answer == {"titles": ["Parser bug", None, "Webhook queue depth", "Stripe webhook retries"], "messages": 2,
                          "found": ["bare-0003", "hook-0001", "queue-0002"], "context": 3, "sessions": 4, "exported": True,
                          "cases": (2, "2")}
        # The same script against our own root fails or answers otherwise where the shapes differ,
        # which is why the prefix exists.
        try:
            ours = opensync_script(server.url, key)
        except (urllib.error.HTTPError, KeyError):
            ours = None
        assert ours != answer
    finally:
        server.stop()
