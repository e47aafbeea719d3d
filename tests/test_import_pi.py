"""`opensync-lite import pi` on what the real pi coding agent (0.73.1, pinned in tests/package.json)
wrote: `pi -p` and then `pi -c -p` (the same session continued) in a fresh HOME, against the
scripted Anthropic Messages API stand-in (tests/anthropic_standin.py) as pi's `anthropic`
provider. The stand-in's usage is the only number the tests know in advance; the cost is pi's
own, read from what it wrote."""

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from anthropic_standin import Conversation, StandIn, Turn, text, tool_use
from click.testing import CliRunner
from conftest import NODE_BIN, LiveServer, rows, snapshot
from opensync_lite.cli import main

PI_VERSION = "0.73.1"
MODEL = "claude-opus-4-7"
PROMPT = "Please run: echo expected 10 tokens"
RESUME_PROMPT = "Now run it once more"
COMMAND = "echo expected 10 tokens"


def usage(fresh, write, read, output):
    return {"input_tokens": fresh, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0}, "output_tokens": output}


# Each of the four answers reports its own usage: a total that counts one twice, or misses one, is wrong.
SCRIPT = Conversation("expected 10 tokens", [
    Turn([text("I will run it."), tool_use("bash", {"command": COMMAND})], usage=usage(120, 800, 3000, 45)),
    Turn([text("It printed: expected 10 tokens.")], usage=usage(31, 0, 3900, 20)),
    Turn([text("Once more."), tool_use("bash", {"command": COMMAND})], usage=usage(17, 250, 4100, 38)),
    Turn([text("It printed the same again.")], usage=usage(9, 0, 4400, 12)),
])
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def setup_home(home, url):
    (home / ".pi" / "agent").mkdir(parents=True)
    (home / ".pi" / "agent" / "models.json").write_text(json.dumps({"providers": {"anthropic": {"baseUrl": url}}}))


