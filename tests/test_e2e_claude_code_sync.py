"""End to end: the published claude-code-sync client against `opensync-lite serve`."""

import json
import os
import subprocess
import urllib.parse
import urllib.request

import pytest

from conftest import CLI, NODE_BIN

pytestmark = pytest.mark.both_databases

CLIENT = NODE_BIN / "claude-code-sync"
SESSION = "e2e-session-1"
MODEL = "claude-sonnet-4-20250514"
PROMPT = "Fix the failing parser test"


@pytest.fixture
def env(live_server, tmp_path):
    assert CLIENT.exists(), f"{CLIENT} is missing: run `make test` (npm ci --prefix tests)"
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CLAUDE_SYNC_CONVEX_URL": live_server.url,
        "CLAUDE_SYNC_API_KEY": live_server.create_key(),
    }


def run_client(env, *args, stdin=None):
    done = subprocess.run(
        [str(CLIENT), *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )
    # Hooks exit 0 even when a sync fails; the failure shows only on stderr.
    assert "Error" not in done.stderr, done.stderr
    assert "failed" not in done.stdout.lower(), done.stdout
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def hook(env, event, payload):
    return run_client(env, "hook", event, stdin=json.dumps(payload))


def api_get(env, path):
    request = urllib.request.Request(
        env["CLAUDE_SYNC_CONVEX_URL"] + path, headers={"Authorization": f"Bearer {env['CLAUDE_SYNC_API_KEY']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def transcript_lines(cwd):
    def entry(kind, uuid, ts, message):
        return {"type": kind, "uuid": uuid, "timestamp": ts, "cwd": cwd, "sessionId": SESSION, "message": message}

    return [
        entry("user", "u1", "2026-11-25T10:00:00.000Z", {"role": "user", "content": PROMPT}),
        entry("assistant", "a1", "2026-11-25T10:00:05.000Z", {
            "model": MODEL, "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look at the tests."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ],
            "usage": {"input_tokens": 100, "output_tokens": 50,
                      "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000},
        }),
        entry("user", "u2", "2026-11-25T10:00:06.000Z", {
            "role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}],
        }),
        entry("assistant", "a2", "2026-11-25T10:03:30.000Z", {
            "model": MODEL, "role": "assistant",
            "content": [{"type": "text", "text": "Fixed: the parser now handles <b>tags</b> and 'quotes'."}],
            "usage": {"input_tokens": 200, "output_tokens": 80,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3000},
        }),
    ]


def test_synctest_creates_a_session(env):
    done = run_client(env, "synctest")
    assert "Test session created successfully" in done.stdout
    sessions = api_get(env, "/api/sessions")["sessions"]
    assert len(sessions) == 1
    assert sessions[0]["source"] == "claude-code" and sessions[0]["title"] == "Connection Test"
    assert sessions[0]["projectName"] == "synctest"
    # The dashboard's rule for a connection test holds for what the real client sends.
    from opensync_lite.queries import is_connection_test

    assert is_connection_test({"external_id": sessions[0]["externalId"], "title": sessions[0]["title"],
                               "project_name": sessions[0]["projectName"], "project_path": sessions[0]["projectPath"]})
    assert api_get(env, "/api/sessions/filters")["projects"] == []  # it is no project


def test_a_full_claude_code_session(env, tmp_path, live_server):
    cwd = str(tmp_path / "demo-proj")
    os.mkdir(cwd)
    transcript = tmp_path / "transcript.jsonl"
    base = {"session_id": SESSION, "transcript_path": str(transcript), "cwd": cwd}

    hook(env, "SessionStart", {**base, "hook_event_name": "SessionStart", "source": "startup", "model": MODEL})
    hook(env, "UserPromptSubmit", {**base, "hook_event_name": "UserPromptSubmit", "prompt": PROMPT})
    hook(env, "PostToolUse", {
        **base, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
        "tool_input": {"command": "ls"}, "tool_response": {"stdout": "a.txt", "stderr": "", "interrupted": False},
    })  # as Claude Code sends it: `tool_response`, which claude-code-sync 0.1.15 does not read
    transcript.write_text("".join(json.dumps(line) + "\n" for line in transcript_lines(cwd)))
    hook(env, "Stop", {**base, "hook_event_name": "Stop", "stop_hook_active": False})
    hook(env, "Stop", {**base, "hook_event_name": "Stop", "stop_hook_active": False})
    # Make the client forget what it synced, so its third Stop resends every message:
    # the server must not duplicate them.
    state_file = tmp_path / "home" / ".config" / "claude-code-sync" / "session-state.json"
    state = json.loads(state_file.read_text())
    state[SESSION]["syncedMessageUuids"] = []
    state_file.write_text(json.dumps(state))
    hook(env, "Stop", {**base, "hook_event_name": "Stop", "stop_hook_active": False})
    hook(env, "SessionEnd", {**base, "hook_event_name": "SessionEnd", "reason": "exit"})

    got = api_get(env, f"/api/sessions/get?id={SESSION}")
    session, messages = got["session"], got["messages"]
    assert session["source"] == "claude-code"
    assert session["title"] == PROMPT
    assert session["model"] == MODEL
    assert session["projectPath"] == cwd and session["projectName"] == "demo-proj"
    assert session["promptTokens"] == 100 + 1000 + 2000 + 200 + 0 + 3000
    assert session["completionTokens"] == 130
    assert session["totalTokens"] == 6300 + 130
    expected_cost = (300 * 3 + 1000 * 3.75 + 5000 * 0.30 + 130 * 15) / 1_000_000
    assert session["cost"] == pytest.approx(expected_cost)
    assert session["durationMs"] == 210_000
    assert session["toolCallCount"] == 1
    assert session["endReason"] == "exit"

    by_role = {}
    for m in messages:
        by_role.setdefault(m["role"], []).append(m)
    assert [m["textContent"] for m in by_role["user"]] == [PROMPT]
    tool = [m for m in by_role["assistant"] if m["externalId"] == "toolu_1"]
    assert len(tool) == 1
    assert tool[0]["parts"][0] == {"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": "ls"}}}
    assert "a.txt" not in json.dumps(tool[0]["parts"])  # the plugin never has the result
    texts = [m["textContent"] for m in by_role["assistant"] if m["externalId"] in ("a1", "a2")]
    assert texts == ["Let me look at the tests.", "Fixed: the parser now handles <b>tags</b> and 'quotes'."]
    assert all(m["model"] == MODEL for m in by_role["assistant"] if m["externalId"] in ("a1", "a2"))
    assert len(messages) == 4 and len({m["externalId"] for m in messages}) == 4
    assert session["messageCount"] == 4
    assert len(api_get(env, "/api/sessions")["sessions"]) == 1

    # The dashboard shows it with its source, and the source filter keeps or drops it.
    page = dashboard(env)
    assert PROMPT in page("/sessions?source=claude-code") and ">claude-code</span>" in page("/sessions?source=claude-code")
    assert PROMPT not in page("/sessions?source=opencode")

    # Importing the same transcript later: one session, one copy of each message; the
    # transcript's message holding the call (and its result) replaces the plugin's copy of it.
    subprocess.run([*CLI, "import", "claude-code", str(transcript), "--db", live_server.db_path],
                   check=True, capture_output=True, timeout=60)
    again = api_get(env, f"/api/sessions/get?id={SESSION}")
    prompt_id = by_role["user"][0]["externalId"]
    assert [m["externalId"] for m in again["messages"]] == [prompt_id, "a1", "u2", "a2"]
    assert [p["type"] for p in again["messages"][1]["parts"]] == ["text", "tool-call"]
    assert again["messages"][2]["parts"] == [
        {"type": "tool-result", "content": {"toolUseId": "toolu_1", "content": "a.txt", "isError": False}}]
    assert again["session"]["messageCount"] == 4 and again["session"]["toolCallCount"] == 1
    assert again["session"]["promptTokens"] == 6300 and again["session"]["completionTokens"] == 130
    assert again["session"]["cacheReadTokens"] == 5000 and again["session"]["cacheWriteTokens"] == 1000
    # The transcript records no cost: its exact tokens are priced here, and that wins over the plugin's figure.
    assert again["session"]["cost"] == pytest.approx(expected_cost) and again["session"]["costBasis"] == "estimated"


def dashboard(env):
    """Sign in to the live server's dashboard with the key; returns a page getter."""
    import http.cookiejar
    import re

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = env["CLAUDE_SYNC_CONVEX_URL"]
    form = opener.open(base + "/signin", timeout=10).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "key": env["CLAUDE_SYNC_API_KEY"]}).encode()
    opener.open(urllib.request.Request(base + "/signin", data=body, method="POST"), timeout=10).read()
    return lambda path: opener.open(base + path, timeout=10).read().decode()


