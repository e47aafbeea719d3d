"""Codex CLI 0.171.0's sub-agents, on what the real CLI wrote: `codex exec` and then `codex exec
resume --last` in a fresh HOME against the Responses API stand-in (tests/openai_standin.py),
the resumed turn having the model call ``spawn_agent`` twice (the second with
``fork_context``: its rollout starts with a copy of the parent's history), then ``wait_agent``
on each.
Each sub-agent writes a rollout of its own naming its parent; its telemetry names its own
thread. The stand-in's usage per script is the only number the tests know in advance."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import LiveServer, rows, snapshot
from openai_standin import Turn, StandIn, exec_command, message, spawn_agent, wait_for_spawned
from test_import_codex import KINDS, PROMPT, codex, config, expected, otel_config, run_import

SPAWN_PROMPT = "HELPERS: ask two helpers to echo"
TASK_A, TASK_B = "SUBTASK-A: run echo from a", "SUBTASK-B: run echo from b"


def usage(total, cached, written, output, reasoning=0):
    return {"input_tokens": total, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": total + output}


# Every response's usage differs, so a total that counts one twice, drops one, or puts one on
# the wrong session cannot come out right.
PARENT = [Turn([spawn_agent(TASK_A)], usage(2100, 1800, 64, 41, 9)),
          Turn([spawn_agent(TASK_B, fork_context=True)], usage(2200, 1900, 32, 43, 11)),
          Turn(wait_for_spawned(0), usage(2300, 2048, 0, 47)),
          Turn(wait_for_spawned(1), usage(2350, 2112, 8, 23)),
          Turn([message("Both helpers are done.")], usage(2400, 2176, 16, 29))]
CHILD_A = [Turn([exec_command("echo from a")], usage(900, 512, 24, 31, 5)), Turn([message("a done")], usage(950, 768, 0, 13))]
CHILD_B = [Turn([exec_command("echo from b")], usage(1300, 1024, 8, 37, 7)), Turn([message("b done")], usage(1350, 1152, 0, 17))]


def meta(path):
    with open(path) as f:
        return json.loads(f.readline())["payload"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Both turns, their telemetry sent to a live server that cannot see the files."""
    root = tmp_path_factory.mktemp("codex-subagents")
    home, cwd = root / "home", root / "project"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    db = str(root / "telemetry.db")
    server = LiveServer(db, env={"HOME": str(root / "elsewhere")})
    try:
        key = server.create_key()
        with StandIn(agents={"HELPERS": PARENT, "SUBTASK-A": CHILD_A, "SUBTASK-B": CHILD_B}) as api:
            (home / ".codex" / "config.toml").write_text(config(api.url) + otel_config(server.url, key))
            codex(home, cwd, "exec", "--skip-git-repo-check", PROMPT)
            codex(home, cwd, "exec", "--skip-git-repo-check", "resume", "--last", SPAWN_PROMPT)
        sessions = home / ".codex" / "sessions"
        found = {}
        for path in sessions.rglob("rollout-*.jsonl"):
            first = meta(path)  # b is the one spawned with fork_context
            found["b" if first.get("forked_from_id") else "a" if first.get("parent_thread_id") else "parent"] = (path, first)
        want = {"parent": expected(api.usage_sum("main")), "a": expected(api.usage_sum("SUBTASK-A")),
                "b": expected(api.usage_sum("SUBTASK-B"))}
        helpers = expected(api.usage_sum("HELPERS"))
        want["parent"] = {k: want["parent"][k] + helpers[k] for k in KINDS}
        yield {"home": home, "sessions": sessions, "api": api, "want": want, "server": server, "key": key, "db": db,
               "parent": found["parent"], "a": found["a"], "b": found["b"]}
    finally:
        server.stop()


def ids(run):
    return {name: run[name][1]["id"] for name in ("parent", "a", "b")}


def four(session):
    return {"input_tokens": session["inputTokens"], "output_tokens": session["outputTokens"],
            "cache_read_tokens": session["cacheReadTokens"], "cache_write_tokens": session["cacheWriteTokens"]}


def summed(*totals):
    return {k: sum(t[k] for t in totals) for k in KINDS}


