"""`opensync-lite import claude-code` on a history the test writes: tokens equal ccusage's
(17.2.1, run offline on the same files), sessions shaped like the live plugin's, subagents
linked, re-runs incremental and idempotent, a live session and its import merged."""

import json
import os
import subprocess
from collections import defaultdict

import pytest

from claude_history import MODELS, START, make_history, write
from conftest import CLI, NODE_BIN, rows, snapshot, watch_import

pytestmark = pytest.mark.both_databases

KINDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
CCUSAGE_KINDS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")


def run_import(db_path, root, *args):
    result = subprocess.run(CLI + ["import", "claude-code", str(root), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def history(tmp_path):
    return make_history(tmp_path / "home")


@pytest.fixture
def imported(history, db_path):
    result = run_import(db_path, history["root"])
    return result


def ccusage(home):
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    out = subprocess.run([str(NODE_BIN / "ccusage"), "session", "--json", "--offline"], env={**env, "HOME": str(home)},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


def test_tokens_and_cost_equal_ccusage(history, db_path, imported):
    theirs = ccusage(history["root"].parent.parent)
    per_model = defaultdict(lambda: dict.fromkeys(CCUSAGE_KINDS, 0))
    for session in theirs["sessions"]:
        for breakdown in session["modelBreakdowns"]:
            for kind in CCUSAGE_KINDS:
                per_model[breakdown["modelName"]][kind] += breakdown[kind]
    # Ours, from the stored messages (each response's tokens sit on one message) and sessions.
    ours = {model: dict(zip(CCUSAGE_KINDS, sums)) for model, *sums in rows(
        db_path, f"SELECT model, {', '.join(f'SUM({k})' for k in KINDS)} FROM messages WHERE model IS NOT NULL GROUP BY model")}
    api_models = {m for m in per_model if m != "<synthetic>"}
    assert {m: per_model[m] for m in api_models} == {m: ours[m] for m in api_models}
    assert set(ours) == api_models  # <synthetic> is counted, never listed as a model
    (totals,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)}, SUM(cost) FROM sessions")
    assert list(totals[:4]) == [theirs["totals"][k] for k in CCUSAGE_KINDS]
    assert totals[4] == pytest.approx(theirs["totals"]["totalCost"], rel=0.005)
    assert "1 lines skipped" in imported.stdout and "not JSON" in imported.stderr


def test_sessions_look_like_the_live_plugins(api, history, db_path, imported):
    listed = {s["externalId"]: s for s in api.get("/api/sessions?limit=100").get_json()["sessions"]}
    assert set(listed) == set(history["sessions"]) | {"beta-session-0/agent-abc", "gamma-session-2/agent-sidechain"}
    alpha0, alpha1 = listed["alpha-session-0"], listed["alpha-session-1"]
    assert alpha0["source"] == "claude-code" and alpha0["title"] == "Alpha work 0"  # the summary line
    assert alpha1["title"] == "Please refactor the alpha parser, part 1"  # the first real prompt, not isMeta
    assert alpha0["projectPath"] == "/home/dev/alpha" and alpha0["projectName"] == "alpha"
    assert alpha0["createdAt"] == int(history["sessions"]["alpha-session-0"]["first"].timestamp() * 1000)
    assert alpha1["durationMs"] == (19 * 24 - 1) * 3_600_000  # resumed 20 days in, in another file
    assert alpha0["promptTokens"] == alpha0["inputTokens"] + alpha0["cacheWriteTokens"] + alpha0["cacheReadTokens"]
    assert alpha0["model"] in MODELS
    detail = api.session("alpha-session-0")
    kinds = {p["type"] for m in detail["messages"] for p in m["parts"]}
    assert {"thinking", "text"} <= kinds
    assert {m["role"] for m in detail["messages"]} == {"user", "assistant"}


def test_subagents_are_their_own_sessions_linked_to_the_parent(api, imported):
    child = api.session("beta-session-0/agent-abc")["session"]
    assert child["parentExternalId"] == "beta-session-0" and child["totalTokens"] > 0
    children = api.get("/api/sessions?parent=beta-session-0").get_json()["sessions"]
    assert [c["externalId"] for c in children] == ["beta-session-0/agent-abc"]
    parent_messages = api.session("beta-session-0")["messages"]
    assert not any("subagent step" in m["textContent"] for m in parent_messages)
    assert api.session("gamma-session-2/agent-sidechain")["session"]["parentExternalId"] == "gamma-session-2"


def test_rerun_changes_nothing_and_appends_are_read_alone(history, db_path, imported):
    before = snapshot(db_path)
    again = run_import(db_path, history["root"])
    assert "0 lines read" in again.stdout and snapshot(db_path) == before
    # A new response in one file, then a later, bigger copy of it: it counts once, the larger.
    w, cwd = history["writer"], "/home/dev/alpha"
    t = START + timedelta_days(30)
    lines = w.response("alpha-session-2", t, cwd, MODELS[0], [{"type": "text", "text": "later"}])
    path = history["root"] / "-home-dev-alpha" / "alpha-session-2.jsonl"
    write(path, lines)
    (before_total,) = rows(db_path, "SELECT output_tokens FROM sessions WHERE external_id = 'alpha-session-2'")[0]
    result = run_import(db_path, history["root"])
    assert f"({len(history['sessions']) + 2 - 1} unchanged, 1 lines read)" in result.stdout
    (after_total,) = rows(db_path, "SELECT output_tokens FROM sessions WHERE external_id = 'alpha-session-2'")[0]
    added = lines[0]["message"]["usage"]["output_tokens"]
    assert after_total == before_total + added
    grown = json.loads(json.dumps(lines[0]))
    grown["uuid"] = "grown-copy"
    grown["message"]["usage"]["output_tokens"] += 500
    write(path, [grown])
    run_import(db_path, history["root"])
    (final,) = rows(db_path, "SELECT output_tokens FROM sessions WHERE external_id = 'alpha-session-2'")[0]
    assert final == after_total + 500  # the larger copy replaced the first, not added to it


def timedelta_days(n):
    from datetime import timedelta

    return timedelta(days=n)


def test_dry_run_writes_nothing(history, db_path, api):
    before = snapshot(db_path)
    result = run_import(db_path, history["root"], "--dry-run")
    assert result.stdout.startswith("Would import") and snapshot(db_path) == before
    assert rows(db_path, "SELECT COUNT(*) FROM import_files") == [(0,)]


def test_a_live_session_and_its_import_are_one(api, history, db_path):
    path = history["root"] / "-home-dev-alpha" / "alpha-session-0.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assistant = next(line for line in lines if line.get("type") == "assistant")
    # What claude-code-sync sends while the session runs: the session, then assistant messages by uuid.
    api.post("/sync/session", {"externalId": "alpha-session-0", "source": "claude-code", "title": "live title"})
    api.post("/sync/message", {"sessionExternalId": "alpha-session-0", "externalId": assistant["uuid"],
                               "role": "assistant", "textContent": "live copy", "source": "claude-code"})
    tool_line = next(line for line in lines if line.get("type") == "assistant"
                     and line["message"]["content"][0]["type"] == "tool_use")
    tool_id = tool_line["message"]["content"][0]["id"]
    api.post("/sync/message", {"sessionExternalId": "alpha-session-0", "externalId": tool_id, "role": "assistant",
                               "source": "claude-code", "parts": [{"type": "tool-call", "content": {"toolName": "Edit"}}]})
    prompt = next(line for line in lines if line.get("type") == "user" and not line.get("isMeta"))
    api.post("/sync/message", {"sessionExternalId": "alpha-session-0", "externalId": "alpha-session-0-user-1767225600123",
                               "role": "user", "textContent": prompt["message"]["content"], "source": "claude-code"})
    run_import(db_path, history["root"])
    detail = api.session("alpha-session-0")
    ids = [m["externalId"] for m in detail["messages"]]
    assert len(ids) == len(set(ids)) and assistant["uuid"] in ids
    prompts = [m for m in detail["messages"] if m["textContent"] == prompt["message"]["content"]]
    assert [m["externalId"] for m in prompts] == ["alpha-session-0-user-1767225600123"]  # one copy
    calls = [p for m in detail["messages"] for p in m["parts"] if p["type"] == "tool-call"
             and (p["content"].get("id") == tool_id or m["externalId"] == tool_id)]
    assert len(calls) == 1  # the live plugin's copy of the tool call, not a second one
    assert rows(db_path, "SELECT COUNT(*) FROM sessions WHERE external_id = 'alpha-session-0'") == [(1,)]
    assert detail["session"]["title"] == "Alpha work 0"


def test_unknown_model_is_unpriced_not_free(api, tmp_path, db_path):
    root = tmp_path / "p"
    w = make_history(tmp_path / "unused")["writer"]
    write(root / "x" / "s.jsonl", w.response("odd", START, "/w", "acme-model-9", [{"type": "text", "text": "hi"}]))
    run_import(db_path, root)
    session = api.session("odd")["session"]
    assert session["cost"] == 0 and session["totalTokens"] > 0
    assert rows(db_path, "SELECT cost_status FROM sessions WHERE external_id = 'odd'") == [("unpriced",)]


def test_watch_picks_up_an_appended_line(history, db_path):
    w = history["writer"]
    watch_import("claude-code", history["root"], db_path,
                 lambda: write(history["root"] / "-home-dev-gamma" / "gamma-session-0.jsonl",
                               w.user("gamma-session-0", START, "one more thing", "/home/dev/gamma")),
                 "SELECT COUNT(*) FROM messages WHERE text_content = 'one more thing'")


def test_a_progress_bar_on_a_terminal_and_none_when_piped(history, db_path, tmp_path):
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(CLI + ["import", "claude-code", str(history["root"]), "--db", db_path, "--dry-run"],
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    out, _ = proc.communicate(timeout=120)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0 and out.startswith("Would import")
    assert b"Importing" in shown and b"100%" in shown
    piped = run_import(db_path, history["root"], "--dry-run")
    assert "Importing" not in piped.stderr and "%" not in piped.stderr


def test_the_files_its_tool_calls_edited_are_indexed(api, history, imported):
    # What the transcripts say each session edited, read from the files themselves.
    expected = defaultdict(set)
    for transcript in history["root"].rglob("*.jsonl"):
        for line in transcript.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            content = entry.get("message", {}).get("content") if isinstance(entry.get("message"), dict) else None
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_use" and block.get("name") == "Edit" and not entry.get("isSidechain"):
                    expected[entry["sessionId"], block["input"]["file_path"]].add(entry["cwd"])
    assert expected, "the history holds Edit calls"
    by_file = defaultdict(set)
    for session, path in expected:
        by_file[path].add(session)
    for path, sessions in by_file.items():
        found = api.get(f"/api/files?path={path}").get_json()
        assert {s["externalId"] for s in found["sessions"]} == sessions, path
        assert all(f["changed"] for s in found["sessions"] for f in s["files"])
    files = api.session("alpha-session-0")["files"]
    assert {f["relPath"] for f in files} == {p for (s, p) in expected if s == "alpha-session-0"}