def test_synctest_with_the_config_file_instead_of_the_environment(env):
    config_dir = os.path.join(env["HOME"], ".config", "claude-code-sync")
    os.makedirs(config_dir)
    with open(os.path.join(config_dir, "config.json"), "w") as f:
        json.dump({"convexUrl": env["CLAUDE_SYNC_CONVEX_URL"], "apiKey": env["CLAUDE_SYNC_API_KEY"],
                   "autoSync": True, "syncToolCalls": True}, f)
    file_only = {"PATH": env["PATH"], "HOME": env["HOME"]}
    assert "Test session created successfully" in run_client(file_only, "synctest").stdout
    assert api_get(env, "/api/sessions")["sessions"][0]["source"] == "claude-code"


def test_the_files_its_tool_calls_touched_are_found_by_path(env, tmp_path):
    cwd = str(tmp_path / "parser-proj")
    os.mkdir(cwd)
    base = {"session_id": "e2e-files", "transcript_path": str(tmp_path / "none.jsonl"), "cwd": cwd}
    hook(env, "SessionStart", {**base, "hook_event_name": "SessionStart", "source": "startup", "model": MODEL})
    for n, (tool, args) in enumerate([("Read", {"file_path": f"{cwd}/src/parser.py"}),
                                      ("Edit", {"file_path": f"{cwd}/src/parser.py", "old_string": "a", "new_string": "b"}),
                                      ("Write", {"file_path": f"{cwd}/tests/test_parser.py", "content": "x"})]):
        hook(env, "PostToolUse", {**base, "hook_event_name": "PostToolUse", "tool_name": tool, "tool_use_id": f"toolu_f{n}",
                                  "tool_input": args, "tool_response": {"ok": True}})
    found = api_get(env, "/api/files?path=src/parser.py")
    assert [s["externalId"] for s in found["sessions"]] == ["e2e-files"]
    assert found["sessions"][0]["files"] == [
        {"path": f"{cwd}/src/parser.py", "relPath": "src/parser.py", "changed": True, "messages": 2}]
    files = api_get(env, "/api/sessions/get?id=e2e-files")["files"]
    assert [(f["relPath"], f["changed"]) for f in files] == [("src/parser.py", True), ("tests/test_parser.py", True)]


