"""The MCP server through the SDK's own client, over both transports: `opensync-lite mcp` spawned
on stdio, and /mcp on a live `serve`. A SQLite file filled through the sync routes; two users,
whose data never crosses; a missing or wrong key refused."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import anyio
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from conftest import CLI, Api, LiveServer, make_key
from factories import BASE, DAY
from opensync_lite import create_app

SECRET = "ghp_" + "Z1x2C3v4B5n6M7a8S9d0F1g2H3j4K5l6Q7w8"
TOOLS = {"search_sessions", "get_session", "get_context", "recent_sessions", "stats", "sessions_for_file"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _call(name, args):
    return {"type": "tool-call", "content": {"id": f"t-{name}", "name": name, "input": args}}


def _messages(session, texts, parts=None):
    return [{"sessionExternalId": session, "externalId": f"{session}-{i}", "role": "user" if i % 2 == 0 else "assistant",
             "textContent": text, "parts": [{"type": "text", "content": text}, *((parts or {}).get(i, []))],
             "createdAt": BASE + i} for i, text in enumerate(texts)]


@pytest.fixture
def filled(db_path):
    """Alice: a webhook session of 30 messages (one holding a secret, one 9 000 characters long,
    one editing src/billing.py), and a parser session in another project. Mallory: a webhook
    session of her own that edits src/billing.py too. Returns (alice's key, mallory's key, ids)."""
    app = create_app({"OPENSYNC_DB": db_path, "TESTING": True})
    try:
        alice, mallory = make_key(app, "alice"), make_key(app, "mallory")
        texts = [f"turn {i} of the stripe webhook retries" for i in range(30)]
        texts[3] = f"the key was {SECRET} in the webhook config"
        texts[5] = "webhook " + "long " * 1800
        edit = {7: [_call("Edit", {"file_path": "/w/shop/src/billing.py", "old_string": "a", "new_string": "b"})]}
        batch = {"sessions": [
            {"externalId": "hook", "title": "Stripe webhook retries", "projectPath": "/w/shop", "projectName": "shop",
             "source": "claude-code", "model": "claude-sonnet-4", "createdAt": BASE, "promptTokens": 1200,
             "completionTokens": 300, "cost": 0.25},
            {"externalId": "parse", "title": "Parser crash", "projectPath": "/w/lang", "projectName": "lang",
             "source": "opencode", "model": "gpt-5", "createdAt": BASE + DAY},
        ], "messages": _messages("hook", texts, edit) + _messages("parse", ["the parser crashed", "fixed it"])}
        assert Api(app.test_client(), alice).post("/sync/batch", batch).get_json()["errorCount"] == 0
        theirs = {"sessions": [{"externalId": "m-hook", "title": "Mallory webhook zanzibar", "projectPath": "/w/shop",
                                "source": "claude-code", "createdAt": BASE + 2 * DAY}],
                  "messages": _messages("m-hook", ["zanzibar webhook secret plans", "ok"], {1: [
                      _call("Edit", {"file_path": "/w/shop/src/billing.py", "old_string": "c", "new_string": "d"})]})}
        mallory_api = Api(app.test_client(), mallory)
        assert mallory_api.post("/sync/batch", theirs).get_json()["errorCount"] == 0
        ids = {row["externalId"]: row["id"] for row in Api(app.test_client(), alice).get("/api/sessions").get_json()["sessions"]}
        ids["m-hook"] = mallory_api.get("/api/sessions").get_json()["sessions"][0]["id"]
    finally:
        app.extensions["opensync"].close()
    return alice, mallory, ids


def _stdio(db_path, key):
    return StdioServerParameters(command=sys.executable, args=["-m", "opensync_lite.cli", "mcp", "--db", db_path],
                                 env={"OPENSYNC_KEY": key, "PYTHONPATH": ROOT}, cwd=ROOT)


def _http(url, key):
    return url + "/mcp", {"Authorization": f"Bearer {key}"}


async def _session(server, calls):
    """Open a client on ``server`` (stdio parameters, or (url, headers)); list the tools, then
    make each call: {name: [tool names]} and the calls' (is_error, text) in order."""
    async def run(client):
        listed = await client.list_tools()
        answers = []
        for name, args in calls:
            result = await client.call_tool(name, args)
            answers.append((result.is_error, result.content[0].text))
        return {t.name: t for t in listed.tools}, answers

    if isinstance(server, StdioServerParameters):
        async with Client(server) as client:
            return await run(client)
    url, headers = server
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            return await run(client)


def _ok(answer):
    is_error, text = answer
    assert not is_error, text
    return text


def _json(answer):
    return json.loads(_ok(answer))


