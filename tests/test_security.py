"""Keys, isolation between users, and what errors and logs may show."""

import json
import urllib.error
import urllib.request

import pytest

from opensync_lite import auth, queries, shares

from conftest import snapshot

pytestmark = pytest.mark.both_databases

# Every route a key can reach, with how a second user tries to touch the first user's data.
# {id} and {ext} are the first user's session id and externalId.
ISOLATION = {
    ("GET", "/api/sessions"): ["/api/sessions", "/api/sessions?q=secret", "/api/sessions?source=claude-code"],
    ("GET", "/api/sessions/filters"): ["/api/sessions/filters"],
    ("GET", "/api/sessions/get"): ["/api/sessions/get?id={id}", "/api/sessions/get?id={ext}",
                                   "/api/sessions/get?externalId={ext}"],
    ("DELETE", "/api/sessions/<ident>"): ["/api/sessions/{id}", "/api/sessions/{ext}"],
    ("DELETE", "/api/sessions"): ["/api/sessions?id={id}", "/api/sessions?externalId={ext}"],
    ("PATCH", "/api/sessions/<ident>"): ["/api/sessions/{id}", "/api/sessions/{ext}"],
    ("PATCH", "/api/sessions"): ["/api/sessions?id={id}", "/api/sessions?externalId={ext}"],
    ("GET", "/api/search"): ["/api/search?q=secret"],
    ("GET", "/api/export"): ["/api/export?id={id}", "/api/export?id={ext}&format=markdown",
                             "/api/export?externalId={ext}"],
    ("GET", "/api/export/sessions"): ["/api/export/sessions?format=json", "/api/export/sessions?format=csv"],
    ("GET", "/api/files"): ["/api/files", "/api/files?path=/home/v/secret.py", "/api/files?path=/home/v/&prefix=true"],
    ("GET", "/api/export/evals"): ["/api/export/evals?ids={id}", "/api/export/evals?format=text&granularity=session"],
    ("GET", "/api/export/evals/preview"): ["/api/export/evals/preview?ids={id}", "/api/export/evals/preview?redact=false"],
    ("POST", "/api/sessions/<ident>/shares"): ["/api/sessions/{id}/shares", "/api/sessions/{ext}/shares"],
    ("GET", "/api/shares"): ["/api/shares"],
    ("DELETE", "/api/shares/<int:share_id>"): ["/api/shares/{share}"],
    # The answer repeats `q`: asked for a word of the victim's title that `leaks` does not look for.
    ("GET", "/api/context"): ["/api/context?q=plans", "/api/context?q=plans&format=messages&source=claude-code"],
    ("POST", "/mcp"): ["/mcp"],  # each tool, called for the first user's data (MCP_CALLS)
    ("GET", "/api/stats"): ["/api/stats"],
    ("GET", "/api/stats/<any(sources, models, providers, projects):group>"):
        ["/api/stats/sources", "/api/stats/models", "/api/stats/providers", "/api/stats/projects"],
    ("GET", "/api/stats/daily"): ["/api/stats/daily?days=3"],
    ("GET", "/sync/sessions/list"): ["/sync/sessions/list"],
    ("POST", "/sync/session"): ["/sync/session"],
    ("POST", "/sync/message"): ["/sync/message"],
    ("POST", "/sync/batch"): ["/sync/batch"],
    ("POST", "/v1/logs"): ["/v1/logs"],
    ("POST", "/v1/metrics"): ["/v1/metrics"],
    ("POST", "/v1/traces"): ["/v1/traces"],
    # OpenSync's own routes and shapes (opensync_api.py).
    ("GET", "/opensync/api/sessions"): ["/opensync/api/sessions", "/opensync/api/sessions?limit=500"],
    ("GET", "/opensync/api/sessions/get"): ["/opensync/api/sessions/get?id={id}", "/opensync/api/sessions/get?id={ext}"],
    ("GET", "/opensync/api/search"): ["/opensync/api/search?q=secret", "/opensync/api/search?q=secret&type=semantic",
                                      "/opensync/api/search?q=secret&type=hybrid"],
    ("GET", "/opensync/api/context"): ["/opensync/api/context?q=plans", "/opensync/api/context?q=plans&format=messages"],
    ("GET", "/opensync/api/stats"): ["/opensync/api/stats"],
    ("GET", "/opensync/api/export"): ["/opensync/api/export?id={id}", "/opensync/api/export?id={ext}&format=jsonl",
                                      "/opensync/api/export?id={ext}&format=markdown"],
    ("GET", "/opensync/api/export/evals"): ["/opensync/api/export/evals", "/opensync/api/export/evals?format=filesystem",
                                            "/opensync/api/export/evals?format=openai&tool=claude-code"],
    ("GET", "/opensync/sync/sessions/list"): ["/opensync/sync/sessions/list"],
    ("POST", "/opensync/sync/session"): ["/opensync/sync/session"],
    ("POST", "/opensync/sync/message"): ["/opensync/sync/message"],
    ("POST", "/opensync/sync/batch"): ["/opensync/sync/batch"],
    # Limits and budgets (limits_api.py, budgets_api.py).
    ("GET", "/api/stats/blocks"): ["/api/stats/blocks", "/api/stats/blocks?source=claude-code"],
    ("GET", "/api/limits/snapshots"): ["/api/limits/snapshots"],
    ("POST", "/api/limits/snapshots"): ["/api/limits/snapshots"],
    ("GET", "/api/budgets"): ["/api/budgets"],
    ("POST", "/api/budgets"): ["/api/budgets"],
    ("GET", "/api/budgets/<int:budget_id>"): ["/api/budgets/{budget}"],
    ("PATCH", "/api/budgets/<int:budget_id>"): ["/api/budgets/{budget}"],
    ("DELETE", "/api/budgets/<int:budget_id>"): ["/api/budgets/{budget}"],
    ("GET", "/api/budgets/channels"): ["/api/budgets/channels"],
    ("PUT", "/api/budgets/channels"): ["/api/budgets/channels"],
    ("GET", "/api/budgets/alerts"): ["/api/budgets/alerts"],
}