def test_the_cli_spawned_two_subagents_with_rollouts_naming_their_parent(run):
    answered = run["api"].responses()
    assert {r.kind for r in answered} == {"main", "HELPERS", "SUBTASK-A", "SUBTASK-B"}  # nothing past a script
    assert sorted(r.turn for r in answered if r.kind == "HELPERS") == [0, 1, 2, 3, 4]
    assert [r.turn for r in answered if r.kind == "SUBTASK-A"] == [0, 1] == [r.turn for r in answered if r.kind == "SUBTASK-B"]
    parent = run["parent"][1]
    assert parent.get("parent_thread_id") is None and parent["source"] == "exec"
    for name in ("a", "b"):
        child = run[name][1]
        assert child["parent_thread_id"] == parent["id"] != child["id"]
        assert child["source"]["subagent"]["thread_spawn"]["parent_thread_id"] == parent["id"]
    # The forked one starts with a copy of the parent's history: the parent's session_meta, its prompt.
    forked = [json.loads(line) for line in run["b"][0].read_text().splitlines()]
    assert run["b"][1]["forked_from_id"] == parent["id"]
    assert [line["payload"]["id"] for line in forked if line["type"] == "session_meta"] == [run["b"][1]["id"], parent["id"]]
    assert PROMPT in run["b"][0].read_text()


def test_each_subagent_is_its_own_session_linked_to_its_parent(run, db_path, api):
    result = run_import(db_path, run["sessions"])
    assert "into 3 new and 0 updated sessions from 3 files" in result.stdout and "0 lines skipped" in result.stdout
    i = ids(run)
    children = api.get(f"/api/sessions?parent={i['parent']}&limit=10").get_json()["sessions"]
    assert sorted(c["externalId"] for c in children) == sorted([i["a"], i["b"]])
    parent = api.session(i["parent"])
    assert parent["session"].get("parentExternalId") is None and parent["session"]["title"] == PROMPT
    for name, task in (("a", TASK_A), ("b", TASK_B)):
        child = api.session(i[name])
        assert child["session"]["parentExternalId"] == i["parent"] and child["session"]["title"] == task
        # Its own conversation only: the forked copy of the parent's history is the parent's.
        assert [m["textContent"] for m in child["messages"] if m["role"] == "user"] == [task]
        (call,) = [p["content"] for m in child["messages"] for p in m["parts"] if p["type"] == "tool-call"]
        (output,) = [p["content"] for m in child["messages"] for p in m["parts"] if p["type"] == "tool-result"]
        assert call["input"] == {"cmd": f"echo from {name}"} and f"from {name}" in output["content"]
    names = [p["content"]["name"] for m in parent["messages"] for p in m["parts"] if p["type"] == "tool-call"]
    assert names == ["exec_command", "spawn_agent", "spawn_agent", "wait_agent", "wait_agent"]
    folded = api.get("/api/sessions?subagents=fold&limit=10").get_json()["sessions"]
    assert [s["externalId"] for s in folded] == [i["parent"]]


def test_tokens_are_the_stand_ins_counted_once_per_session(run, db_path, api):
    run_import(db_path, run["sessions"])
    i, want = ids(run), run["want"]
    for name in ("parent", "a", "b"):
        assert four(api.session(i[name])["session"]) == want[name], name
        by_messages = rows(db_path, f"SELECT {', '.join(f'SUM(m.{k})' for k in KINDS)} FROM messages m "
                                    "JOIN sessions s ON s.id = m.session_id WHERE s.external_id = ?", (i[name],))
        assert dict(zip(KINDS, by_messages[0])) == want[name], name
    everything = summed(*want.values())
    stats = api.get("/api/stats").get_json()
    assert stats["sessionCount"] == 3
    assert stats["completionTokens"] == everything["output_tokens"]
    assert stats["promptTokens"] == everything["input_tokens"] + everything["cache_read_tokens"] + everything["cache_write_tokens"]
    assert stats["cacheReadTokens"] == everything["cache_read_tokens"] and stats["cacheWriteTokens"] == everything["cache_write_tokens"]
    # The parent's own totals, and with its subagents: the stats' total, each token once.
    rollup = api.session(i["parent"])["subagents"]
    assert rollup["sessions"] == 2 and rollup["completionTokens"] == want["a"]["output_tokens"] + want["b"]["output_tokens"]
    assert rollup["withSubagents"]["totalTokens"] == stats["totalTokens"] == sum(everything.values())
    listed = api.get("/api/sessions?subagents=fold&limit=10").get_json()
    assert sum(s["totalTokens"] for s in api.get("/api/sessions?limit=10").get_json()["sessions"]) == stats["totalTokens"]
    assert listed["sessions"][0]["totalTokens"] == sum(want["parent"].values())


