"""`opensync-lite import copilot` on what the real GitHub Copilot CLI (1.0.102, pinned in
tests/package.json) wrote: `copilot -p` and then `copilot --continue -p` (the same session
resumed) in a fresh HOME, offline, against the scripted Anthropic Messages API stand-in
(tests/anthropic_standin.py) as its own `anthropic` provider. The stand-in's usage is the only
number the tests know in advance; Copilot records no dollar cost (its `cost` is premium
requests, 0 with a key of one's own), so the tokens are priced here."""

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime

import pytest

from anthropic_standin import Conversation, StandIn, Turn, text, thinking, tool_use
from click.testing import CliRunner
from conftest import NODE_BIN, LiveServer, rows, snapshot
from opensync_lite.cli import main
from opensync_lite.pricing import price

COPILOT_VERSION = "1.0.102"
# The npm package's loader only finds and spawns this platform binary (its detect-libc import
# fails when node_modules is a link): run the binary itself.
PLATFORM_BIN = NODE_BIN.parent / "@github" / "copilot-linux-x64" / "copilot"
COPILOT = PLATFORM_BIN if PLATFORM_BIN.exists() else NODE_BIN / "copilot"
MODEL = "claude-sonnet-4.5"
PROMPT = "Please run: echo expected 10 tokens"
RESUME_PROMPT = "Now say it once more"
COMMAND = "echo expected 10 tokens"
THOUGHT = "The user wants the echo run; bash will do."


def usage(fresh, write, read, output):
    return {"input_tokens": fresh, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0}, "output_tokens": output}