def _otlp(kind, attributes):
    """An OTLP JSON export from "claude-code" naming the victim's session."""
    attrs = [{"key": k, "value": {"intValue": v} if isinstance(v, int) else {"stringValue": v}}
             for k, v in {"session.id": "victim-1", **attributes}.items()]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]}
    if kind == "logs":
        return {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [{"attributes": attrs}]}]}]}
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [{
        "name": "claude_code.cost.usage", "sum": {"aggregationTemporality": 1, "dataPoints": [
            {"attributes": attrs, "asDouble": 99.0, "startTimeUnixNano": "1", "timeUnixNano": "2"}]}}]}]}]}
PUBLIC = {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/opensync/health")}
MCP_CALLS = [("search_sessions", {"query": "secret"}), ("search_sessions", {"query": "plans"}), ("get_session", {"id": "{id}"}),
             ("get_session", {"id": "{ext}"}), ("get_context", {"query": "plans"}), ("recent_sessions", {}),
             ("stats", {}), ("sessions_for_file", {"path": "/home/v/secret.py"})]


def test_every_route_is_in_the_isolation_table(app):
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("opensync.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ISOLATION) | PUBLIC


@pytest.fixture
def victim(app, api, db_path):
    api.post("/sync/session", {"externalId": "victim-1", "source": "claude-code", "title": "secret plans",
                               "model": "m", "provider": "p", "projectName": "x", "promptTokens": 77})
    api.post("/sync/message", {"sessionExternalId": "victim-1", "externalId": "vm1", "role": "user",
                               "textContent": "the secret is 42", "parts": [{"type": "text", "content": "secret"}]})
    api.post("/sync/message", {"sessionExternalId": "victim-1", "externalId": "vm2", "role": "assistant",
                               "textContent": "read the secret file", "parts": [
                                   {"type": "tool-call", "content": {"toolName": "Read", "args": {"file_path": "/home/v/secret.py"}}}]})
    # Graded, so that it is in every evals export (OpenSync's take graded sessions only).
    assert api.client.patch("/api/sessions/victim-1", json={"evalStatus": "golden"}, headers=api.headers).status_code == 200
    session = api.session("victim-1")["session"]
    # A budget on the victim's secret project, channels with a secret webhook, a quota snapshot.
    app.config["OPENSYNC_WEBHOOK_ALLOW_PRIVATE"] = True  # a loopback receiver, as an operator may allow
    budget = api.post("/api/budgets", {"period": "day", "amount": 5, "project": "/home/v/secret-project"})
    assert budget.status_code in (200, 201), budget.get_json()
    assert api.client.put("/api/budgets/channels", json={"webhookUrl": "http://127.0.0.1:9/secret-hook"},
                          headers=api.headers).status_code == 200
    assert api.post("/api/limits/snapshots", {"machine": "secret-laptop", "session_id": "victim-1"}).status_code in (200, 201)
    with app.app_context():
        shares.create(auth.get_or_create_user("local").id, int(session["id"]))
        (share,) = shares.active(auth.get_or_create_user("local").id)
    return {"id": session["id"], "ext": "victim-1", "share": share["id"], "budget": budget.get_json()["budget"]["id"],
            "before": snapshot(db_path)}


def leaks(body):
    return any(s in body for s in ("secret", "victim-1", "the secret is 42", '"promptTokens":77'))


@pytest.mark.parametrize("route", sorted(ISOLATION), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_second_user_cannot_read_change_or_delete(api, other_api, victim, db_path, route):
    method, _ = route
    for template in ISOLATION[route]:
        path = template.format(**victim)
        if method == "GET":
            response = other_api.get(path)
            assert response.status_code in (200, 404), path
            assert not leaks(response.get_data(as_text=True)), path
        elif method == "DELETE":
            assert other_api.delete(path).status_code == 404
        elif method == "PATCH":
            body = {"amount": 1} if "/budgets/" in path else {"starred": True, "tags": ["hijack"]}
            response = other_api.client.patch(path, json=body, headers=other_api.headers)
            assert response.status_code == 404, path
        elif method == "PUT":  # the second user's own channels: the victim's stay
            response = other_api.client.put(path, json={"webhookUrl": "http://127.0.0.1:9/hijack"}, headers=other_api.headers)
            assert response.status_code == 200 and not leaks(response.get_data(as_text=True)), path
        elif path == "/mcp":
            for number, (tool, arguments) in enumerate(MCP_CALLS):
                arguments = {k: v.format(**victim) for k, v in arguments.items()}
                response = other_api.client.post(path, json={
                    "jsonrpc": "2.0", "id": number, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
                    headers={**other_api.headers, "Accept": "application/json, text/event-stream",
                             "MCP-Protocol-Version": "2025-06-18"})
                assert response.status_code == 200, (tool, response.get_data(as_text=True))
                assert "result" in response.get_json() and not leaks(response.get_data(as_text=True)), tool
        elif path.endswith("/shares"):
            assert other_api.post(path, {"confirm": True}).status_code == 404, path
        else:
            # Writing with the victim's externalIds creates the second user's own rows.
            path = path.removeprefix("/opensync")  # the same sync routes under OpenSync's base URL
            body = {"/sync/session": {"externalId": "victim-1", "title": "hijack", "promptTokens": 1},
                    "/sync/message": {"sessionExternalId": "victim-1", "externalId": "vm1", "textContent": "hijack"},
                    "/sync/batch": {"sessions": [{"externalId": "victim-1", "title": "hijack"}],
                                    "messages": [{"sessionExternalId": "victim-1", "externalId": "vm1", "textContent": "x"}]},
                    "/v1/logs": _otlp("logs", {"event.name": "api_request", "request_id": "req_1", "input_tokens": 5,
                                               "cost_usd": "9.5", "model": "m"}),
                    "/v1/metrics": _otlp("metrics", {"model": "m"}),
                    "/v1/traces": {"resourceSpans": []},
                    "/api/budgets": {"period": "day", "amount": 1},
                    "/api/limits/snapshots": {"machine": "hijack", "session_id": "victim-1"},
                    }[path]
            assert other_api.post(template, body).status_code in (200, 201)
    mine = api.session("victim-1")
    assert [b["amount"] for b in api.get("/api/budgets").get_json()["budgets"]] == [5]
    assert api.get("/api/budgets/channels").get_json()["channels"]["webhookUrl"] == "http://127.0.0.1:9/secret-hook"
    assert mine["session"]["title"] == "secret plans" and mine["session"]["promptTokens"] == 77
    assert [m["textContent"] for m in mine["messages"]] == ["the secret is 42", "read the secret file"]
    assert snapshot(db_path)["sessions"][0] == victim["before"]["sessions"][0]
    assert mine["session"]["starred"] is False and mine["session"]["tags"] == []


def test_error_bodies_never_show_internals(api, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("SELECT * FROM api_keys WHERE key_hash = 'deadbeef' -- Traceback")

    monkeypatch.setattr(queries, "list_sessions", broken)
    response = api.get("/api/sessions")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal server error."}


def test_key_never_appears_in_the_server_log(live_server):
    key = live_server.create_key()
    wrong = "osk_" + "W" * 32

    def call(path, token, body=None):
        request = urllib.request.Request(live_server.url + path, data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    assert call("/sync/session", key, {"externalId": "a"}) == 200
    assert call("/sync/session", key, {"externalId": 5}) == 400
    assert call("/api/sessions", wrong) == 401
    assert call("/api/sessions?limit=0", key) == 400
    live_server.stop()
    log = live_server.logs()
    assert key not in log and key[4:] not in log and wrong not in log
