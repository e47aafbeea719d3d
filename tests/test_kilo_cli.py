"""`opensync-lite import kilo` on what the real Kilo 7.7.7 (an OpenCode fork, its native binary
from @kilocode/cli-linux-x64) wrote: `kilo run` and then `kilo run -c` in a fresh HOME against the
scripted Anthropic stand-in as its `anthropic` provider. Kilo writes OpenCode's schema as
~/.local/share/kilo/kilo.db; the OpenCode importer reads it as source `kilo`."""

import copy
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from anthropic_standin import StandIn
from click.testing import CliRunner
from conftest import NODE_BIN, rows, snapshot
from opensync_lite.cli import main
from test_opencode_cli import COMMAND, KINDS, MODEL, PROMPT, RESUME_PROMPT, SCRIPT, SMALL, expected, totals

KILO_VERSION = "7.7.7"
KILO = NODE_BIN.parent / "@kilocode" / "cli-linux-x64" / "bin" / "kilo"


def environment(home, cwd="."):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE", "KILO", "ANTHROPIC_", "XDG_"))}
    env.update(HOME=str(home), PWD=str(cwd), KILO_DISABLE_AUTOUPDATE="1", KILO_DISABLE_MODELS_FETCH="1",
               KILO_DISABLE_DEFAULT_PLUGINS="1", KILO_TELEMETRY_LEVEL="off", KILO_DISABLE_SHARE="1",
               KILO_DISABLE_SESSION_INGEST="1", KILO_DISABLE_LSP_DOWNLOAD="1", KILO_NO_DAEMON="1",
               npm_config_registry="http://127.0.0.1:9/", NO_COLOR="1")
    return env


def kilo(home, cwd, *args):
    done = subprocess.run([str(KILO), *args], cwd=cwd, env=environment(home, cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"kilo exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kilo")
    home, cwd = root / "home", root / "project"
    (home / ".config" / "kilo").mkdir(parents=True)
    cwd.mkdir()
    with StandIn(copy.deepcopy(SCRIPT)) as api:
        (home / ".config" / "kilo" / "kilo.json").write_text(json.dumps({
            "autoupdate": False, "share": "disabled", "model": f"anthropic/{MODEL}", "small_model": f"anthropic/{SMALL}",
            "enabled_providers": ["anthropic"],
            "provider": {"anthropic": {"options": {"baseURL": api.url + "/v1", "apiKey": "sk-ant-test-0000"}}},
            "permission": {"bash": "allow"}}))
        kilo(home, cwd, "run", PROMPT)
        kilo(home, cwd, "run", "-c", RESUME_PROMPT)
    data = home / ".local" / "share" / "kilo"
    conn = sqlite3.connect(f"{(data / 'kilo.db').resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    db = {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY time_created, id")] for t in ("session", "message", "part")}
    conn.close()
    return {"home": home, "cwd": cwd, "data": data, "api": api, "db": db}


def run_import(db_path, kind, root):
    result = CliRunner().invoke(main, ["import", kind, str(root), "--db", db_path])
    assert result.exit_code == 0, result.stderr
    return result


def test_kilo_writes_opencodes_schema(run):
    out = subprocess.run([str(KILO), "--version"], capture_output=True, text=True, timeout=60, env=environment(run["home"]))
    assert out.stdout.strip() == KILO_VERSION
    assert [r.kind for r in run["api"].messages()].count("main") == 4
    (session,) = run["db"]["session"]
    assert session["version"] == KILO_VERSION
    assert [json.loads(m["data"])["role"] for m in run["db"]["message"]] == ["user", "assistant", "assistant"] * 2


def test_tokens_cost_and_tool_calls_as_kilo_recorded_them(run, db_path, api):
    result = run_import(db_path, "kilo", run["data"])
    assert "6 messages into 1 new and 0 updated sessions" in result.stdout
    want = expected(run["api"].usage_sum("main"))
    session_totals, message_totals = totals(db_path)
    assert session_totals == message_totals == want
    (stored,) = run["db"]["session"]
    assert (stored["tokens_input"], stored["tokens_output"], stored["tokens_cache_read"], stored["tokens_cache_write"]) == (
        want["input_tokens"], want["output_tokens"], want["cache_read_tokens"], want["cache_write_tokens"])
    (listed,) = api.get("/api/sessions?limit=10").get_json()["sessions"]
    assert listed["externalId"] == stored["id"] and listed["source"] == "kilo" and listed["title"] == stored["title"]
    assert listed["projectPath"] == str(run["cwd"]) and listed["model"] == MODEL
    assert listed["costBasis"] == "recorded" and listed["cost"] == pytest.approx(stored["cost"], rel=1e-9)
    messages = api.session(stored["id"])["messages"]
    assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT, RESUME_PROMPT]
    calls = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
    results = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-result"]
    assert [c["name"] for c in calls] == ["bash"] * 2 and all(c["input"]["command"] == COMMAND for c in calls)
    assert [r["content"] for r in results] == ["expected 10 tokens\n"] * 2
    assert rows(db_path, "SELECT tool_call_count, message_count FROM sessions") == [(2, 6)]


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, "kilo", run["data"])
    before = snapshot(db_path)
    again = run_import(db_path, "kilo", run["data"])
    assert "0 files (1 unchanged" in again.stdout and snapshot(db_path) == before


def test_never_merged_with_an_opencode_session_of_the_same_id(run, db_path, tmp_path, api):
    """Kilo keeps OpenCode's id scheme: the same database read as OpenCode's first, then as
    Kilo's, is two sessions, each with its own source and the tokens counted once each."""
    opencode = tmp_path / "opencode"
    opencode.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if (run["data"] / f"kilo.db{suffix}").exists():
            shutil.copy(run["data"] / f"kilo.db{suffix}", opencode / f"opencode.db{suffix}")
    run_import(db_path, "opencode", opencode)
    run_import(db_path, "kilo", run["data"])
    run_import(db_path, "kilo", run["data"])
    want = expected(run["api"].usage_sum("main"))
    got = rows(db_path, f"SELECT source, message_count, {', '.join(KINDS)} FROM sessions ORDER BY source")
    assert got == [("kilo", 6, *want.values()), ("opencode", 6, *want.values())]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(12,)]