def test_star_find_by_file_export_golden_and_hand_off_html_without_the_secret(env, tmp_path):
    """The curate-and-share story on a session the real plugin synced: star and tag it, find it
    by the file it changed, export the golden sessions for DeepEval, and hand off one HTML file."""
    os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
    from deepeval.dataset import EvaluationDataset

    secret = "sk-ant-api03-" + "Vq3" * 30 + "AA"
    cwd = str(tmp_path / "parser-app")
    os.mkdir(cwd)
    transcript = tmp_path / "story.jsonl"
    base = {"session_id": "story", "transcript_path": str(transcript), "cwd": cwd}
    prompt = f"Fix src/parser.py; the API key is {secret}"
    hook(env, "SessionStart", {**base, "hook_event_name": "SessionStart", "source": "startup", "model": MODEL})
    hook(env, "UserPromptSubmit", {**base, "hook_event_name": "UserPromptSubmit", "prompt": prompt})
    hook(env, "PostToolUse", {**base, "hook_event_name": "PostToolUse", "tool_name": "Edit", "tool_use_id": "toolu_e",
                              "tool_input": {"file_path": f"{cwd}/src/parser.py", "old_string": "<", "new_string": "<="},
                              "tool_response": {"ok": True}})
    lines = [{"type": "user", "uuid": "u1", "timestamp": "2026-11-25T10:00:00.000Z", "cwd": cwd, "sessionId": "story",
              "message": {"role": "user", "content": prompt}},
             {"type": "assistant", "uuid": "a1", "timestamp": "2026-11-25T10:01:00.000Z", "cwd": cwd, "sessionId": "story",
              "message": {"model": MODEL, "role": "assistant", "content": [{"type": "text", "text": "Fixed the off-by-one."}],
                          "usage": {"input_tokens": 10, "output_tokens": 5}}}]
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    hook(env, "Stop", {**base, "hook_event_name": "Stop", "stop_hook_active": False})
    hook(env, "SessionEnd", {**base, "hook_event_name": "SessionEnd", "reason": "exit"})

    def call(method, path, body=None):
        request = urllib.request.Request(
            env["CLAUDE_SYNC_CONVEX_URL"] + path, method=method, data=body and json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {env['CLAUDE_SYNC_API_KEY']}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    curated = json.loads(call("PATCH", "/api/sessions?externalId=story",
                              {"starred": True, "tags": ["parser"], "evalStatus": "golden"}))["session"]
    assert (curated["starred"], curated["tags"], curated["evalStatus"]) == (True, ["parser"], "golden")
    found = api_get(env, "/api/files?path=src/parser.py")
    assert [s["externalId"] for s in found["sessions"]] == ["story"] and found["sessions"][0]["files"][0]["changed"]

    dataset_file = tmp_path / "golden.json"
    dataset_file.write_text(call("GET", "/api/export/evals?format=deepeval&evalStatus=golden&tag=parser"))
    dataset = EvaluationDataset()
    dataset.add_test_cases_from_json_file(str(dataset_file), input_key_name="input", actual_output_key_name="actual_output",
                                          expected_output_key_name="expected_output", tools_called_key_name="tools_called")
    (case,) = dataset.test_cases
    assert case.input == "Fix src/parser.py; the API key is [REDACTED]"
    assert case.expected_output == case.actual_output == "Fixed the off-by-one."
    assert [t.name for t in case.tools_called] == ["Edit"]

    page = call("GET", "/api/export?externalId=story&format=html")
    assert secret not in page and "[REDACTED]" in page and "<script" not in page.lower()
    assert secret not in dataset_file.read_text()
