"""`opensync-lite import qwen` on what the real Qwen Code CLI (0.24.4, pinned in tests/package.json)
wrote: `qwen -p` and then `qwen -c -p` (the same session continued) in a fresh HOME, against the
scripted Chat Completions stand-in (tests/chat_standin.py) as its OpenAI-compatible provider.
The stand-in's usage is the only number the tests know in advance."""

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from chat_standin import MODEL, StandIn
from conftest import CLI, NODE_BIN, LiveServer, rows, snapshot

QWEN_VERSION = "0.24.4"
PROMPT = "Please run: echo expected 10 tokens"
RESUME_PROMPT = "Now run it once more"
COMMAND = "echo expected 10 tokens"
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def qwen(home, cwd, url, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QWEN_", "OTEL_", "DASHSCOPE_"))}
    env.update(HOME=str(home), OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="test-key-0000", OPENAI_MODEL=MODEL,
               NO_COLOR="1", QWEN_CODE_SUPPRESS_YOLO_WARNING="1")
    done = subprocess.run([str(NODE_BIN / "qwen"), *args, "--yolo"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"qwen exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


def fresh_home(root):
    home, cwd = root / "home", root / "project"
    home.mkdir()
    cwd.mkdir()
    return home, cwd


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two turns of one session, the second a continuation; the chats as they were after the first are kept too."""
    root = tmp_path_factory.mktemp("qwen")
    home, cwd = fresh_home(root)
    with StandIn() as api:
        first = qwen(home, cwd, api.url, "-p", PROMPT, "--output-format", "json")
        shutil.copytree(home / ".qwen" / "projects", root / "after-first")
        first_usage = api.usage_sum()
        qwen(home, cwd, api.url, "-c", "-p", RESUME_PROMPT)
    (chat,) = (home / ".qwen" / "projects").rglob("chats/*.jsonl")
    records = [json.loads(line) for line in chat.read_text().splitlines()]
    result = json.loads(first.stdout)[-1]
    yield {"root": root, "projects": home / ".qwen" / "projects", "chat": chat, "records": records, "api": api,
           "first": first_usage, "first_out": result, "cwd": cwd, "after_first": root / "after-first"}


def run_import(db_path, *paths, args=(), env=None):
    result = subprocess.run(CLI + ["import", "qwen", *map(str, paths), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result


def expected(total):
    """The stand-in's usage in our four kinds: its prompt count includes the cached tokens, its
    completion count the reasoning."""
    return {"input_tokens": total["prompt_tokens"] - total["cached_tokens"], "output_tokens": total["completion_tokens"],
            "cache_read_tokens": total["cached_tokens"], "cache_write_tokens": 0}


def totals(db_path):
    (session,) = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions")
    (messages,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")
    return dict(zip(KINDS, session)), dict(zip(KINDS, messages))


def session_id(run):
    return run["records"][0]["sessionId"]


def test_the_pinned_cli_ran_both_turns(run):
    out = subprocess.run([str(NODE_BIN / "qwen"), "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == QWEN_VERSION
    answered = run["api"].answers(None)
    assert [r.turn for r in answered] == [0, 1, 0, 1] and {r.kind for r in answered} == {"main"}
    assert all(r.headers.get("authorization") == "Bearer test-key-0000" for r in answered)
    assert all(r.body["stream"] and r.body["stream_options"] == {"include_usage": True} for r in answered)
    assert run["first_out"]["session_id"] == session_id(run)
    assert {r["sessionId"] for r in run["records"]} == {session_id(run)}


def test_the_tokens_are_the_apis_counted_once(run, db_path):
    result = run_import(db_path, run["projects"])
    assert "into 1 new and 0 updated sessions from 1 files" in result.stdout and "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    want = expected(run["api"].usage_sum())
    assert want["output_tokens"] > 0 and session_totals == message_totals == want
    # Qwen's own figure for the first run agrees.
    assert run["first_out"]["usage"]["input_tokens"] == run["first"]["prompt_tokens"]


def test_the_session_row(run, db_path, api):
    run_import(db_path, run["projects"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == session_id(run) and listed["source"] == "qwen-code"
    assert listed["title"] == PROMPT and listed["projectPath"] == str(run["cwd"]) and listed["model"] == MODEL


def test_the_cost_is_estimated_from_the_models_price(run, db_path, api):
    from opensync_lite.pricing import price

    run_import(db_path, run["projects"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    want = sum(price(MODEL, u["prompt_tokens"] - u["prompt_tokens_details"]["cached_tokens"], u["completion_tokens"], 0,
                     u["prompt_tokens_details"]["cached_tokens"]) for u in (r.usage for r in run["api"].answers()))
    assert listed["costBasis"] == "estimated" and want > 0
    assert listed["cost"] == pytest.approx(want, rel=1e-6)


def test_the_conversation_in_order_with_the_tool_call_and_its_output(run, db_path, api):
    run_import(db_path, run["projects"])
    messages = api.session(session_id(run))["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    assert [p["type"] for m in messages for p in m["parts"]] == ["text", "thinking", "tool-call", "tool-result", "text"] * 2
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["run_shell_command"] * 2 and [c["input"] for c in calls] == [{"command": COMMAND}] * 2
    sent = [i for r in run["api"].answers() for i in r.tool_call_ids]
    assert [c["id"] for c in calls] == [r["toolUseId"] for r in results] == sent and len(set(sent)) == 2
    assert all("Output: expected 10 tokens" in r["content"] and not r["isError"] for r in results)
    thinking = [p["content"] for m in messages for p in m["parts"] if p["type"] == "thinking"]
    assert thinking == ["Run the command the user asked for."] * 2
    assert not any("<system-reminder>" in (m["textContent"] or "") for m in messages)


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["projects"])
    before = snapshot(db_path)
    again = run_import(db_path, run["projects"])
    assert "0 files (1 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_the_continued_file_adds_only_the_new_turn(run, db_path, tmp_path):
    folder = tmp_path / "projects"
    shutil.copytree(run["after_first"], folder)
    (copy,) = folder.rglob("chats/*.jsonl")
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"]) and rows(db_path, "SELECT COUNT(*) FROM messages") == [(4,)]
    copy.write_bytes(run["chat"].read_bytes())  # the continuation's records, appended to the same file
    second = run_import(db_path, folder)
    assert "Imported 4 messages into 0 new and 1 updated sessions" in second.stdout
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    assert rows(db_path, "SELECT title FROM sessions") == [(PROMPT,)]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(8,)]


def test_dry_run_writes_nothing_and_bad_lines_are_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["projects"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 8 messages into 1 new") and snapshot(db_path) == before
    broken = tmp_path / "p" / "chats" / f"{session_id(run)}.jsonl"
    broken.parent.mkdir(parents=True)
    sid = session_id(run)
    bad = ["{not json", json.dumps([1, 2]), json.dumps({"sessionId": sid, "uuid": "x0", "type": "weird"}),
           json.dumps({"sessionId": "another", "uuid": "x1", "type": "user"}),
           json.dumps({"sessionId": sid, "uuid": "x2", "type": "user", "timestamp": "garbage"}),
           json.dumps({"sessionId": sid, "uuid": "x3", "type": "assistant", "model": "m", "message": {"parts": [{"text": "hi"}]},
                       "usageMetadata": {"promptTokenCount": 10**30, "cachedContentTokenCount": -5,
                                         "candidatesTokenCount": float("nan")}})]
    broken.write_text(run["chat"].read_text() + "\n".join(bad) + "\n")
    result = run_import(db_path, broken)
    assert "5 lines skipped" in result.stdout and "not JSON" in result.stderr and "not a JSON object" in result.stderr
    assert "a record of another session" in result.stderr and "is not a date" in result.stderr
    assert totals(db_path)[0] == expected(run["api"].usage_sum())  # out-of-bounds counts count as 0


def test_no_chats_folder_is_a_clear_error(tmp_path, db_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_")}
    result = subprocess.run(CLI + ["import", "qwen", "--db", db_path], capture_output=True, text=True, timeout=60,
                            env={**env, "HOME": str(tmp_path)})
    assert result.returncode != 0 and "no Qwen Code chats" in result.stderr


def test_the_default_folder_is_home_qwen_projects_and_import_all_reads_it(run, db_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_")}
    home = run["projects"].parent.parent
    assert "into 1 new" in run_import(db_path, env={**env, "HOME": str(home)}).stdout
    every = subprocess.run(CLI + ["import", "all", "--db", db_path], capture_output=True, text=True, timeout=120,
                           env={**env, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")})
    assert every.returncode == 0 and "Qwen Code: Imported 0 messages" in every.stdout


def test_serve_watches_qwens_projects_folder_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.qwen/projects (from before it exists), and the session
    the real CLI writes there arrives with the stand-in's tokens, counted once."""
    home, cwd = fresh_home(tmp_path)
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        for _ in range(100):  # the banner is read as serve prints it
            if any("Watching" in line for line in server.banner):
                break
            time.sleep(0.05)
        assert any("Watching" in line and ".qwen/projects (Qwen Code, once it exists)" in line
                   for line in server.banner), server.banner
        key = server.create_key()
        with StandIn() as api:
            qwen(home, cwd, api.url, "-p", PROMPT)
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
        assert session["source"] == "qwen-code" and session["title"] == PROMPT
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
    finally:
        server.stop()


def test_a_custom_title_names_the_session_and_a_cli_record_is_no_prompt(run, db_path, tmp_path):
    chat = tmp_path / "p" / "chats" / "c.jsonl"
    chat.parent.mkdir(parents=True)
    sid = session_id(run)
    extra = [{"sessionId": sid, "uuid": "t1", "type": "system", "subtype": "custom_title",
              "systemPayload": {"customTitle": "  my named session "}},
             {"sessionId": sid, "uuid": "n1", "type": "user", "provenance": "system",
              "message": {"role": "user", "parts": [{"text": "a background task finished"}]}}]
    chat.write_text(run["chat"].read_text() + "".join(json.dumps(r) + "\n" for r in extra))
    run_import(db_path, chat)
    assert rows(db_path, "SELECT title FROM sessions") == [("my named session",)]
    assert [t for (t,) in rows(db_path, "SELECT text_content FROM messages WHERE role = 'user'")] == [PROMPT, RESUME_PROMPT]