def test_rerun_changes_nothing(run, db_path):
    run_import(db_path, run["sessions"])
    before = snapshot(db_path)
    again = run_import(db_path, run["sessions"])
    assert "0 files (3 unchanged, 0 lines read)" in again.stdout and snapshot(db_path) == before


def test_a_subagent_imported_before_its_parent_is_linked_all_the_same(run, db_path, api):
    run_import(db_path, run["b"][0])
    run_import(db_path, run["sessions"])
    i = ids(run)
    assert api.session(i["b"])["session"]["parentExternalId"] == i["parent"]
    assert four(api.session(i["b"])["session"]) == run["want"]["b"]
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(3,)]


def test_token_totals_equal_ccusage_20s_on_the_same_rollouts(run, db_path):
    """ccusage 20's `codex session` reads the same three rollouts. It passes over a subagent's
    (it reads ``source.subagent.thread_spawn`` and ``forked_from_id``: a child alone gives it
    no session at all), so its one session is the parent's own totals, ours exactly; the
    children's tokens, real requests the stand-in answered, are ours beside it."""
    from claude_cli import ccusage20

    run_import(db_path, run["sessions"])
    home = run["home"]
    done = subprocess.run([*ccusage20(), "codex", "session", "--json", "--offline"], capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ["PATH"], "HOME": str(home),
                                            "CODEX_HOME": str(home / ".codex"), "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    (theirs,) = json.loads(done.stdout)["sessions"]
    assert theirs["sessionFile"] == run["parent"][0].stem

    def ours(name):
        found = rows(db_path, f"SELECT {', '.join(KINDS)} FROM sessions WHERE external_id = ?", (run[name][1]["id"],))
        return dict(zip(KINDS, found[0]))

    assert ours("parent") == {"input_tokens": theirs["inputTokens"], "output_tokens": theirs["outputTokens"],
                              "cache_read_tokens": theirs["cacheReadTokens"], "cache_write_tokens": theirs["cacheCreationTokens"]}
    assert sum(ours("parent").values()) == theirs["totalTokens"] and ours("parent") == run["want"]["parent"]
    assert ours("a") == run["want"]["a"] and ours("b") == run["want"]["b"] and sum(run["want"]["a"].values()) > 0


def test_a_subagents_telemetry_lands_on_its_own_session_then_its_rollout_links_it(run):
    """Codex's telemetry names each thread by its own id (conversation.id): a subagent's tokens
    arrive on its own session, not the parent's; its rollout imported beside links it to the
    parent, and every response still counts once."""
    server, key, i, want = run["server"], run["key"], ids(run), run["want"]

    def get(path):
        request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def by_id():
        return {s["externalId"]: s for s in get("/api/sessions?limit=10")["sessions"]}

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = by_id()
        if all(i[n] in got and got[i[n]]["outputTokens"] == want[n]["output_tokens"] for n in want):
            break
        time.sleep(0.2)
    assert sorted(got) == sorted(i.values())
    for name in ("parent", "a", "b"):
        assert four(got[i[name]]) == want[name], name
    calls = [p["content"]["name"] for m in get(f"/api/sessions/get?id={got[i['a']]['id']}")["messages"]
             for p in m["parts"] if p["type"] == "tool-call"]
    assert calls == ["exec_command"]
    run_import(run["db"], run["sessions"])
    both = by_id()
    assert sorted(both) == sorted(i.values())
    for name in ("parent", "a", "b"):
        assert four(both[i[name]]) == want[name], name
    assert both[i["a"]]["parentExternalId"] == both[i["b"]]["parentExternalId"] == i["parent"]
    assert both[i["parent"]].get("parentExternalId") is None
