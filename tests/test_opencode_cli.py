"""`opensync-lite import opencode` on what the real OpenCode 1.18.33 (pinned in tests/package.json,
its native binary from the opencode-linux-x64 package) wrote: `opencode run` and then
`opencode run -c` in a fresh HOME, against the scripted Anthropic Messages API stand-in
(tests/anthropic_standin.py) as OpenCode's `anthropic` provider. 1.18 writes opencode.db only:
each model step is an assistant message of its own with one step-finish part, a prompt given as
one argument is stored in quotes, and a small-model call names the session."""

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from anthropic_standin import Conversation, StandIn, Turn, text, tool_use
from click.testing import CliRunner
from conftest import NODE_BIN, LiveServer, rows, snapshot
from opensync_lite.cli import main

OPENCODE_VERSION = "1.18.33"
MODEL, SMALL = "claude-sonnet-4-5", "claude-haiku-4-5"
PROMPT = 'Please run: echo "expected 10 tokens"'
RESUME_PROMPT = "Now run it once more"
COMMAND = "echo expected 10 tokens"
TITLE = "Echo check for the cart"


def usage(fresh, write, read, output):
    return {"input_tokens": fresh, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0}, "output_tokens": output}


def bash(command):
    return tool_use("bash", {"command": command, "description": "Echo the words"})


SCRIPT = [
    # OpenCode's title call quotes the prompt after this line: answered apart, counted apart.
    Conversation("Generate a title for this conversation", [Turn([text(TITLE)], usage=usage(300, 0, 0, 6))], name="title"),
    Conversation("expected 10 tokens", [
        Turn([text("I will run it."), bash(COMMAND)], usage=usage(120, 800, 3000, 45)),
        Turn([text("It printed: expected 10 tokens.")], usage=usage(31, 0, 3900, 20)),
        Turn([text("Once more."), bash(COMMAND)], usage=usage(17, 250, 4100, 38)),
        Turn([text("It printed the same again.")], usage=usage(9, 0, 4400, 12)),
    ]),
]
KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def environment(home, cwd="."):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE", "ANTHROPIC_", "XDG_"))}
    env.update(HOME=str(home), PWD=str(cwd), OPENCODE_DISABLE_AUTOUPDATE="1", OPENCODE_DISABLE_MODELS_FETCH="1",
               OPENCODE_DISABLE_DEFAULT_PLUGINS="1", npm_config_registry="http://127.0.0.1:9/", NO_COLOR="1")
    return env


# The native binary itself: the opencode-ai wrapper lists platform packages the registry lacks,
# which `npm ci` refuses.
OPENCODE = NODE_BIN.parent / "opencode-linux-x64" / "bin" / "opencode"


