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