EVERY_CALL = [
    ("search_sessions", {"query": "webhook"}),
    ("get_session", {"id": "hook", "limit": 10}),
    ("get_context", {"query": "webhook"}),
    ("recent_sessions", {}),
    ("stats", {}),
    ("sessions_for_file", {"path": "src/billing.py"}),
]


def _check_alices_answers(answers, ids):
    search, session, context, recent, stats, by_file = answers
    results = _json(search)["results"]
    assert [r["id"] for r in results] == [ids["hook"]]  # not mallory's webhook session
    assert results[0]["matches"] and all("<mark>" not in m["text"] for m in results[0]["matches"])
    page = _json(session)
    assert page["session"]["title"] == "Stripe webhook retries" and page["totalMessages"] == 30
    assert [m["index"] for m in page["messages"]] == list(range(10)) and page["nextOffset"] == 10
    assert page["messages"][7]["tools"] == ["Edit"]
    text = _ok(context)
    assert text.startswith('Relevant coding sessions for: "webhook"') and "turn 29 of the stripe" in text
    assert "zanzibar" not in text
    assert [s["externalId"] for s in _json(recent)["sessions"]] == ["parse", "hook"]
    totals = _json(stats)
    assert totals["totals"]["sessions"] == 2 and totals["totals"]["messages"] == 32
    assert {row["key"] for row in totals["bySource"]} == {"claude-code", "opencode"}
    # One project per folder: keyed by its path, labelled by its name
    assert {(row["key"], row["label"]) for row in totals["byProject"]} == {("/w/shop", "shop"), ("/w/lang", "lang")}
    files = _json(by_file)
    assert [s["externalId"] for s in files["sessions"]] == ["hook"]  # mallory edited it too: not shown
    assert files["files"][0]["path"] == "/w/shop/src/billing.py" and files["files"][0]["sessions"] == 1
    assert files["sessions"][0]["touched"] == [{"path": "/w/shop/src/billing.py", "changed": True, "messages": 1}]
    for answer in answers:
        assert SECRET not in answer[1] and "zanzibar" not in answer[1]


def test_stdio_lists_the_tools_and_answers_each_for_the_keys_user_only(filled, db_path):
    alice, _, ids = filled
    tools, answers = anyio.run(_session, _stdio(db_path, alice), EVERY_CALL)
    assert set(tools) == TOOLS
    assert all(tool.description for tool in tools.values())
    assert {"query", "limit", "offset", "source", "project", "type"} <= set(tools["search_sessions"].input_schema["properties"])
    _check_alices_answers(answers, ids)


def test_stdio_pages_cuts_long_texts_with_a_note_and_masks_secrets(filled, db_path):
    alice, _, ids = filled
    _, answers = anyio.run(_session, _stdio(db_path, alice), [
        ("get_session", {"id": ids["hook"], "offset": 3, "limit": 3, "max_chars": 500}),
        ("get_session", {"id": ids["hook"], "offset": 5, "limit": 1, "max_chars": 100_000}),
        ("get_session", {"id": ids["hook"], "offset": 28}),
        ("get_context", {"query": "webhook", "format": "messages", "max_chars": 1000}),
        ("search_sessions", {"query": "config"}),
    ])
    page = _json(answers[0])
    secret, long_one = page["messages"][0]["text"], page["messages"][2]["text"]
    assert "[REDACTED]" in secret and SECRET not in answers[0][1]
    assert long_one.startswith("webhook long") and len(long_one) < 700
    assert f"more characters: call get_session with id={ids['hook']}, offset=5, limit=1" in long_one
    assert page["nextOffset"] == 6
    whole = _json(answers[1])["messages"][0]["text"]
    assert whole == "webhook " + "long " * 1800
    assert [m["index"] for m in _json(answers[2])["messages"]] == [28, 29] and _json(answers[2])["nextOffset"] is None
    messages = _json(answers[3])
    assert messages["sessionCount"] == 1 and len(messages["messages"]) == 10  # the last ten, within 1 000 characters
    assert messages["messages"][-1]["content"] == "turn 29 of the stripe webhook retries"
    assert all(m["metadata"]["sessionId"] == ids["hook"] for m in messages["messages"])
    assert SECRET not in answers[4][1] and "[REDACTED]" in answers[4][1]