def pi(home, cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PI_", "ANTHROPIC_", "OPENAI_"))}
    env.update(HOME=str(home), PI_OFFLINE="1", ANTHROPIC_API_KEY="sk-ant-test-0000", NO_COLOR="1")
    done = subprocess.run([str(NODE_BIN / "pi"), *args, "--provider", "anthropic", "--model", MODEL], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pi exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two runs of one session; the sessions folder is also kept as it was after the first."""
    root = tmp_path_factory.mktemp("pi")
    home, cwd = root / "home", root / "project"
    cwd.mkdir()
    with StandIn([copy.deepcopy(SCRIPT)]) as api:
        setup_home(home, api.url)
        pi(home, cwd, "-p", PROMPT)
        sessions = home / ".pi" / "agent" / "sessions"
        shutil.copytree(sessions, root / "after-first")
        first = api.usage_sum()
        pi(home, cwd, "-c", "-p", RESUME_PROMPT)
    (path,) = sessions.rglob("*.jsonl")
    (first_path,) = (root / "after-first").rglob("*.jsonl")
    return {"home": home, "cwd": cwd, "sessions": sessions, "path": path, "api": api, "first": first,
            "lines": [json.loads(line) for line in path.read_text().splitlines()],
            "first_lines": [json.loads(line) for line in first_path.read_text().splitlines()],
            "after_first": root / "after-first"}


class Ran:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def run_import(db_path, *paths, args=(), env=None, kind="pi", ok=True):
    """`opensync-lite import` in this process (the machine is busy: a fresh interpreter per run
    costs seconds); ``env`` replaces the environment for the run."""
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


def answers(lines):
    return [line["message"] for line in lines if line["type"] == "message" and line["message"]["role"] == "assistant"]


def pis_cost(lines):
    return sum(m["usage"]["cost"]["total"] for m in answers(lines))


def ms(stamp):
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_the_pinned_cli_ran_both_runs_into_one_file(run):
    out = subprocess.run([str(NODE_BIN / "pi"), "--version"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "HOME": str(run["home"]), "PI_OFFLINE": "1"})
    assert (out.stdout + out.stderr).strip() == PI_VERSION
    answered = run["api"].messages()
    assert [r.kind for r in answered] == ["main"] * 4 and [r.turn for r in answered] == [0, 1, 2, 3]
    header = run["lines"][0]
    assert header["type"] == "session" and header["cwd"] == str(run["cwd"])
    # pi recorded each answer's usage as the stand-in sent it, and a cost of its own.
    assert [m["usage"]["output"] for m in answers(run["lines"])] == [r.usage["output_tokens"] for r in answered]
    assert all(m["usage"]["cost"]["total"] > 0 for m in answers(run["lines"]))


def test_one_session_with_the_stand_ins_tokens_counted_once_and_pis_cost(run, db_path, api):
    result = run_import(db_path, run["sessions"])
    assert "6 messages into 1 new and 0 updated sessions from 1 files" in result.stdout, result.stdout
    assert "0 lines skipped" in result.stdout
    session_totals, message_totals = totals(db_path)
    want = expected(run["api"].usage_sum())
    assert session_totals == message_totals == want
    header = run["lines"][0]
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == header["id"] and listed["source"] == "pi"
    assert listed["projectPath"] == str(run["cwd"]) and listed["projectName"] == "project"
    assert listed["model"] == MODEL and listed["title"] == PROMPT
    assert listed["createdAt"] == ms(header["timestamp"]) and listed["updatedAt"] == ms(run["lines"][-1]["timestamp"])
    assert listed["costBasis"] == "recorded" and listed["cost"] == pytest.approx(pis_cost(run["lines"]), rel=1e-9)
    assert listed["toolCallCount"] == 2


def test_the_conversation_with_each_result_beside_its_call(run, db_path, api):
    run_import(db_path, run["sessions"])
    session_id = run["lines"][0]["id"]
    messages = api.session(session_id)["messages"]
    # The pi plugin's names: prompts and answers counted in order, a result part of its answer.
    assert [m["externalId"] for m in messages] == [f"{session_id}-{role}-{n}" for n, role in enumerate(
        ["user", "assistant", "assistant"] * 2, 1)]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    assert [[p["type"] for p in m["parts"]] for m in messages] == [
        ["text"], ["text", "tool-call", "tool-result"], ["text"]] * 2
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["bash"] * 2 and [c["input"] for c in calls] == [{"command": COMMAND}] * 2
    assert [r["toolUseId"] for r in results] == [c["id"] for c in calls] and len({c["id"] for c in calls}) == 2
    assert [r["content"] for r in results] == ["expected 10 tokens\n"] * 2 and not any(r["isError"] for r in results)


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["sessions"])
    before = snapshot(db_path)
    again = run_import(db_path, run["sessions"])
    assert "0 files (1 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_the_continued_run_adds_only_its_own_messages(run, db_path, tmp_path):
    folder = tmp_path / "sessions"
    shutil.copytree(run["after_first"], folder)
    (copied,) = folder.rglob("*.jsonl")
    run_import(db_path, folder)
    assert totals(db_path)[0] == expected(run["first"])
    written = rows(db_path, "SELECT id, external_id FROM messages ORDER BY id")
    copied.write_bytes(run["path"].read_bytes())  # the continued run, appended to the same file
    second = run_import(db_path, folder)
    assert "Imported 3 messages into 0 new and 1 updated sessions" in second.stdout, second.stdout
    assert rows(db_path, "SELECT id, external_id FROM messages ORDER BY id")[:3] == written
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    assert rows(db_path, "SELECT title, message_count FROM sessions") == [(PROMPT, 6)]


# --- the pi sync plugin's copy of the same session ---------------------------------------------
# pi-opensync-plugin 0.2.0 is not on this machine's registry; what it sends is read off the wire
# capture of it inside the real pi 0.73.1 (../shared/wire/pi-opensync-plugin-0.2.0.jsonl): the
# session by pi's id, each prompt and answer as `<session>-<role>-<n>` counted per process, a
# continued session counted on from every message entry already there (results included).

def plugin_requests(lines, start):
    """What the plugin sends for the message entries of ``lines``, numbered on from ``start``."""
    header, out, n, cost = lines[0], [], start, 0.0
    session = {"externalId": header["id"], "source": "pi", "projectPath": header["cwd"],
               "projectName": Path(header["cwd"]).name, "title": "Untitled", "model": "Claude Opus 4.7",
               "provider": "anthropic"}
    out.append(("/sync/session", dict(session)))
    entries = [line["message"] for line in lines if line["type"] == "message"]
    prompt = completion = 0
    for i, m in enumerate(entries):
        if m["role"] == "user":
            n += 1
            out.append(("/sync/message", {"sessionExternalId": header["id"], "externalId": f"{header['id']}-user-{n}",
                                          "role": "user", "createdAt": m["timestamp"],
                                          "textContent": "\n".join(c["text"] for c in m["content"])}))
        elif m["role"] == "assistant":
            n += 1
            said = "\n".join(c["text"] for c in m["content"] if c["type"] == "text")
            parts = [{"type": "text", "content": said}] + [
                {"type": "tool-call", "content": {"toolName": c["name"], "args": c["arguments"]}}
                for c in m["content"] if c["type"] == "toolCall"]
            parts += [{"type": "tool-result", "content": "".join(c["text"] for c in r["content"])}
                      for r in entries[i + 1:] if r["role"] == "toolResult"
                      and any(c.get("id") == r["toolCallId"] for c in m["content"])]
            out.append(("/sync/message", {"sessionExternalId": header["id"], "externalId": f"{header['id']}-assistant-{n}",
                                          "role": "assistant", "createdAt": m["timestamp"], "textContent": said,
                                          "model": m["model"], "promptTokens": m["usage"]["input"],
                                          "completionTokens": m["usage"]["output"], "parts": parts}))
            prompt, completion, cost = prompt + m["usage"]["input"], completion + m["usage"]["output"], cost + m["usage"]["cost"]["total"]
            out.append(("/sync/session", {**session, "promptTokens": prompt, "completionTokens": completion,
                                          "totalTokens": prompt + completion, "cost": cost, "messageCount": n}))
    return out


def send(api, requests):
    for path, body in requests:
        response = api.post(path, body)
        assert response.status_code == 200, response.get_json()


def the_two_runs(run):
    """The plugin's requests for the first run, then for the continued one (counted on from the
    four message entries the file held when it started)."""
    first, both = run["first_lines"], run["lines"]
    held = sum(1 for line in first if line["type"] == "message")
    return plugin_requests(first, 0), plugin_requests([both[0], *both[len(first):]], held)


def check_one_session(run, db_path, api):
    session_id = run["lines"][0]["id"]
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == session_id and listed["title"] == PROMPT
    assert listed["costBasis"] == "recorded" and listed["cost"] == pytest.approx(pis_cost(run["lines"]), rel=1e-9)
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == expected(run["api"].usage_sum())
    messages = api.session(session_id)["messages"]
    assert [m["textContent"] for m in messages] == [PROMPT, "I will run it.", "It printed: expected 10 tokens.",
                                                    RESUME_PROMPT, "Once more.", "It printed the same again."]
    assert rows(db_path, "SELECT message_count FROM sessions") == [(6,)]
    assert all(p["content"].get("toolUseId") for m in messages for p in m["parts"] if p["type"] == "tool-result")


def test_sessions_the_plugin_synced_are_the_same_sessions(run, db_path, api):
    first, second = the_two_runs(run)
    send(api, first + second)
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(6,)]  # user-5 .. assistant-7: one more name
    run_import(db_path, run["sessions"])
    check_one_session(run, db_path, api)


def test_the_plugin_after_an_import_doubles_nothing(run, db_path, api, tmp_path):
    folder = tmp_path / "sessions"
    shutil.copytree(run["after_first"], folder)
    (copied,) = folder.rglob("*.jsonl")
    first, second = the_two_runs(run)
    run_import(db_path, folder)
    send(api, first)  # the plugin's copy of what was imported: the same names
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(3,)]
    send(api, second)
    copied.write_bytes(run["path"].read_bytes())
    run_import(db_path, folder)
    check_one_session(run, db_path, api)
    send(api, second[-1:])  # the plugin's running totals later: kept aside, the title stays
    check_one_session(run, db_path, api)
    send(api, second)  # its copies under its own numbers, after the file: known, not stored again
    check_one_session(run, db_path, api)


# --- the rest --------------------------------------------------------------------------------

def test_dry_run_writes_nothing_and_bad_lines_are_reported(run, db_path, tmp_path):
    run_import(db_path, tmp_path)  # an empty folder: the schema exists, nothing is read
    before = snapshot(db_path)
    dry = run_import(db_path, run["sessions"], args=["--dry-run"])
    assert dry.stdout.startswith("Would import 6 messages into 1 new") and snapshot(db_path) == before
    header = run["lines"][0]
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"type": "message", "id": "x1", "timestamp": "not a date", "message": {"role": "user", "content": "hi"}}),
        json.dumps({"type": "message", "id": "x2", "timestamp": header["timestamp"], "message": "no object"}),
        json.dumps({"type": "message", "id": "x3", "timestamp": header["timestamp"],
                    "message": {"role": "toolResult", "toolCallId": "nowhere", "content": []}}),
        json.dumps({"type": "message", "id": "x4", "timestamp": header["timestamp"],
                    "message": {"role": "assistant", "content": [{"type": "text", "text": "huge"}], "responseId": "r_huge",
                                "usage": {"input": 10**30, "output": -3, "cacheRead": float("nan"),
                                          "cost": {"total": float("inf")}}}}),
    ]
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text(run["path"].read_text() + "\n".join(bad) + "\n")
    orphan = tmp_path / "orphan.jsonl"  # no session header: nothing names its session
    orphan.write_text("".join(json.dumps(line) + "\n" for line in run["lines"][1:5]))
    result = run_import(db_path, hostile, orphan)
    assert "10 lines skipped" in result.stdout, (result.stdout, result.stderr)  # 5 here, 4 + the file there
    for why in ("not JSON", "not a JSON object", "not a date", "without its message", "for no call", "before the session header"):
        assert why in result.stderr, why
    assert totals(db_path)[0] == expected(run["api"].usage_sum())  # out-of-bounds counts count as 0
    (cost,) = rows(db_path, "SELECT cost FROM sessions")[0]
    assert cost == pytest.approx(pis_cost(run["lines"]), rel=1e-9)
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_the_default_folder_and_import_all(run, db_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PI_", "CODEX_", "CLAUDE_", "GEMINI_"))}
    env.update(HOME=str(run["home"]), XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert "into 1 new" in run_import(db_path, env=env).stdout
    (run["home"] / ".codex" / "sessions").mkdir(parents=True, exist_ok=True)  # Codex installed, nothing run yet
    everything = run_import(db_path, env=env, kind="all")
    assert everything.stdout.splitlines() == [
        "Codex: Imported 0 messages into 0 new and 0 updated sessions from 0 files (0 unchanged, 0 lines read); 0 lines skipped.",
        "pi: Imported 0 messages into 0 new and 0 updated sessions from 0 files (1 unchanged, 0 lines read); 0 lines skipped."]
    nothing = run_import(db_path, kind="all", env={**env, "HOME": str(tmp_path / "empty")}, ok=False)
    assert nothing.returncode != 0 and "no agent's history found" in nothing.stderr
    missing = run_import(db_path, env={**env, "HOME": str(tmp_path / "empty")}, ok=False)
    assert missing.returncode != 0 and "no pi sessions at" in missing.stderr


def test_serve_watches_pis_sessions_folder_as_it_works(tmp_path):
    """No import at all: `serve` watches ~/.pi/agent/sessions (from before it exists), and the
    session the real pi writes there arrives with the stand-in's tokens and pi's cost."""
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
        assert any("Watching" in line and ".pi/agent/sessions" in line for line in server.banner), server.banner
        key = CliRunner().invoke(main, ["keys", "create", "--db", server.db_path]).stdout.split()[-1]
        with StandIn([copy.deepcopy(SCRIPT)]) as api:
            setup_home(home, api.url)
            pi(home, cwd, "-p", PROMPT)
            want = expected(api.usage_sum())
        (path,) = (home / ".pi" / "agent" / "sessions").rglob("*.jsonl")
        cost = pis_cost([json.loads(line) for line in path.read_text().splitlines()])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            request = urllib.request.Request(server.url + "/api/sessions", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                sessions = json.loads(response.read())["sessions"]
            if sessions and sessions[0]["outputTokens"] == want["output_tokens"] and sessions[0]["title"]:  # the pass is whole
                break
            time.sleep(0.2)
        (session,) = sessions
        assert session["source"] == "pi" and session["title"] == PROMPT and session["messageCount"] == 3
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
        assert session["cost"] == pytest.approx(cost, rel=1e-9) and session["costBasis"] == "recorded"
    finally:
        server.stop()


def test_the_same_words_typed_again_later_are_new_messages_not_copies(tmp_path, app, api):
    """The pi plugin's copy of a turn the file already holds is that turn; the same prompt and
    answer typed again an hour later are a new turn (kept), and when the file then holds it
    too, the session has each turn once."""
    from opensync_lite.importers import pi
    from opensync_lite.models import User

    folder = tmp_path / "sessions" / "--p--"
    folder.mkdir(parents=True)
    path = folder / "2026-12-03T10-00-00-000Z_S.jsonl"

    def entry(n, at, role, content, **more):
        return {"type": "message", "id": f"e{n}", "parentId": f"e{n - 1}" if n > 1 else None,
                "timestamp": datetime.fromtimestamp(at / 1000).astimezone().isoformat(),
                "message": {"role": role, "content": content, **more}}

    start = int(time.time() * 1000) - 7_200_000
    usage = {"input": 10, "output": 5, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 15, "cost": {"total": 0.001}}
    lines = [{"type": "session", "version": 3, "id": "S", "cwd": "/p", "timestamp": "2026-12-03T10:00:00Z"},
             entry(1, start, "user", "continue"),
             entry(2, start + 1000, "assistant", [{"type": "text", "text": "Done."}], responseId="r1", usage=usage)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    def imported():
        with app.app_context():
            pi.run(User.get(User.name == "local").id, pi.sessions([tmp_path / "sessions"]))
    imported()
    later = start + 3_600_000
    for n, (role, words) in enumerate((("user", "continue"), ("assistant", "Done.")), start=5):
        assert api.post("/sync/message", {"sessionExternalId": "S", "externalId": f"S-{role}-{n}", "role": role,
                                          "textContent": words, "source": "pi", "createdAt": later + n}).status_code == 200
    assert api.session("S")["session"]["messageCount"] == 4  # kept: not the earlier turn's copies
    with path.open("a") as out:  # the file then gets the new turn
        out.write(json.dumps(entry(3, later + 5, "user", "continue")) + "\n")
        out.write(json.dumps(entry(4, later + 6, "assistant", [{"type": "text", "text": "Done."}], responseId="r2",
                                   usage=usage)) + "\n")
    imported()
    session = api.session("S")
    assert [m["textContent"] for m in session["messages"]] == ["continue", "Done.", "continue", "Done."]
    assert session["session"]["totalTokens"] == 30
