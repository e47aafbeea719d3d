"""`opensync-lite import cline` on what the real Cline CLI (3.0.65, the linux-x64 binary pinned in
tests/package.json) wrote: `cline auth` to the OpenAI-compatible provider, then two headless
tasks (`cline --json <prompt>`) in a fresh HOME, against the scripted Chat Completions stand-in
(tests/chat_standin.py). A resume (`--id`) always opens the terminal UI, which needs a TTY, so
the second run is a second task. The stand-in's usage is the only number the tests know in advance."""

import json
import os
import signal
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from chat_standin import MODEL, StandIn, tool_then_answer
from conftest import CLI, LiveServer, rows, snapshot

CLINE_VERSION = "3.0.65"
CLINE = Path(__file__).parent / "node_modules" / "@cline" / "cli-linux-x64" / "bin" / "cline"
PROMPTS = ["Please run: echo expected 10 tokens", "Now run it once more"]
COMMAND = "echo expected 10 tokens"
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def script():
    return tool_then_answer(tool="run_commands", arguments={"commands": [COMMAND]})


def cline(home, cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CLINE_", "ANTHROPIC_"))}
    env.update(HOME=str(home), NO_COLOR="1")
    done = subprocess.run([str(CLINE), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"cline exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


def task(home, cwd, api, prompt):
    """One headless task against ``api``; its final ``run_result`` event."""
    cline(home, cwd, "auth", "-p", "openai", "-k", "test-key-0000", "-m", MODEL, "-b", api.url + "/v1")
    out = cline(home, cwd, "--json", prompt)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")][-1]


def fresh_home(root):
    home, cwd = root / "home", root / "project"
    home.mkdir()
    cwd.mkdir()
    return home, cwd


def _hub_daemons(under):
    """The pids of the hub daemons Cline left running for projects under ``under``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--cline-hub-daemon" in argv and any(a.startswith(str(under).encode()) for a in argv):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module", autouse=True)
def no_daemons_left(tmp_path_factory):
    """Each task starts a hub daemon that outlives it; the tests stop theirs."""
    yield
    for pid in _hub_daemons(tmp_path_factory.getbasetemp()):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two tasks, one tool call each; the sessions folder as it was after the first is kept too."""
    root = tmp_path_factory.mktemp("cline")
    home, cwd = fresh_home(root)
    sessions = home / ".cline" / "data" / "sessions"
    with StandIn(script()) as api:
        first = task(home, cwd, api, PROMPTS[0])
        shutil.copytree(sessions, root / "after-first")
        first_usage = api.usage_sum()
        second = task(home, cwd, api, PROMPTS[1])
    folders = sorted(sessions.iterdir(), key=lambda p: json.loads((p / f"{p.name}.json").read_text())["started_at"])
    yield {"root": root, "sessions": sessions, "folders": folders, "api": api, "first": first_usage,
           "results": [first, second], "cwd": cwd, "after_first": root / "after-first"}


def run_import(db_path, *paths, args=(), env=None):
    result = subprocess.run(CLI + ["import", "cline", *map(str, paths), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result


def expected(total):
    """The stand-in's usage in our four kinds: its prompt count includes the cached tokens, its
    completion count the reasoning."""
    return {"input_tokens": total["prompt_tokens"] - total["cached_tokens"], "output_tokens": total["completion_tokens"],
            "cache_read_tokens": total["cached_tokens"], "cache_write_tokens": 0}


def totals(db_path):
    sessions = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM sessions")[0]
    messages = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")[0]
    return dict(zip(KINDS, sessions)), dict(zip(KINDS, messages))


def test_the_pinned_cli_ran_both_tasks(run):
    out = subprocess.run([str(CLINE), "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == CLINE_VERSION
    answered = run["api"].answers(None)
    assert [r.turn for r in answered] == [0, 1, 0, 1] and {r.kind for r in answered} == {"main"}
    assert all(r.headers.get("authorization") == "Bearer test-key-0000" for r in answered)
    assert all(r.body["stream"] and r.body["stream_options"]["include_usage"] for r in answered)
    assert [r["finishReason"] for r in run["results"]] == ["completed"] * 2 and len(run["folders"]) == 2


def test_the_tokens_are_the_apis_counted_once(run, db_path):
    result = run_import(db_path, run["sessions"])
    assert "into 2 new and 0 updated sessions from 2 files" in result.stdout and "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    want = expected(run["api"].usage_sum())
    assert want["output_tokens"] > 0 and session_totals == message_totals == want
    # Cline's own totals for the first task agree.
    assert run["results"][0]["usage"]["cacheReadTokens"] == run["first"]["cached_tokens"]


def test_the_session_rows(run, db_path, api):
    run_import(db_path, run["sessions"])
    listed = sorted(api.get("/api/sessions?limit=10").get_json()["sessions"], key=lambda s: s["createdAt"])
    assert [s["externalId"] for s in listed] == [p.name for p in run["folders"]]
    assert {s["source"] for s in listed} == {"cline"} and [s["title"] for s in listed] == PROMPTS
    assert {(s["projectPath"], s["model"]) for s in listed} == {(str(run["cwd"]), MODEL)}


def test_the_cost_is_estimated_from_the_models_price(run, db_path, api):
    """Cline has no price for a model behind an OpenAI-compatible URL (it records 0): estimated."""
    from opensync_lite.pricing import price

    run_import(db_path, run["sessions"])
    listed = api.get("/api/sessions?limit=10").get_json()["sessions"]
    want = sum(price(MODEL, u["prompt_tokens"] - u["prompt_tokens_details"]["cached_tokens"], u["completion_tokens"], 0,
                     u["prompt_tokens_details"]["cached_tokens"]) for u in (r.usage for r in run["api"].answers()))
    assert {s["costBasis"] for s in listed} == {"estimated"} and want > 0
    assert sum(s["cost"] for s in listed) == pytest.approx(want, rel=1e-6)


def test_clines_own_cost_is_kept(run, db_path, api, tmp_path):
    folder = tmp_path / "sessions"
    shutil.copytree(run["folders"][0], folder / run["folders"][0].name)
    (messages,) = folder.rglob("*.messages.json")
    document = json.loads(messages.read_text())
    for m in document["messages"]:
        if "metrics" in m:
            m["metrics"]["cost"] = 0.125
    messages.write_text(json.dumps(document))
    run_import(db_path, folder)
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["cost"] == pytest.approx(0.25) and listed["costBasis"] != "estimated"


def test_the_conversation_with_the_tool_call_and_its_output(run, db_path, api):
    run_import(db_path, run["sessions"])
    sent = [r.tool_call_ids for r in run["api"].answers() if r.tool_call_ids]
    for folder, prompt, call_ids in zip(run["folders"], PROMPTS, sent):
        messages = api.session(folder.name)["messages"]
        assert [m["textContent"] for m in messages if m["role"] == "user"] == [prompt]
        assert [p["type"] for m in messages for p in m["parts"]] == ["text", "thinking", "tool-call", "tool-result", "text"]
        (call,) = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
        (result,) = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
        assert call["name"] == "run_commands" and call["input"] == {"commands": [COMMAND]}
        assert [call["id"]] == [result["toolUseId"]] == call_ids
        assert result["content"].strip() == "expected 10 tokens" and not result["isError"]
        thinking = [p["content"] for m in messages for p in m["parts"] if p["type"] == "thinking"]
        assert thinking == ["Run the command the user asked for."]


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["sessions"])
    before = snapshot(db_path)
    again = run_import(db_path, run["sessions"])
    assert "0 files (2 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_a_later_task_adds_only_its_session(run, db_path, tmp_path):
    folder = tmp_path / "sessions"
    shutil.copytree(run["after_first"], folder)
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"])
    shutil.copytree(run["folders"][1], folder / run["folders"][1].name)
    second = run_import(db_path, folder)
    assert "Imported 4 messages into 1 new and 0 updated sessions from 1 files (1 unchanged" in second.stdout
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())


def test_dry_run_writes_nothing_and_bad_data_is_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["sessions"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 8 messages into 2 new") and snapshot(db_path) == before
    folder = tmp_path / "bad"
    shutil.copytree(run["folders"][0], folder / run["folders"][0].name)
    (messages,) = folder.rglob("*.messages.json")
    document = json.loads(messages.read_text())
    document["messages"] += [7, {"role": "system"}, {"id": "x", "role": "assistant", "content": [{"type": "text", "text": "hi"}],
                                                     "metrics": {"inputTokens": 10**30, "outputTokens": float("nan")}}]
    messages.write_text(json.dumps(document))
    (folder / "s2").mkdir()
    (folder / "s2" / "s2.messages.json").write_text("{not json")
    result = run_import(db_path, folder)
    assert "3 lines skipped" in result.stdout and "not JSON" in result.stderr
    assert "neither a user nor an assistant" in result.stderr
    assert totals(db_path)[0] == expected(run["first"])  # out-of-bounds counts count as 0


def test_no_sessions_folder_is_a_clear_error_and_the_default_is_home_cline(run, tmp_path, db_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINE_")}
    result = subprocess.run(CLI + ["import", "cline", "--db", db_path], capture_output=True, text=True, timeout=60,
                            env={**env, "HOME": str(tmp_path)})
    assert result.returncode != 0 and "no Cline sessions" in result.stderr
    home = run["sessions"].parent.parent.parent
    assert "into 2 new" in run_import(db_path, env={**env, "HOME": str(home)}).stdout
    every = subprocess.run(CLI + ["import", "all", "--db", db_path], capture_output=True, text=True, timeout=120,
                           env={**env, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")})
    assert every.returncode == 0 and "Cline: Imported 0 messages" in every.stdout


def test_serve_watches_clines_sessions_folder_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.cline/data/sessions (from before it exists), and the
    session the real CLI writes there arrives with the stand-in's tokens, counted once."""
    home, cwd = fresh_home(tmp_path)
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        for _ in range(100):  # the banner is read as serve prints it
            if any("Watching" in line for line in server.banner):
                break
            time.sleep(0.05)
        assert any("Watching" in line and ".cline/data/sessions (Cline, once it exists)" in line
                   for line in server.banner), server.banner
        key = server.create_key()
        with StandIn(script()) as api:
            task(home, cwd, api, PROMPTS[0])
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
        assert session["source"] == "cline" and session["title"] == PROMPTS[0]
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
    finally:
        server.stop()