# Each of the three answers reports its own usage: a total that counts one twice, or misses one, is wrong.
SCRIPT = Conversation("expected 10 tokens", [
    Turn([thinking(THOUGHT), text("I will run it."), tool_use("bash", {"command": COMMAND, "description": "Echo it"})],
         usage=usage(120, 800, 3000, 45)),
    Turn([text("It printed: expected 10 tokens.")], usage=usage(31, 0, 3900, 20)),
    Turn([text("Once more: expected 10 tokens.")], usage=usage(17, 250, 4100, 38)),
])
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def copilot(home, cwd, url, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPILOT_", "GH_", "GITHUB_", "ANTHROPIC_", "OPENAI_"))}
    env.update(HOME=str(home), COPILOT_OFFLINE="true", COPILOT_PROVIDER_BASE_URL=url, COPILOT_PROVIDER_TYPE="anthropic",
               COPILOT_PROVIDER_API_KEY="sk-ant-test-0000", COPILOT_MODEL=MODEL, COPILOT_AUTO_UPDATE="false", NO_COLOR="1")
    done = subprocess.run([str(COPILOT), *args, "--allow-all-tools", "--no-auto-update"], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"copilot exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two runs of one session; the session-state folder is also kept as it was after the first."""
    root = tmp_path_factory.mktemp("copilot")
    home, cwd = root / "home", root / "project"
    cwd.mkdir()
    home.mkdir()
    with StandIn([copy.deepcopy(SCRIPT)]) as api:
        copilot(home, cwd, api.url, "-p", PROMPT)
        state = home / ".copilot" / "session-state"
        shutil.copytree(state, root / "after-first")
        first = api.usage_sum()
        copilot(home, cwd, api.url, "--continue", "-p", RESUME_PROMPT)
    (path,) = state.rglob("events.jsonl")
    (first_path,) = (root / "after-first").rglob("events.jsonl")
    return {"home": home, "cwd": cwd, "state": state, "path": path, "api": api, "first": first,
            "events": [json.loads(line) for line in path.read_text().splitlines()],
            "first_events": [json.loads(line) for line in first_path.read_text().splitlines()],
            "after_first": root / "after-first"}


class Ran:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def run_import(db_path, *paths, args=(), env=None, kind="copilot", ok=True):
    """`opensync-lite import` in this process; ``env`` replaces the environment for the run."""
    env = None if env is None else {**{k: None for k in os.environ}, **env}
    result = Ran(CliRunner().invoke(main, ["import", kind, *map(str, paths), "--db", db_path, *args], env=env))
    assert result.returncode == 0 or not ok, result.stderr
    return result


def expected(total):
    """The stand-in's usage in our four kinds (Anthropic's input excludes the cache, as ours does)."""
    return {"input_tokens": total["input_tokens"], "output_tokens": total["output_tokens"],
            "cache_read_tokens": total["cache_read_input_tokens"], "cache_write_tokens": total["cache_creation_input_tokens"]}


def totals(db_path):
    (session,) = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions")
    (messages,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")
    return dict(zip(KINDS, session)), dict(zip(KINDS, messages))


def of_type(events, kind):
    return [e["data"] for e in events if e["type"] == kind]


def ms(stamp):
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def estimate(api):
    """The answers priced one by one at the model's list price, as the write path prices them."""
    return sum(price(MODEL, r.usage["input_tokens"], r.usage["output_tokens"], r.usage["cache_creation_input_tokens"],
                     r.usage["cache_read_input_tokens"]) for r in api.messages("main"))


def test_the_pinned_cli_ran_both_runs_into_one_file(run):
    out = subprocess.run([str(COPILOT), "--version"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "HOME": str(run["home"]), "COPILOT_OFFLINE": "true"})
    assert f"GitHub Copilot CLI {COPILOT_VERSION}." in out.stdout
    answered = run["api"].messages()
    assert [r.kind for r in answered] == ["main"] * 3 and [r.turn for r in answered] == [0, 1, 2]
    (start,) = of_type(run["events"], "session.start")
    assert start["context"]["cwd"] == str(run["cwd"]) and start["copilotVersion"] == COPILOT_VERSION
    assert len(of_type(run["events"], "session.resume")) == 1
    # Copilot recorded each call's usage as the stand-in sent it (its input the whole prompt), and no dollars.
    records = [d["usage"] for d in of_type(run["events"], "session.usage_record")]
    assert [u["outputTokens"] for u in records] == [r.usage["output_tokens"] for r in answered]
    assert [u["inputTokens"] for u in records] == [r.usage["input_tokens"] + r.usage["cache_read_input_tokens"]
                                                   + r.usage["cache_creation_input_tokens"] for r in answered]
    assert [u["apiCallId"] for u in records] == [r.message_id for r in answered]
    assert all(u["cost"] == 0 and u["isByok"] for u in records)


def test_one_session_with_the_stand_ins_tokens_counted_once_and_priced_here(run, db_path, api):
    result = run_import(db_path, run["state"])
    assert "5 messages into 1 new and 0 updated sessions from 1 files" in result.stdout, result.stdout
    assert "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    (start,) = of_type(run["events"], "session.start")
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == start["sessionId"] and listed["source"] == "copilot-cli"
    assert listed["projectPath"] == str(run["cwd"]) and listed["projectName"] == "project"
    assert listed["model"] == MODEL and listed["title"] == PROMPT
    assert listed["createdAt"] == ms(run["events"][0]["timestamp"]) and listed["updatedAt"] == ms(run["events"][-1]["timestamp"])
    assert listed["costBasis"] == "estimated" and listed["cost"] == pytest.approx(estimate(run["api"]), rel=1e-9)
    assert listed["cost"] > 0 and listed["toolCallCount"] == 1


def test_the_conversation_with_the_result_beside_its_call_and_the_thinking(run, db_path, api):
    run_import(db_path, run["state"])
    (start,) = of_type(run["events"], "session.start")
    messages = api.session(start["sessionId"])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "user", "assistant"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]  # as typed, no date prefix
    assert [[p["type"] for p in m["parts"]] for m in messages] == [
        ["text"], ["thinking", "text", "tool-call", "tool-result"], ["text"], ["text"], ["text"]]
    assert messages[1]["parts"][0]["content"] == THOUGHT
    (call,) = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    (result,) = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    scripted = SCRIPT.turns[0].blocks[2]
    assert call["name"] == "bash" and call["input"] == scripted["input"] and call["id"] == scripted["id"]
    assert result["toolUseId"] == call["id"] and not result["isError"]
    assert result["content"].startswith("expected 10 tokens\n")  # the real shell's output
    # Each answer holds the tokens of its own API call.
    assert [(m["role"], m["outputTokens"]) for m in messages if m["role"] == "assistant"] == [
        ("assistant", t.usage["output_tokens"]) for t in SCRIPT.turns]


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["state"])
    before = snapshot(db_path)
    again = run_import(db_path, run["state"])
    assert "0 files (1 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_the_resumed_run_adds_only_its_own_messages(run, db_path, tmp_path):
    folder = tmp_path / "session-state"
    shutil.copytree(run["after_first"], folder)
    (copied,) = folder.rglob("events.jsonl")
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"])
    written = rows(db_path, "SELECT id, external_id FROM messages ORDER BY id")
    copied.write_bytes(run["path"].read_bytes())  # the resumed run, appended to the same file
    second = run_import(db_path, folder)
    assert "Imported 2 messages into 0 new and 1 updated sessions" in second.stdout, second.stdout
    assert rows(db_path, "SELECT id, external_id FROM messages ORDER BY id")[:3] == written
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    assert rows(db_path, "SELECT title, message_count FROM sessions") == [(PROMPT, 5)]


def test_a_file_read_while_the_tool_ran_gets_its_result_later(run, db_path, api, tmp_path):
    """The watcher may read the file between the answer that asks for the call and the call's
    end: the next read completes that answer, already written, with the result."""
    lines = run["path"].read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "tool.execution_complete")
    folder = tmp_path / "session-state" / run["path"].parent.name
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text("".join(lines[:cut]))
    run_import(db_path, folder.parent)
    (start,) = of_type(run["events"], "session.start")
    asked = api.session(start["sessionId"])["messages"][1]
    assert [p["type"] for p in asked["parts"]] == ["thinking", "text", "tool-call"]
    (folder / "events.jsonl").write_text("".join(lines))
    run_import(db_path, folder.parent)
    asked = api.session(start["sessionId"])["messages"][1]
    assert [p["type"] for p in asked["parts"]] == ["thinking", "text", "tool-call", "tool-result"]
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())