def test_stdio_refuses_bad_arguments_naming_them(filled, db_path):
    alice, _, ids = filled
    _, answers = anyio.run(_session, _stdio(db_path, alice), [
        ("search_sessions", {"query": "webhook", "type": "vector"}),
        ("get_context", {"query": "webhook", "type": "similar"}),
        ("get_session", {"id": ids["m-hook"]}),  # mallory's: no such session for alice
        ("recent_sessions", {"limit": 500}),
        ("stats", {"date_from": "last tuesday"}),
    ])
    assert all(is_error for is_error, _ in answers), answers
    assert "type" in answers[0][1] and "hybrid" in answers[0][1]
    assert "type" in answers[1][1] and "hybrid" in answers[1][1]
    assert "Session not found" in answers[2][1] and "zanzibar" not in answers[2][1]
    assert "limit" in answers[3][1]
    assert "from" in answers[4][1]


@pytest.mark.parametrize("env, args, message", [
    ({}, [], "Missing option '--key'"),
    ({"OPENSYNC_KEY": "osk_" + "n" * 32}, [], "unknown or revoked API key"),
    ({}, ["--key", "not-a-key"], "unknown or revoked API key"),
])
def test_stdio_without_a_valid_key_does_not_start(filled, db_path, env, args, message):
    environ = {k: v for k, v in os.environ.items() if k != "OPENSYNC_KEY"}
    done = subprocess.run(CLI + ["mcp", "--db", db_path, *args], env={**environ, **env}, input="", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and message in done.stderr and done.stdout == ""


def test_stdio_with_a_revoked_key_does_not_start(filled, db_path):
    alice, _, _ = filled
    prefix = alice[:12]
    subprocess.run(CLI + ["keys", "revoke", prefix, "--db", db_path], check=True, capture_output=True, timeout=60)
    done = subprocess.run(CLI + ["mcp", "--key", alice, "--db", db_path], input="", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "unknown or revoked API key" in done.stderr


@pytest.fixture
def served(filled, db_path):
    server = LiveServer(db_path, args=["--quiet"])
    yield server, filled
    server.stop()


def test_http_lists_the_tools_and_answers_each_for_the_keys_user_only(served):
    server, (alice, mallory, ids) = served
    tools, answers = anyio.run(_session, _http(server.url, alice), EVERY_CALL)
    assert set(tools) == TOOLS
    _check_alices_answers(answers, ids)
    # The same server, mallory's key: hers only.
    _, theirs = anyio.run(_session, _http(server.url, mallory), [
        ("search_sessions", {"query": "webhook"}), ("get_session", {"id": "hook"}),
        ("sessions_for_file", {"path": "src/billing.py"}), ("stats", {})])
    assert [r["id"] for r in _json(theirs[0])["results"]] == [ids["m-hook"]]
    assert theirs[1][0] and "Session not found" in theirs[1][1]
    assert [s["externalId"] for s in _json(theirs[2])["sessions"]] == ["m-hook"]
    assert _json(theirs[3])["totals"]["sessions"] == 1
    assert all("stripe" not in text.lower() for _, text in theirs)


def _post(url, headers):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer osk_" + "w" * 32},
    {"Authorization": "Basic b3NrXzEyMzQ="},
    {"Authorization": "Bearer "},
])
def test_http_without_a_valid_key_is_401(served, headers):
    server, _ = served
    status, body = _post(server.url + "/mcp", headers)
    assert status == 401 and "key" in json.loads(body)["error"].lower()


def _leaves(error):
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def test_http_sdk_client_without_a_key_is_refused(served):
    server, _ = served
    statuses = []

    async def connect():
        async def record(response):
            statuses.append(response.status_code)

        async with httpx2.AsyncClient(event_hooks={"response": [record]}, timeout=30) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                await client.list_tools()

    with pytest.raises(BaseException) as caught:
        anyio.run(connect)
    assert any(isinstance(leaf, MCPError) for leaf in _leaves(caught.value)), caught.value
    assert statuses and set(statuses) == {401}


def test_stdio_searches_by_meaning_after_embed(filled, db_path):
    """semantic and hybrid through the tools, once `opensync-lite embed` made the vectors."""
    alice, _, ids = filled
    embed = subprocess.run([sys.executable, "-m", "opensync_lite.cli", "embed", "--db", db_path],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert embed.returncode == 0 and "Embedded 3 sessions" in embed.stdout, embed.stderr
    _, answers = anyio.run(_session, _stdio(db_path, alice), [
        ("search_sessions", {"query": "the parsr crashd", "type": "semantic"}),
        ("search_sessions", {"query": "zanzibar webhook", "type": "hybrid"}),
        ("get_context", {"query": "parsr crashd", "type": "semantic", "limit": 1}),
    ])
    assert [hit["id"] for hit in _json(answers[0])["results"]][0] == ids["parse"]
    assert ids["m-hook"] not in {hit["id"] for hit in _json(answers[1])["results"]}  # never mallory's
    assert "the parser crashed" in _ok(answers[2])
