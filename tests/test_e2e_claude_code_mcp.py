"""`claude mcp add opensync -- opensync-lite mcp`: the real Claude Code CLI (2.1.332) starts our
MCP server on stdio, lists its tools, and calls one when its model asks; what the tool answered
reaches the model in the next request. The model is the loopback stand-in, scripted to call
``search_sessions`` (and ``get_session`` on what it found), so the test reads the very
tool_result Claude Code sent back: a past session found, another user's never."""

import json

from anthropic_standin import Conversation, StandIn, Turn, text, tool_results, tool_use
from claude_cli import run_claude

from conftest import CLI, make_key

ASK = "find the past session about the checkout"


def past_sessions(api, other_api):
    api.post("/sync/batch", {
        "sessions": [{"externalId": "past-stripe", "source": "claude-code", "title": "Wire Stripe checkout into the shop",
                      "projectPath": "/home/dev/shop", "model": "claude-sonnet-4-5"},
                     {"externalId": "past-docs", "source": "opencode", "title": "Tidy the README"}],
        "messages": [{"sessionExternalId": "past-stripe", "externalId": "m1", "role": "user",
                      "textContent": "Add a Stripe checkout to src/lib/stripe.ts"},
                     {"sessionExternalId": "past-stripe", "externalId": "m2", "role": "assistant",
                      "textContent": "Checkout added; npm test passes."},
                     {"sessionExternalId": "past-docs", "externalId": "d1", "role": "user",
                      "textContent": "Tidy the README headings"}]})
    other_api.post("/sync/session", {"externalId": "theirs", "title": "Their Stripe checkout secret plan"})


def result_text(block):
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


def test_claude_code_finds_a_past_session_through_our_mcp_server(tmp_path, app, api, other_api, db_path):
    past_sessions(api, other_api)
    key = make_key(app, label="mcp")
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"opensync": {
        "command": CLI[0], "args": [*CLI[1:], "mcp", "--db", db_path], "env": {"OPENSYNC_KEY": key}}}}))
    script = [Conversation(ASK, [
        Turn([text("Looking in the history."),
              tool_use("mcp__opensync__search_sessions", {"query": "stripe checkout", "limit": 5})]),
        Turn([text("Reading it."), tool_use("mcp__opensync__get_session", {"id": "past-stripe"})]),
        Turn([text("The past session wired Stripe checkout into the shop.")]),
    ])]
    with StandIn(script) as standin:
        run = run_claude(f"Please {ASK}", base_url=standin.url, home=tmp_path / "home", cwd=tmp_path / "project",
                         allowed_tools="mcp__opensync__search_sessions,mcp__opensync__get_session",
                         args=["--mcp-config", str(config), "--strict-mcp-config"])
        main = [r for r in standin.requests if r.kind == "main"]
    assert run.result["result"] == "The past session wired Stripe checkout into the shop."
    # Claude Code offered the model our tools, named as it names an MCP server's tools.
    # (2.1.332 defers an MCP server's tools behind its ToolSearch tool, naming them in the request.)
    first = json.dumps(main[0].body)
    assert all(f"mcp__opensync__{tool}" in first for tool in ("search_sessions", "get_session", "get_context",
                                                               "recent_sessions", "stats", "sessions_for_file"))
    found = tool_results(main[1].body)
    assert len(found) == 1 and not found[0].get("is_error"), found
    hits = result_text(found[0])
    assert "Wire Stripe checkout into the shop" in hits and "past-stripe" in hits
    assert "Tidy the README" not in hits and "secret plan" not in hits  # not a match; another user's
    session = result_text(tool_results(main[2].body)[-1])
    assert "Add a Stripe checkout to src/lib/stripe.ts" in session and "npm test passes" in session