def test_dry_run_writes_nothing_and_bad_lines_are_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["state"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 5 messages into 1 new") and snapshot(db_path) == before
    stamp = run["events"][0]["timestamp"]
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"type": "user.message", "id": "x0", "timestamp": stamp}),
        json.dumps({"type": "user.message", "id": "x1", "timestamp": "not a date", "data": {"content": "hi"}}),
        json.dumps({"type": "tool.execution_complete", "id": "x2", "timestamp": stamp,
                    "data": {"toolCallId": "nowhere", "success": True, "result": {"content": "?"}}}),
        json.dumps({"type": "session.usage_record", "id": "x3", "timestamp": stamp, "data": {"usage": "none"}}),
        json.dumps({"type": "session.usage_record", "id": "x4", "timestamp": stamp, "data": {"usage": {
            "model": MODEL, "inputTokens": 10**30, "outputTokens": -3, "cacheReadTokens": float("nan"),
            "apiCallId": "msg_huge", "accounting": {"usageId": "msg_huge"}}}}),
        json.dumps({"type": "some.future_event", "id": "x5", "timestamp": stamp, "data": {"anything": 1}}),
    ]
    state = tmp_path / "state" / "hostile"
    state.mkdir(parents=True)
    (state / "events.jsonl").write_text(run["path"].read_text() + "\n".join(bad) + "\n")
    orphan = tmp_path / "state" / "orphan"  # no session.start: nothing names its session
    orphan.mkdir()
    (orphan / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in run["events"][1:6]))
    result = run_import(db_path, tmp_path / "state")
    assert "12 lines skipped" in result.stdout, (result.stdout, result.stderr)  # 6 here, 5 + the file there
    for why in ("not JSON", "not a JSON object", "without its type and data", "not a date", "for no call",
                "without its usage", "before the session.start", "no session.start"):
        assert why in result.stderr, why
    assert totals(db_path)[0] == expected(run["api"].usage_sum())  # out-of-bounds counts count as 0
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_the_default_folder_copilot_home_and_import_all(run, db_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PI_", "CODEX_", "CLAUDE_", "GEMINI_", "COPILOT_"))}
    env.update(HOME=str(run["home"]), XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert "into 1 new" in run_import(db_path, env=env).stdout
    everything = run_import(db_path, env=env, kind="all")
    assert everything.stdout.splitlines() == [
        "Copilot CLI: Imported 0 messages into 0 new and 0 updated sessions from 0 files (1 unchanged, 0 lines read); 0 lines skipped."]
    elsewhere = tmp_path / "copilot-home"  # $COPILOT_HOME replaces ~/.copilot, as the CLI's own does
    shutil.copytree(run["home"] / ".copilot" / "session-state", elsewhere / "session-state")
    moved = run_import(db_path, env={**env, "HOME": str(tmp_path / "empty"), "COPILOT_HOME": str(elsewhere)})
    assert "from 1 files (0 unchanged" in moved.stdout, moved.stdout
    missing = run_import(db_path, env={**env, "HOME": str(tmp_path / "empty")}, ok=False)
    assert missing.returncode != 0 and "no Copilot CLI session state at" in missing.stderr


def test_serve_watches_copilots_session_state_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.copilot/session-state (from before it exists), and
    the session the real CLI writes there arrives with the stand-in's tokens."""
    home, cwd = tmp_path / "home", tmp_path / "project"
    cwd.mkdir()
    home.mkdir()
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        for _ in range(100):  # the banner is read as serve prints it
            if any("Watching" in line for line in server.banner):
                break
            time.sleep(0.05)
        assert any("Watching" in line and ".copilot/session-state (Copilot CLI" in line for line in server.banner), server.banner
        key = CliRunner().invoke(main, ["keys", "create", "--db", server.db_path]).stdout.split()[-1]
        with StandIn([copy.deepcopy(SCRIPT)]) as api:
            copilot(home, cwd, api.url, "-p", PROMPT)
            want = expected(api.usage_sum())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            request = urllib.request.Request(server.url + "/api/sessions", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                sessions = json.loads(response.read())["sessions"]
            if sessions and sessions[0]["outputTokens"] == want["output_tokens"] and sessions[0]["title"]:  # the pass is whole
                break
            time.sleep(0.2)
        (session,) = sessions
        assert session["source"] == "copilot-cli" and session["title"] == PROMPT and session["messageCount"] == 3
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
        assert session["costBasis"] == "estimated"
    finally:
        server.stop()
