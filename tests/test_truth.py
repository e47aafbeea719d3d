"""The agent's own record is the truth: a plugin's totals are liveness, superseded by the
transcript's counted responses whatever the order, and never counted again."""

import random
import subprocess
from datetime import datetime, timezone

import pytest

from claude_history import Writer, write

from conftest import CLI

pytestmark = pytest.mark.both_databases

SESSION = "7c0e8a52-1b7f-4a3e-9a57-3f5d2b6c9e01"
MODEL = "claude-sonnet-4-5-20250929"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def transcript(tmp_path):
    w = Writer(random.Random(5))
    lines = w.user(SESSION, T0, "fix the parser", "/work/demo")
    lines += w.response(SESSION, T0, "/work/demo", MODEL, [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}])
    usage = lines[-1]["message"]["usage"]
    path = tmp_path / "projects" / "-work-demo" / f"{SESSION}.jsonl"
    write(path, lines)
    return path, usage


def plugin_totals(api):
    """What claude-code-sync sends: the usage of every content block's line summed, the cache
    folded into promptTokens, and a cost of its own."""
    api.post("/sync/session", {"externalId": SESSION, "source": "claude-code", "model": MODEL,
                               "promptTokens": 99_999, "completionTokens": 999, "cost": 7.5})


def import_(path, db_path):
    subprocess.run([*CLI, "import", "claude-code", str(path), "--db", db_path], check=True, capture_output=True,
                   timeout=60)


@pytest.mark.parametrize("order", ["plugin-first", "transcript-first"])
def test_the_transcript_supersedes_the_plugins_totals_in_either_order(api, db_path, tmp_path, order):
    path, usage = transcript(tmp_path)
    if order == "plugin-first":
        plugin_totals(api)
        import_(path, db_path)
    else:
        import_(path, db_path)
        plugin_totals(api)
    plugin_totals(api)  # and again (Stop, then SessionEnd)
    session = api.session(SESSION)["session"]
    kinds = (session["inputTokens"], session["outputTokens"], session["cacheWriteTokens"], session["cacheReadTokens"])
    assert kinds == (usage["input_tokens"], usage["output_tokens"], usage["cache_creation_input_tokens"],
                     usage["cache_read_input_tokens"])  # one response, counted once over its two lines
    assert session["promptTokens"] == usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
    assert session["cost"] != 7.5 and session["costBasis"] == "estimated"
    assert session["extra"]["clientTotals"]["promptTokens"] == 99_999  # kept aside, not counted


def test_a_parent_answers_its_own_totals_and_those_with_its_subagents(api):
    api.post("/sync/session", {"externalId": "p", "inputTokens": 10, "outputTokens": 5, "promptTokens": 10,
                               "completionTokens": 5, "cost": 1.0})
    api.post("/sync/session", {"externalId": "c1", "parentExternalId": "p", "promptTokens": 100,
                               "completionTokens": 50, "cost": 0.5})
    api.post("/sync/session", {"externalId": "c2", "parentExternalId": "c1", "promptTokens": 1000,
                               "completionTokens": 500, "cost": 0.25})  # a subagent's own subagent
    api.post("/sync/session", {"externalId": "other", "promptTokens": 7, "cost": 9.0})
    got = api.session("p")
    assert got["session"]["totalTokens"] == 15 and got["session"]["cost"] == 1.0  # its own, alone
    sub = got["subagents"]
    assert (sub["sessions"], sub["totalTokens"], sub["cost"]) == (2, 1650, 0.75)
    assert (sub["withSubagents"]["sessions"], sub["withSubagents"]["totalTokens"]) == (3, 1665)
    assert sub["withSubagents"]["cost"] == pytest.approx(1.75)
    leaf = api.session("c2")["subagents"]
    assert (leaf["sessions"], leaf["totalTokens"], leaf["withSubagents"]["totalTokens"]) == (0, 0, 1500)


def test_imported_then_live_stores_the_prompt_and_the_tool_call_once(api, db_path, tmp_path):
    """`import --watch` (or serve's watcher) beside claude-code-sync: the plugin's prompt and
    tool call arrive after the transcript's copies, under the plugin's own ids."""
    path, _ = transcript(tmp_path)
    import_(path, db_path)
    before = api.session(SESSION)
    assert before["session"]["toolCallCount"] == 1  # counted from the stored tool calls
    api.post("/sync/message", {"sessionExternalId": SESSION, "externalId": f"{SESSION}-user-1764493200000",
                               "role": "user", "textContent": "fix the parser", "source": "claude-code"})
    api.post("/sync/message", {"sessionExternalId": SESSION, "externalId": "toolu_1", "role": "assistant",
                               "source": "claude-code", "parts": [
                                   {"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": "ls"}}}]})
    after = api.session(SESSION)
    assert [m["externalId"] for m in after["messages"]] == [m["externalId"] for m in before["messages"]]
    assert after["messages"] == before["messages"]  # the transcript's copies, whole
    assert after["session"]["messageCount"] == before["session"]["messageCount"] == 3
    # A prompt the transcript does not hold is stored as usual.
    api.post("/sync/message", {"sessionExternalId": SESSION, "externalId": f"{SESSION}-user-1764493300000",
                               "role": "user", "textContent": "and the lexer", "source": "claude-code"})
    assert api.session(SESSION)["session"]["messageCount"] == 4