def opencode(home, cwd, *args):
    done = subprocess.run([str(OPENCODE), *args], cwd=cwd, env=environment(home, cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"opencode exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("opencode")
    home, cwd = root / "home", root / "project"
    (home / ".config" / "opencode").mkdir(parents=True)
    cwd.mkdir()
    with StandIn(copy.deepcopy(SCRIPT)) as api:
        (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps({
            "autoupdate": False, "share": "disabled", "model": f"anthropic/{MODEL}", "small_model": f"anthropic/{SMALL}",
            "provider": {"anthropic": {"options": {"baseURL": api.url + "/v1", "apiKey": "sk-ant-test-0000"}}},
            "permission": {"bash": "allow"}}))
        opencode(home, cwd, "run", PROMPT)
        opencode(home, cwd, "run", "-c", RESUME_PROMPT)
    data = home / ".local" / "share" / "opencode"
    db = sqlite_rows(data / "opencode.db")
    return {"home": home, "cwd": cwd, "data": data, "api": api, "db": db}


def sqlite_rows(path):
    import sqlite3

    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY time_created, id")]
                for t in ("session", "message", "part")}
    finally:
        conn.close()


class Ran:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def run_import(db_path, root, args=()):
    """`opensync-lite import opencode` in this process (a fresh interpreter per run costs seconds here)."""
    result = Ran(CliRunner().invoke(main, ["import", "opencode", str(root), "--db", db_path, *args]))
    assert result.returncode == 0, result.stderr
    return result


def expected(total):
    return {"input_tokens": total["input_tokens"], "output_tokens": total["output_tokens"],
            "cache_read_tokens": total["cache_read_input_tokens"], "cache_write_tokens": total["cache_creation_input_tokens"]}


def totals(db_path):
    (session,) = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions")
    (messages,) = rows(db_path, f"SELECT {', '.join(f'SUM({k})' for k in KINDS)} FROM messages")
    return dict(zip(KINDS, session)), dict(zip(KINDS, messages))


def test_the_pinned_cli_writes_todays_layout(run):
    out = subprocess.run([str(OPENCODE), "--version"], capture_output=True, text=True, timeout=60,
                         env=environment(run["home"]))
    assert out.stdout.strip() == OPENCODE_VERSION
    assert [r.kind for r in run["api"].messages()] == ["title", "main", "main", "main", "main"]
    assert not (run["data"] / "storage" / "session").exists()  # the database only
    (session,) = run["db"]["session"]
    assert session["version"] == OPENCODE_VERSION and session["title"] == TITLE
    # One assistant message per model step, each with one step-finish; the prompts in quotes.
    roles = [json.loads(m["data"])["role"] for m in run["db"]["message"]]
    assert roles == ["user", "assistant", "assistant"] * 2
    steps = [p for p in run["db"]["part"] if json.loads(p["data"])["type"] == "step-finish"]
    assert len(steps) == 4 and len({p["message_id"] for p in steps}) == 4
    prompts = [json.loads(p["data"])["text"] for p in run["db"]["part"] if json.loads(p["data"])["type"] == "text"
               and p["message_id"] in {m["id"] for m in run["db"]["message"] if json.loads(m["data"])["role"] == "user"}]
    assert prompts == ['"' + PROMPT.replace('"', '\\"') + '"', f'"{RESUME_PROMPT}"']


def test_one_session_with_the_stand_ins_tokens_and_opencodes_cost(run, db_path, api):
    result = run_import(db_path, run["data"])
    assert "6 messages into 1 new and 0 updated sessions" in result.stdout and "0 lines skipped" in result.stdout
    want = expected(run["api"].usage_sum("main"))  # the title call is not the session's
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == want
    (stored,) = run["db"]["session"]
    assert (stored["tokens_input"], stored["tokens_output"], stored["tokens_cache_read"], stored["tokens_cache_write"]) == (
        want["input_tokens"], want["output_tokens"], want["cache_read_tokens"], want["cache_write_tokens"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == stored["id"] and listed["source"] == "opencode" and listed["title"] == TITLE
    assert listed["projectPath"] == str(run["cwd"]) and listed["model"] == MODEL
    assert listed["costBasis"] == "recorded" and listed["cost"] == pytest.approx(stored["cost"], rel=1e-9)
    assert listed["createdAt"] == stored["time_created"] and listed["updatedAt"] == stored["time_updated"]


def test_the_prompts_as_typed_and_the_tool_calls_with_their_output(run, db_path, api):
    run_import(db_path, run["data"])
    (stored,) = run["db"]["session"]
    messages = api.session(stored["id"])["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    assert [m["externalId"] for m in messages] == [m["id"] for m in run["db"]["message"]]
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["bash"] * 2 and all(c["input"]["command"] == COMMAND for c in calls)
    assert [r["toolUseId"] for r in results] == [c["id"] for c in calls]
    assert [r["content"] for r in results] == ["expected 10 tokens\n"] * 2
    assert rows(db_path, "SELECT tool_call_count, message_count FROM sessions") == [(2, 6)]


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["data"])
    before = snapshot(db_path)
    again = run_import(db_path, run["data"])
    assert "0 files (1 unchanged" in again.stdout and snapshot(db_path) == before


def test_the_live_plugins_message_only_session_is_filled_in_by_the_watcher(run, tmp_path):
    """opencode-sync's live plugin sends messages only (its session events never match, see
    PROTOCOL.md): `serve` watching OpenCode's folder gives that session its title, project,
    model and tokens from opencode.db as OpenCode writes it."""
    data = tmp_path / "xdg" / "opencode"
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        key = CliRunner().invoke(main, ["keys", "create", "--source", "opencode", "--db", server.db_path]).stdout.split()[-1]
        (stored,) = run["db"]["session"]

        def call(path, body=None):
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}",
                                                                         "Content-Type": "application/json"},
                                             data=None if body is None else json.dumps(body).encode())
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        for m in run["db"]["message"]:  # as the plugin sends them: text, model, no parts, no source
            info = json.loads(m["data"])
            said = "".join(json.loads(p["data"]).get("text", "") for p in run["db"]["part"]
                           if p["message_id"] == m["id"] and json.loads(p["data"])["type"] == "text")
            call("/sync/message", {"sessionExternalId": stored["id"], "externalId": m["id"], "role": info["role"],
                                   "textContent": said, **({"model": info["modelID"]} if "modelID" in info else {})})
        (bare,) = call("/api/sessions")["sessions"]
        assert bare["title"] in (None, "") and bare["model"] in (None, "") and bare["outputTokens"] == 0
        shutil.copytree(run["data"], data)  # OpenCode writes its database where serve is watching
        want = expected(run["api"].usage_sum("main"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (session := call("/api/sessions")["sessions"][0])["title"] != TITLE:
            time.sleep(0.2)
        (session,) = call("/api/sessions")["sessions"]
        assert session["externalId"] == stored["id"] and session["title"] == TITLE and session["source"] == "opencode"
        assert session["projectPath"] == str(run["cwd"]) and session["model"] == MODEL
        assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
        assert session["messageCount"] == 6 and session["cost"] == pytest.approx(stored["cost"], rel=1e-9)
    finally:
        server.stop()



def plugin_bodies(run, garble=False):
    """opencode-sync's /sync/message bodies for what OpenCode wrote, as its `sync --force` sends them
    (wire/opencode-sync-plugin-0.3.6.jsonl): OpenCode's ids, the text parts joined as stored (so a
    prompt in 1.18's quotes), the model and one step's tokens of an answer, no parts, no source.
    ``garble``: the prompts mangled and given another model, as a resend must not make them."""
    (stored,) = run["db"]["session"]
    bodies = []
    for m in run["db"]["message"]:
        info = json.loads(m["data"])
        said = "".join(json.loads(p["data"]).get("text", "") for p in run["db"]["part"]
                       if p["message_id"] == m["id"] and json.loads(p["data"])["type"] == "text")
        body = {"sessionExternalId": stored["id"], "externalId": m["id"], "role": info["role"], "textContent": said}
        if info["role"] == "assistant":
            tokens = info.get("tokens") or {}
            body.update(model=info["modelID"], promptTokens=tokens.get("input", 0) + 1,
                        completionTokens=tokens.get("output", 0) + 1, durationMs=1234)
        elif garble:
            body.update(textContent=said[: len(said) // 2] + "\ufffd", model="gpt-4o")
        bodies.append(body)
    return bodies


def test_the_plugins_copies_before_and_after_the_watcher_leave_the_files_session(run, tmp_path):
    """A live `serve --watch` over HTTP: opencode-sync's session and first turn arrive before
    OpenCode's database is watched, the watcher imports it, then the plugin resends the session
    and every message (its own figures, the prompts garbled and under another model). One
    session holds the file's text, model and tokens, each counted once; doing it all again,
    the import included, writes nothing."""
    data = tmp_path / "xdg" / "opencode"
    db_path = str(tmp_path / "opensync.db")
    server = LiveServer(db_path, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")},
                        args=["--watch"])
    try:
        key = server.create_key()  # the plugin's: no source of its own

        def call(path, body=None):
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}",
                                                                         "Content-Type": "application/json"},
                                             data=None if body is None else json.dumps(body).encode())
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
                return json.loads(response.read())

        (stored,) = run["db"]["session"]
        plugin_session = {"externalId": stored["id"], "title": TITLE, "projectPath": str(run["cwd"]),
                          "projectName": run["cwd"].name, "model": MODEL, "provider": "anthropic",
                          "promptTokens": 12, "completionTokens": 662, "cost": 0.053235}
        call("/sync/session", plugin_session)
        for body in plugin_bodies(run)[:3]:  # the first turn, live
            call("/sync/message", body)
        shutil.copytree(run["data"], data)  # OpenCode's database where serve is watching
        want = expected(run["api"].usage_sum("main"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and call("/api/sessions")["sessions"][0]["inputTokens"] != want["input_tokens"]:
            time.sleep(0.2)
        call("/sync/session", plugin_session)  # and again after the import, every message with it
        for body in plugin_bodies(run, garble=True):
            call("/sync/message", body)

        def check():
            (session,) = call("/api/sessions")["sessions"]
            assert session["externalId"] == stored["id"] and session["source"] == "opencode" and session["title"] == TITLE
            assert (session["inputTokens"], session["outputTokens"], session["cacheReadTokens"],
                    session["cacheWriteTokens"]) == tuple(want[k] for k in KINDS)
            assert session["cost"] == pytest.approx(stored["cost"], rel=1e-9) and session["messageCount"] == 6
            messages = call(f"/api/sessions/get?id={stored['id']}")["messages"]
            assert [m["externalId"] for m in messages] == [m["id"] for m in run["db"]["message"]]
            assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
            assert {m["model"] for m in messages if m["role"] == "user"} == {None}
            assert [m["textContent"] for m in messages if m["role"] == "assistant"] == [
                "I will run it.", "It printed: expected 10 tokens.", "Once more.", "It printed the same again."]
            session_totals, message_totals = totals(db_path)  # each response once, on its own message
            assert session_totals == message_totals == want
            assert rows(db_path, "SELECT COUNT(*) FROM import_responses") == [(4,)]
            assert rows(db_path, "SELECT tool_call_count FROM sessions") == [(2,)]

        check()
        before = snapshot(db_path)
        for body in plugin_bodies(run, garble=True):  # the plugin's resend again, then an import
            call("/sync/message", body)
        again = run_import(db_path, data)
        assert "0 files (1 unchanged" in again.stdout
        check()
        assert snapshot(db_path) == before
    finally:
        server.stop()


@pytest.mark.parametrize("stored, typed", [
    ('"fix the bug"', "fix the bug"),  # one argument with a space, as `opencode run` joins it
    ('"say \\"hi\\" twice"', 'say "hi" twice'),  # its inner quotes escaped
    ("fix", "fix"), ('"fix"', '"fix"'),  # no space: never quoted by the CLI
    ('"fix this" now', '"fix this" now'),  # several arguments: left as joined
    ('"a" and "b"', '"a" and "b"'),  # quotes the CLI would have escaped: typed so
])
def test_a_prompt_is_unquoted_only_as_the_cli_quoted_it(stored, typed):
    from opensync_lite.importers.opencode import _unquoted

    assert _unquoted(stored) == typed
