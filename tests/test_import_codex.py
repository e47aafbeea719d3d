"""`opensync-lite import codex` on what the real Codex CLI (0.171.0, pinned in tests/package.json)
wrote: `codex exec` and then `codex exec resume --last` in a fresh HOME, against the scripted
Responses API stand-in (tests/openai_standin.py). The stand-in's usage is the only number the
tests know in advance."""

import json
import os
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from conftest import CLI, NODE_BIN, LiveServer, rows, snapshot
from openai_standin import MODEL, StandIn

PROMPT = "Please run: echo expected 10 tokens"
RESUME_PROMPT = "Now run it once more"
CODEX_VERSION = "0.171.0"
BRANCH = "feature/cart"


def config(url):
    return f'''model = "{MODEL}"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.fake]
name = "fake"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "FAKE_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0
'''


def codex(home, cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
    env.update(HOME=str(home), FAKE_OPENAI_KEY="sk-test-0000", NO_COLOR="1")
    done = subprocess.run([str(NODE_BIN / "codex"), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"codex exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two turns of one session; the sessions folder is also kept as it was after the first."""
    root = tmp_path_factory.mktemp("codex")
    home, cwd = root / "home", root / "project"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    # A git repository on a branch of its own: Codex records the branch in session_meta.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(cwd)]
    subprocess.run([*git, "init", "-q", "-b", BRANCH], check=True)
    (cwd / "README").write_text("cart\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    with StandIn() as api:
        (home / ".codex" / "config.toml").write_text(config(api.url))
        codex(home, cwd, "exec", "--skip-git-repo-check", PROMPT)
        shutil.copytree(home / ".codex" / "sessions", root / "after-first")
        first = api.usage_sum()
        codex(home, cwd, "exec", "--skip-git-repo-check", "--json", "resume", "--last", RESUME_PROMPT)
    (rollout,) = (home / ".codex" / "sessions").rglob("rollout-*.jsonl")
    lines = [json.loads(line) for line in rollout.read_text().splitlines()]
    return {"root": root, "sessions": home / ".codex" / "sessions", "rollout": rollout, "lines": lines, "api": api,
            "first": first, "cwd": cwd, "after_first": root / "after-first"}


def run_import(db_path, *paths, args=()):
    result = subprocess.run(CLI + ["import", "codex", *map(str, paths), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def ms(stamp):
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def expected(total):
    """The stand-in's usage in our four kinds: its input includes the cached tokens and the cache
    writes (every prompt token is one of the three)."""
    return {"input_tokens": total["input_tokens"] - total["cached_tokens"] - total["cache_write_tokens"],
            "output_tokens": total["output_tokens"],
            "cache_read_tokens": total["cached_tokens"], "cache_write_tokens": total["cache_write_tokens"]}


KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def totals(db_path):
    (session,) = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions")
    (messages,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")
    return dict(zip(KINDS, session)), dict(zip(KINDS, messages))


def test_the_pinned_cli_ran_both_turns(run):
    out = subprocess.run([str(NODE_BIN / "codex"), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == f"codex-cli {CODEX_VERSION}"
    answered = run["api"].responses()
    assert [r.turn for r in answered] == [0, 1, 0, 1] and {r.kind for r in answered} == {"main"}
    meta = run["lines"][0]
    assert meta["type"] == "session_meta" and meta["payload"]["cli_version"] == CODEX_VERSION
    # Both turns in the one file, each response's usage recorded once.
    records = [line for line in run["lines"] if line["type"] == "token_usage_record"]
    assert [r["payload"]["response_id"] for r in records] == [r.response_id for r in answered]


def test_one_session_with_the_stand_ins_tokens_counted_once(run, db_path, api):
    result = run_import(db_path, run["sessions"])
    assert "into 1 new and 0 updated sessions from 1 files" in result.stdout and "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    want = expected(run["api"].usage_sum())
    assert session_totals == want and message_totals == want
    meta = run["lines"][0]
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == meta["payload"]["id"] and listed["source"] == "codex-cli"
    assert listed["projectPath"] == str(run["cwd"]) and listed["projectName"] == "project"
    assert listed["model"] == MODEL and listed["title"] == PROMPT
    assert listed["createdAt"] == ms(meta["timestamp"]) and listed["updatedAt"] == ms(run["lines"][-1]["timestamp"])
    assert meta["payload"]["git"]["branch"] == BRANCH and listed["extra"]["gitBranch"] == BRANCH
    assert listed["promptTokens"] == want["input_tokens"] + want["cache_read_tokens"] + want["cache_write_tokens"]


def test_the_cost_is_estimated_from_the_models_price(run, db_path, api):
    from opensync_lite.pricing import price

    run_import(db_path, run["sessions"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    want = sum(price(MODEL, u["input_tokens"] - u["input_tokens_details"]["cached_tokens"]
                     - u["input_tokens_details"]["cache_write_tokens"], u["output_tokens"],
                     u["input_tokens_details"]["cache_write_tokens"], u["input_tokens_details"]["cached_tokens"])
               for u in (r.usage for r in run["api"].responses()))
    assert listed["costBasis"] == "estimated" and want > 0
    assert listed["cost"] == pytest.approx(want, rel=1e-6)


def test_the_conversation_in_file_order(run, db_path, api):
    run_import(db_path, run["sessions"])
    detail = api.session(run["lines"][0]["payload"]["id"])
    messages = detail["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    kinds = [p["type"] for m in messages for p in m["parts"]]
    # Per turn: the prompt, the reasoning, the call, its output, the answer.
    assert kinds == ["text", "thinking", "tool-call", "tool-result", "text"] * 2
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["exec_command"] * 2
    assert [c["input"] for c in calls] == [{"cmd": "echo expected 10 tokens"}] * 2
    assert [r["toolUseId"] for r in results] == [c["id"] for c in calls] and len({c["id"] for c in calls}) == 2
    assert all("expected 10 tokens" in r["content"] for r in results)
    assert "developer" not in {m["role"] for m in messages}
    assert not any("<environment_context>" in m["textContent"] for m in messages)


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["sessions"])
    before = snapshot(db_path)
    again = run_import(db_path, run["sessions"])
    assert "0 files (1 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_a_resumed_turn_is_read_from_where_the_first_import_stopped(run, db_path, tmp_path):
    folder = tmp_path / "sessions"
    shutil.copytree(run["after_first"], folder)
    (copy,) = folder.rglob("rollout-*.jsonl")
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"])
    copy.write_bytes(run["rollout"].read_bytes())  # the resumed turn, appended to the same file
    second = run_import(db_path, folder)
    assert "into 0 new and 1 updated sessions" in second.stdout
    read = int(second.stdout.split(" lines read")[0].rsplit(" ", 1)[1])
    assert 0 < read < len(run["lines"])
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    assert rows(db_path, "SELECT title FROM sessions") == [(PROMPT,)]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(10,)]


def older_layout(lines):
    """The rollout as 0.99 writes it: no token_usage_record, and each token_count twice, with the
    same last usage."""
    out = []
    for line in lines:
        if line["type"] != "token_usage_record":
            out.append(json.dumps(line) + "\n")
            if line["type"] == "event_msg" and line["payload"].get("type") == "token_count":
                out.append(json.dumps(line) + "\n")
    return "".join(out)


def test_the_older_layout_counts_the_cumulative_total(run, db_path, tmp_path):
    older = tmp_path / "rollout-older.jsonl"
    older.write_text(older_layout(run["lines"]))
    run_import(db_path, older)
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())


def test_the_older_layout_read_in_two_runs(run, db_path, tmp_path):
    """The resumed turn's usage is the step from the total the first run ended on."""
    older = tmp_path / "rollout-older.jsonl"
    first_turn = next(n for n, line in enumerate(run["lines"]) if line["payload"].get("type") == "task_complete")
    older.write_text(older_layout(run["lines"][:first_turn + 1]))
    run_import(db_path, older)
    assert totals(db_path)[0] == expected(run["first"])
    older.write_text(older_layout(run["lines"]))
    assert "1 updated" in run_import(db_path, older).stdout
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())


def test_dry_run_writes_nothing_and_bad_lines_are_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["sessions"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 10 messages into 1 new") and snapshot(db_path) == before
    broken = tmp_path / "rollout-broken.jsonl"
    broken.write_text(run["rollout"].read_text() + "{not json\n")
    result = run_import(db_path, broken)
    assert "1 lines skipped" in result.stdout and "not JSON" in result.stderr
    assert totals(db_path)[0] == expected(run["api"].usage_sum())


def test_no_sessions_folder_is_a_clear_error(tmp_path, db_path):
    result = subprocess.run(CLI + ["import", "codex", "--db", db_path], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HOME": str(tmp_path), "CODEX_HOME": str(tmp_path / "none")})
    assert result.returncode != 0 and "no Codex sessions" in result.stderr


def test_the_default_folder_is_codex_home(run, db_path):
    env = {**os.environ, "CODEX_HOME": str(Path(run["sessions"]).parent)}
    result = subprocess.run(CLI + ["import", "codex", "--db", db_path], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and "into 1 new" in result.stdout


def test_hostile_lines_are_skipped_and_reported(run, db_path, tmp_path):
    """Lines of the wrong shape are reported with their line number; the rest is imported."""
    meta = run["lines"][0]
    bad = [
        {"timestamp": "not a date", "type": "response_item", "payload": {"type": "message", "role": "user"}},
        {"timestamp": meta["timestamp"], "type": "response_item", "payload": [1, 2]},
        [1, 2, 3],
        {"timestamp": meta["timestamp"], "type": "token_usage_record", "payload": {"response_id": 7, "usage": "x"}},
        {"timestamp": meta["timestamp"], "type": "response_item",
         "payload": {"type": "message", "role": "user", "content": 12}},
        {"timestamp": meta["timestamp"], "type": "token_usage_record",
         "payload": {"response_id": "resp_huge", "usage": {"input_tokens": 10**30, "cached_input_tokens": -5,
                                                           "output_tokens": float("nan")}}},
    ]
    hostile = tmp_path / "rollout-hostile.jsonl"
    hostile.write_text("".join(json.dumps(line) + "\n" for line in [*run["lines"], *bad]))
    orphan = tmp_path / "rollout-orphan.jsonl"  # no session_meta: nothing names its session
    orphan.write_text("".join(json.dumps(line) + "\n" for line in run["lines"][1:5]))
    result = run_import(db_path, hostile, orphan)
    assert "lines skipped" in result.stdout and "not a date" in result.stderr and "not a JSON object" in result.stderr
    assert "without response_id" in result.stderr and "before the session_meta" in result.stderr
    assert totals(db_path)[0] == expected(run["api"].usage_sum())  # out-of-bounds counts count as 0
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_serve_watches_codexs_sessions_folder_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.codex/sessions (from before it exists), and the
    session the real CLI writes there arrives with the stand-in's tokens, counted once."""
    home, cwd = tmp_path / "home", tmp_path / "project"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        for _ in range(100):  # the banner is read as serve prints it
            if any("Watching" in line for line in server.banner):
                break
            time.sleep(0.05)
        assert any("Watching" in line and ".codex/sessions" in line for line in server.banner), server.banner
        key = server.create_key()
        with StandIn() as api:
            (home / ".codex" / "config.toml").write_text(config(api.url))
            codex(home, cwd, "exec", "--skip-git-repo-check", PROMPT)
            want = expected(api.usage_sum())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            request = urllib.request.Request(server.url + "/api/sessions",
                                             headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                sessions = json.loads(response.read())["sessions"]
            if sessions and sessions[0]["outputTokens"] == want["output_tokens"] and sessions[0]["title"]:  # the pass is whole
                break
            time.sleep(0.2)
        (session,) = sessions
        assert session["source"] == "codex-cli" and session["title"] == PROMPT
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
    finally:
        server.stop()


def otel_config(url, key):
    """Codex's [otel] table: its log events to `serve`'s /v1/logs with our key, prompts included."""
    return f'''
[otel]
log_user_prompt = true
exporter = {{ otlp-http = {{ endpoint = "{url}/v1/logs", protocol = "json", headers = {{ "authorization" = "Bearer {key}" }} }} }}
'''


def test_codexs_telemetry_alone_then_its_files_are_one_session(tmp_path):
    """Codex's own OpenTelemetry to a server that cannot see its files: the session, its
    prompt, its tool call with the output, the stand-in's tokens; then the rollout imported
    beside it: still one session, each response counted once."""
    home, cwd = tmp_path / "home", tmp_path / "project"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    db = str(tmp_path / "opensync.db")
    server = LiveServer(db, env={"HOME": str(tmp_path / "elsewhere")})
    try:
        key = server.create_key()
        with StandIn() as api:
            (home / ".codex" / "config.toml").write_text(config(api.url) + otel_config(server.url, key))
            codex(home, cwd, "exec", "--skip-git-repo-check", PROMPT)
            want = expected(api.usage_sum())

        def session():
            request = urllib.request.Request(server.url + "/api/sessions", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                found = json.loads(response.read())["sessions"]
            if not found:
                return None
            request = urllib.request.Request(server.url + f"/api/sessions/get?id={found[0]['id']}",
                                             headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not ((got := session()) and got["session"]["outputTokens"] == want["output_tokens"]):
            time.sleep(0.2)
        s = got["session"]
        assert s["source"] == "codex-cli" and s["title"] == PROMPT and s["costBasis"] == "estimated"
        assert (s["inputTokens"], s["outputTokens"], s["cacheReadTokens"], s["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
        results = [p["content"] for m in got["messages"] for p in m["parts"] if p["type"] == "tool-result"]
        assert len(results) == 1 and "expected 10 tokens" in results[0]["content"]
        (call,) = [p["content"] for m in got["messages"] for p in m["parts"] if p["type"] == "tool-call"]
        assert call["input"] == {"cmd": "echo expected 10 tokens"}
        assert got["messages"][0]["role"] == "user" and got["messages"][0]["textContent"] == PROMPT
        run_import(db, home / ".codex" / "sessions")
        both = session()
        assert both["session"]["externalId"] == s["externalId"]
        assert (both["session"]["inputTokens"], both["session"]["outputTokens"], both["session"]["cacheReadTokens"],
                both["session"]["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
        assert not [m for m in both["messages"] if m["externalId"].startswith("otel:")]  # the rollout's copy
        assert len(rows(db, "SELECT id FROM sessions")) == 1
    finally:
        server.stop()


def test_token_totals_equal_ccusage_20s_on_the_same_rollout(run, db_path):
    """ccusage 20's `codex session` reads the same rollout: its token totals are ours."""
    from claude_cli import ccusage20

    run_import(db_path, run["sessions"])
    home = run["sessions"].parent.parent
    done = subprocess.run([*ccusage20(), "codex", "session", "--json", "--offline"], capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
                                            "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    (theirs,) = json.loads(done.stdout)["sessions"]
    assert theirs["sessionFile"] == run["rollout"].stem
    ours, _ = totals(db_path)
    assert ours == {"input_tokens": theirs["inputTokens"], "output_tokens": theirs["outputTokens"],
                    "cache_read_tokens": theirs["cacheReadTokens"], "cache_write_tokens": theirs["cacheCreationTokens"]}
    assert sum(ours.values()) == theirs["totalTokens"] and ours == expected(run["api"].usage_sum())
