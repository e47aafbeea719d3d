"""`opensync-lite import gemini` on what the real Gemini CLI (0.61.0, and 0.30.0 for the older
one-document layout, both pinned in tests/package.json) wrote: `gemini -p` and then
`gemini -r latest -p` in a fresh HOME, against the scripted Gemini API stand-in
(tests/gemini_standin.py). The stand-in's usage is the only number the tests know in advance."""

import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.request

import pytest

from conftest import CLI, NODE_BIN, LiveServer, rows, snapshot
from gemini_standin import StandIn

PROMPT = "Please run: echo expected 10 tokens"
RESUME_PROMPT = "Now run it once more"
GEMINI_VERSION = "0.61.0"
# Both versions name their command `gemini`, so each is run by its own entry point.
NODE_MODULES = NODE_BIN.parent
GEMINI = NODE_MODULES / "@google" / "gemini-cli" / "bundle" / "gemini.js"
GEMINI_030 = NODE_MODULES / "gemini-cli-030" / "dist" / "index.js"
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def gemini(home, cwd, url, *args, entry=GEMINI, env=None):
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "OTEL_"))}
    env.update(HOME=str(home), GEMINI_API_KEY="test-key-0000", GOOGLE_GEMINI_BASE_URL=url,
               GEMINI_CLI_TRUST_WORKSPACE="true", NO_COLOR="1", **extra)
    done = subprocess.run([shutil.which("node"), str(entry), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"gemini exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


def fresh_home(root):
    home, cwd = root / "home", root / "project"
    (home / ".gemini").mkdir(parents=True)
    cwd.mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    return home, cwd


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two turns of one session, the second a resume; the chats as they were after the first are
    kept too. The CLI's telemetry goes to a live `serve` of its own meanwhile (telemetry_db)."""
    root = tmp_path_factory.mktemp("gemini")
    home, cwd = fresh_home(root)
    server = LiveServer(str(root / "telemetry.db"))
    try:
        key = server.create_key()
        settings = json.loads((home / ".gemini" / "settings.json").read_text())
        settings["telemetry"] = {"enabled": True, "target": "local", "otlpEndpoint": server.url,
                                 "otlpProtocol": "http", "logPrompts": True}
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        env = {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}"}
        with StandIn() as api:
            first = gemini(home, cwd, api.url, "-p", PROMPT, "--yolo", "--output-format", "json", env=env)
            shutil.copytree(home / ".gemini" / "tmp", root / "after-first")
            first_usage = api.usage_sum()
            gemini(home, cwd, api.url, "-r", "latest", "-p", RESUME_PROMPT, "--yolo", env=env)
        # A resume in a later minute than the first run also starts a file of its own (the
        # session's metadata and the CLI's context, no turn), while the turns go on in the first.
        chats = sorted((home / ".gemini" / "tmp").rglob("session-*.jsonl"), key=lambda p: p.stat().st_size)
        chat = chats[-1]
        records = [json.loads(line) for line in chat.read_text().splitlines()]
        for stub in chats[:-1]:
            lines = [json.loads(line) for line in stub.read_text().splitlines()]
            assert lines[0]["sessionId"] == records[0]["sessionId"] and not any(r.get("type") == "gemini" for r in lines)
        yield {"root": root, "tmp": home / ".gemini" / "tmp", "chat": chat, "chats": chats, "records": records,
               "api": api, "first": first_usage, "first_out": json.loads(first.stdout), "cwd": cwd,
               "after_first": root / "after-first", "telemetry_db": server.db_path}
    finally:
        server.stop()


def run_import(db_path, *paths, args=(), env=None):
    result = subprocess.run(CLI + ["import", "gemini", *map(str, paths), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result


def expected(total):
    """The stand-in's usage in our four kinds: its prompt count includes the cached tokens, and
    thoughts are billed as output."""
    return {"input_tokens": total["promptTokenCount"] - total["cachedContentTokenCount"],
            "output_tokens": total["candidatesTokenCount"] + total["thoughtsTokenCount"],
            "cache_read_tokens": total["cachedContentTokenCount"], "cache_write_tokens": 0}


def totals(db_path):
    (session,) = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions")
    (messages,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")
    return dict(zip(KINDS, session)), dict(zip(KINDS, messages))


def session_id(run):
    return run["records"][0]["sessionId"]


def test_the_pinned_cli_ran_both_turns(run):
    out = subprocess.run([shutil.which("node"), str(GEMINI), "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == GEMINI_VERSION
    answered = run["api"].answers()
    assert [r.turn for r in answered] == [0, 1, 0, 1] and {r.kind for r in answered} == {"main"}
    assert run["api"].answers("side")  # the router's call, which the chat file does not count
    assert all(r.headers.get("x-goog-api-key") == "test-key-0000" for r in answered)
    # One file for both runs: each answer written once bare and once with its toolCalls, and a
    # resume that restates the conversation with $set.messages.
    assert run["records"][0]["sessionId"] == run["first_out"]["session_id"]
    answers = [r for r in run["records"] if r.get("type") == "gemini"]
    assert len(answers) == 6 and len({a["id"] for a in answers}) == 4
    assert any(isinstance(r.get("$set"), dict) and "messages" in r["$set"] for r in run["records"])


def test_one_session_with_the_stand_ins_tokens_counted_once(run, db_path, api):
    result = run_import(db_path, run["tmp"])
    files = len(run["chats"])
    assert f"into 1 new and 0 updated sessions from {files} files" in result.stdout and "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    want = expected(run["api"].usage_sum())
    assert session_totals == want and message_totals == want
    # The CLI's own tally of the first run agrees (its "input" is the non-cached part).
    model_stats = run["first_out"]["stats"]["models"][run["api"].answers()[0].model]
    assert model_stats["tokens"]["input"] == expected(run["first"])["input_tokens"]
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == session_id(run) and listed["source"] == "gemini-cli"
    assert listed["projectPath"] == str(run["cwd"]) and listed["projectName"] == "project"
    assert listed["model"] == run["api"].answers()[-1].model and listed["title"] == PROMPT


def test_the_cost_is_estimated_from_the_models_price(run, db_path, api):
    from opensync_lite.pricing import price

    run_import(db_path, run["tmp"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    want = sum(price(r.model, u["promptTokenCount"] - u["cachedContentTokenCount"],
                     u["candidatesTokenCount"] + u["thoughtsTokenCount"], 0, u["cachedContentTokenCount"])
               for r, u in ((r, r.usage) for r in run["api"].answers()))
    assert listed["costBasis"] == "estimated" and want > 0
    assert listed["cost"] == pytest.approx(want, rel=1e-6)


def test_the_conversation_in_order_with_the_tool_call_and_its_output(run, db_path, api):
    run_import(db_path, run["tmp"])
    messages = api.session(session_id(run))["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    kinds = [p["type"] for m in messages for p in m["parts"]]
    # Per turn: the prompt, the thought and the call, its output (once), the answer.
    assert kinds == ["text", "thinking", "tool-call", "tool-result", "text"] * 2
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["run_shell_command"] * 2
    assert [c["input"] for c in calls] == [{"command": "echo expected 10 tokens"}] * 2
    assert [r["toolUseId"] for r in results] == [c["id"] for c in calls] and len({c["id"] for c in calls}) == 2
    assert all("expected 10 tokens" in r["content"] and not r["isError"] for r in results)
    thinking = [p["content"] for m in messages for p in m["parts"] if p["type"] == "thinking"]
    assert thinking == ["Run the command the user asked for."] * 2
    assert not any("<session_context>" in m["textContent"] for m in messages)


def test_the_project_from_projects_json_without_the_marker(run, db_path, tmp_path):
    gemini_dir = tmp_path / ".gemini"
    shutil.copytree(run["tmp"], gemini_dir / "tmp")
    shutil.copy(run["tmp"].parent / "projects.json", gemini_dir / "projects.json")
    (marker,) = (gemini_dir / "tmp").rglob(".project_root")
    marker.unlink()
    run_import(db_path, gemini_dir / "tmp")
    assert rows(db_path, "SELECT project_path FROM sessions") == [(str(run["cwd"]),)]


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["tmp"])
    before = snapshot(db_path)
    again = run_import(db_path, run["tmp"])
    assert f"0 files ({len(run['chats'])} unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_the_resumed_file_read_again_whole_adds_only_the_new_turn(run, db_path, tmp_path):
    folder = tmp_path / "tmp"
    shutil.copytree(run["after_first"], folder)
    (copy,) = folder.rglob("session-*.jsonl")
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"])
    copy.write_bytes(run["chat"].read_bytes())  # the resume's records, appended to the same file
    second = run_import(db_path, folder)
    assert "into 0 new and 1 updated sessions" in second.stdout
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    assert rows(db_path, "SELECT title FROM sessions") == [(PROMPT,)]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(8,)]


def test_a_rewind_drops_the_turns_after_it(run, db_path, tmp_path):
    resumed_prompt = next(r["id"] for r in run["records"] if r.get("type") == "user" and
                          r.get("content") == [{"text": RESUME_PROMPT}])
    chat = tmp_path / "chats" / "session-rewound.jsonl"
    chat.parent.mkdir()
    chat.write_text(run["chat"].read_text() + json.dumps({"$rewindTo": resumed_prompt}) + "\n")
    run_import(db_path, chat)
    assert totals(db_path)[0] == expected(run["first"])
    assert [r for (r,) in rows(db_path, "SELECT text_content FROM messages WHERE role = 'user'")] == [PROMPT]


def test_the_older_one_document_json_written_by_0_30(db_path, tmp_path, api):
    """0.30's layout: the whole conversation as one JSON document, rewritten as it grows; its
    answers carry their toolCalls and tokens once."""
    home, cwd = fresh_home(tmp_path)
    with StandIn() as standin:
        first = gemini(home, cwd, standin.url, "-p", PROMPT, "--yolo", "--output-format", "json", entry=GEMINI_030)
        gemini(home, cwd, standin.url, "-r", "latest", "-p", RESUME_PROMPT, "--yolo", entry=GEMINI_030)
    (chat,) = (home / ".gemini" / "tmp").rglob("session-*")
    assert chat.suffix == ".json" and json.loads(chat.read_text())["sessionId"] == json.loads(first.stdout)["session_id"]
    result = run_import(db_path, home / ".gemini" / "tmp")
    assert "into 1 new and 0 updated sessions from 1 files" in result.stdout and "0 lines skipped" in result.stdout
    assert [r.turn for r in standin.answers()] == [0, 1, 0, 1]
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(standin.usage_sum())
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["title"] == PROMPT and listed["projectPath"] == str(cwd)
    messages = api.session(listed["externalId"])["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    assert [p["type"] for m in messages for p in m["parts"]] == ["text", "thinking", "tool-call", "tool-result", "text"] * 2
    assert "0 files (1 unchanged" in run_import(db_path, home / ".gemini" / "tmp").stdout


def test_dry_run_writes_nothing_and_bad_lines_are_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["tmp"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 8 messages into 1 new") and snapshot(db_path) == before
    broken = tmp_path / "chats" / "session-broken.jsonl"
    broken.parent.mkdir()
    bad = ["{not json", json.dumps([1, 2]), json.dumps({"what": 1}),
           json.dumps({"id": "x1", "type": "gemini", "content": "hi", "model": "m",
                       "tokens": {"input": 10**30, "cached": -5, "output": float("nan")}})]
    broken.write_text(run["chat"].read_text() + "\n".join(bad) + "\n")
    result = run_import(db_path, broken)
    assert "3 lines skipped" in result.stdout and "not JSON" in result.stderr and "not a JSON object" in result.stderr
    assert totals(db_path)[0] == expected(run["api"].usage_sum())  # out-of-bounds counts count as 0


def test_no_chats_folder_is_a_clear_error(tmp_path, db_path):
    result = subprocess.run(CLI + ["import", "gemini", "--db", db_path], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode != 0 and "no Gemini CLI chats" in result.stderr


def test_the_default_folder_is_home_gemini_tmp(run, db_path):
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_CLI_HOME"}
    result = run_import(db_path, env={**env, "HOME": str(run["tmp"].parent.parent)})
    assert "into 1 new" in result.stdout


def test_serve_watches_geminis_chats_folder_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.gemini/tmp (from before it exists), and the session
    the real CLI writes there arrives with the stand-in's tokens, counted once."""
    home, cwd = fresh_home(tmp_path)  # settings only: ~/.gemini/tmp is made by the CLI, later
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        for _ in range(100):  # the banner is read as serve prints it
            if any("Watching" in line for line in server.banner):
                break
            time.sleep(0.05)
        assert any("Watching" in line and ".gemini/tmp (Gemini CLI, once it exists)" in line
                   for line in server.banner), server.banner
        key = server.create_key()
        with StandIn() as api:
            gemini(home, cwd, api.url, "-p", PROMPT, "--yolo", "--output-format", "json")
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
        assert session["source"] == "gemini-cli" and session["title"] == PROMPT
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
    finally:
        server.stop()


def test_hostile_records_are_skipped_and_reported(db_path, tmp_path):
    """Records of the wrong shape are reported with their line number or read as far as they
    make sense; counts out of bounds count as 0; a rewind to an id not there clears the list
    (as the CLI does)."""
    meta = {"sessionId": "s-hostile", "projectHash": "x", "startTime": "2026-01-01T00:00:00Z",
            "lastUpdated": "2026-01-01T00:00:00Z"}
    records = [
        meta,
        {"id": "u1", "type": "user", "content": 12, "timestamp": "garbage"},
        {"id": "u2", "type": "user", "content": [{"text": "hello"}, 5, None], "timestamp": "2026-01-01T00:00:01Z"},
        {"id": "g1", "type": "gemini", "content": {"a": 1}, "thoughts": "nope", "toolCalls": {"x": 1},
         "tokens": [1, 2], "model": 7},
        {"id": "g2", "type": "gemini", "content": "ok", "thoughts": [None, 3, {"subject": 5}],
         "toolCalls": [None, {"id": 3, "name": None, "args": "x", "result": 7, "status": "error"}],
         "tokens": {"input": True, "output": 10**40, "cached": "5", "thoughts": -1}, "model": "gemini-2.5-flash",
         "timestamp": 5},
        {"$rewindTo": 5},
        {"$set": {"messages": "nope"}},
        {"$set": {"messages": [None, {"id": 3}, {"id": "u2"}, {"id": "g2"}]}},
        {"id": "", "type": "user"},
        {"id": "g" * 300, "type": "gemini", "content": "too long an id", "tokens": {"input": 5, "output": 5}},
    ]
    chats = tmp_path / "p" / "chats"
    chats.mkdir(parents=True)
    (chats / "session-a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    cleared = [{**meta, "sessionId": "s-cleared"}, *records[1:3], {"$rewindTo": "not-there"},
               {"id": "u3", "type": "user", "content": "after the clear"}]
    (chats / "session-b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cleared))
    (chats / "session-c.jsonl").write_text(json.dumps({"id": "u9", "type": "user", "content": "nobody's"}) + "\n")
    (chats / "session-d.jsonl").write_text(json.dumps({**meta, "sessionId": "s" * 300}) + "\n" + json.dumps(
        {"id": "u1", "type": "user", "content": "a session no one can name"}) + "\n")
    result = run_import(db_path, tmp_path)
    assert "5 lines skipped" in result.stdout and "invalid message s-hostile:ggg" in result.stderr
    assert "session-d.jsonl:0: a sessionId longer than 256" in result.stderr
    assert ":6: neither a message" in result.stderr and ":9: a message with an empty id" in result.stderr
    assert "session-c.jsonl:0: no session metadata" in result.stderr
    assert rows(db_path, "SELECT external_id, title, input_tokens, output_tokens, cache_read_tokens FROM sessions "
                         "ORDER BY external_id") == [("s-cleared", "after the clear", 0, 0, 0), ("s-hostile", "hello", 0, 0, 0)]
    assert rows(db_path, "SELECT role, text_content FROM messages m JOIN sessions s ON s.id = m.session_id "
                         "WHERE s.external_id = 's-hostile' ORDER BY m.id") == [("user", "hello"), ("assistant", "ok"), ("tool", "")]


# --- its telemetry ------------------------------------------------------------------------------

def telemetry_totals(run):
    """The session the CLI's exports made (waiting for them: the CLI flushes as it exits), and
    what the stand-in handed out: the main thread's answers and the router's calls."""
    want = expected({name: run["api"].usage_sum()[name] + run["api"].usage_sum("side")[name]
                     for name in run["api"].usage_sum()})
    deadline = time.time() + 20
    while True:
        got = rows(run["telemetry_db"], f"SELECT external_id, source, title, model, {', '.join(KINDS)} FROM sessions")
        if (got and dict(zip(KINDS, got[0][4:])) == want) or time.time() > deadline:
            return got, want
        time.sleep(0.2)


def test_telemetry_alone_makes_the_session_with_every_request_counted(run):
    (session,), want = telemetry_totals(run)
    assert session[:4] == (session_id(run), "gemini-cli", PROMPT, run["api"].answers()[-1].model)
    # The router's calls are real spend that no chat file records: telemetry counts them.
    assert run["api"].answers("side") and dict(zip(KINDS, session[4:])) == want


def test_telemetry_alone_holds_the_conversation(run):
    telemetry_totals(run)
    texts = rows(run["telemetry_db"], "SELECT role, text_content FROM messages ORDER BY created_at, id")
    assert [t for role, t in texts if role == "user"] == [PROMPT, RESUME_PROMPT]
    answers = [t for role, t in texts if role == "assistant" and t]
    assert "The command printed: expected 10 tokens." in answers
    calls = rows(run["telemetry_db"], "SELECT content FROM parts WHERE type = 'tool-call'")
    assert [json.loads(content)["input"]["command"] for (content,) in calls].count("echo expected 10 tokens") == 2


def test_the_chat_files_after_telemetry_are_the_same_session_counted_once(run, tmp_path):
    _, want = telemetry_totals(run)
    db = tmp_path / "both.db"  # a copy: the live server's database stays as telemetry left it
    with sqlite3.connect(run["telemetry_db"]) as live, sqlite3.connect(db) as copy:
        live.backup(copy)
    for _ in range(2):  # and again: nothing changes
        run_import(str(db), run["tmp"])
    (session,) = rows(str(db), f"SELECT external_id, source, {', '.join(KINDS)} FROM sessions")
    assert session[:2] == (session_id(run), "gemini-cli") and dict(zip(KINDS, session[2:])) == want
    # The files' conversation replaced telemetry's copy: no message twice, none of telemetry's left.
    prompts = [t for (t,) in rows(str(db), "SELECT text_content FROM messages WHERE role = 'user'")]
    assert sorted(prompts) == sorted([PROMPT, RESUME_PROMPT])
    assert not rows(str(db), "SELECT 1 FROM messages WHERE external_id LIKE 'otel:%'")
