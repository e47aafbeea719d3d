"""`opensync-lite statusline` fed Claude Code's documented statusLine JSON (with and without
rate_limits, and malformed): its line, its time with the server up and down, the snapshot the
server stores; `--setup` writing ~/.claude/settings.json; the schema step that adds its table."""

import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI, LiveServer

import opensync_lite
from opensync_lite import create_app, db

SCRIPT = Path(opensync_lite.__file__).parent / "statusline.py"
FAST = [sys.executable, "-S", str(SCRIPT)]  # what --setup writes
SCRIPTED = [sys.executable, "-m", "opensync_lite.launch", "statusline"]  # the `opensync-lite` script's way
RUNS = 20


def status_json(now, limits=True):
    """Claude Code's statusLine input, as documented (rate_limits only for subscribers)."""
    data = {
        "hook_event_name": "Status", "session_id": "cc-session-1", "transcript_path": "/tmp/t.jsonl",
        "cwd": "/home/dev/alpha", "version": "2.1.332",
        "model": {"id": "claude-opus-4-1-20250805", "display_name": "Opus"},
        "workspace": {"current_dir": "/home/dev/alpha", "project_dir": "/home/dev/alpha"},
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 1.2345, "total_duration_ms": 45000, "total_api_duration_ms": 2300,
                 "total_lines_added": 156, "total_lines_removed": 23},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521, "context_window_size": 200000,
                           "used_percentage": 9.9},
        "exceeds_200k_tokens": False,
    }
    if limits:
        data["rate_limits"] = {"five_hour": {"used_percentage": 83.4, "resets_at": int(now) + 2 * 3600},
                               "seven_day": {"used_percentage": 41.2, "resets_at": int(now) + 3 * 86400}}
    return data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("statusline")
    server = LiveServer(str(base / "opensync.db"))
    key = server.create_key()
    now = int(time.time() * 1000)
    batch = {"sessions": [{"externalId": "oc-1", "source": "opencode", "model": "claude-sonnet-4-20250514",
                           "createdAt": now - 60_000}],
             "messages": [{"sessionExternalId": "oc-1", "externalId": "oc-1-a", "role": "assistant",
                           "model": "claude-sonnet-4-20250514", "inputTokens": 100_000, "outputTokens": 20_000,
                           "createdAt": now - 30_000}]}
    request = urllib.request.Request(server.url + "/sync/batch", data=json.dumps(batch).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
    home = base / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "OPENSYNC_URL": server.url, "OPENSYNC_KEY": key,
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "TZ": "UTC"}
    yield {"server": server, "key": key, "home": home, "env": env}
    server.stop()


def run(world, stdin, command=FAST, env=None):
    out = subprocess.run(command, input=stdin if isinstance(stdin, str) else json.dumps(stdin), capture_output=True,
                         text=True, timeout=10, env={**world["env"], **(env or {})})
    assert out.returncode == 0 and out.stderr == ""
    return out.stdout


def snapshots(world):
    request = urllib.request.Request(world["server"].url + "/api/limits/snapshots",
                                     headers={"Authorization": f"Bearer {world['key']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["snapshots"]


def wait_for(check, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_line_then_the_snapshot_stored_then_todays_spend(world):
    now = time.time()
    out = run(world, status_json(now))
    assert out.count("\n") == 1
    assert out.startswith("Opus · $1.23 session · ")
    assert f"⚠ 5h 83% ↻{time.strftime('%H:%M', time.gmtime(now + 7200))}" in out
    assert f"7d 41% ↻{time.strftime('%a %H:%M', time.gmtime(now + 3 * 86400))}" in out
    (stored,) = wait_for(lambda: snapshots(world))
    assert stored["fiveHourUsed"] == 83.4 and stored["sevenDayUsed"] == 41.2
    assert stored["fiveHourResetsAt"] == (int(now) + 7200) * 1000 and stored["sessionCost"] == 1.2345
    assert stored["machine"] == socket.gethostname() and stored["model"] == "claude-opus-4-1-20250805"
    # The server's answer (every agent's spend today, here OpenCode's) is on the next line.
    cache = world["home"] / ".cache" / "opensync-lite" / "statusline.json"
    wait_for(cache.exists)
    today = json.loads(cache.read_text())["today"]
    assert today["cost"] > 0 and today["costBasis"] == "estimated"
    assert f"${today['cost']:,.2f}~ today" in run(world, status_json(now))


def test_without_rate_limits_and_malformed(world):
    out = run(world, status_json(time.time(), limits=False))
    assert "5h" not in out and "7d" not in out and "$1.23 session" in out
    for bad in ("", "not json {", "[1, 2]", '{"model": 5, "cost": {"total_cost_usd": "lots"}}'):
        assert run(world, bad).strip() in ("opensync", "$1.23 session") or "today" in run(world, bad)
    # A malformed snapshot never reaches the table: the server refuses it naming the field.
    request = urllib.request.Request(world["server"].url + "/api/limits/snapshots", method="POST",
                                     data=json.dumps({"rate_limits": {"five_hour": {"used_percentage": -3}}}).encode(),
                                     headers={"Authorization": f"Bearer {world['key']}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and "rate_limits" in json.loads(err.value.read())["fields"]


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_time_with_the_server_up_down_and_hanging(world):
    """p95 under 100 ms with the server up, down (refused) and hanging (a socket that takes
    the connection and never answers: the forwarder's 2 s time-out would show if the line
    waited for it). The machine the suite runs on is shared, so the runs take turns with the
    bare interpreter's start (python -S -c pass): the 100 ms target is held where that start
    is not itself slowed past 50 ms; the command's own CPU time, and never waiting on the
    network, always. The figures are printed."""
    data = json.dumps(status_json(time.time()))
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # connections queue; nothing ever reads them
    commands = {"bare": ([sys.executable, "-S", "-c", "pass"], {}), "up": (FAST, {}),
                "down": (FAST, {"OPENSYNC_URL": f"http://127.0.0.1:{free_port()}"}),
                "hanging": (FAST, {"OPENSYNC_URL": f"http://127.0.0.1:{hole.getsockname()[1]}"})}
    cache = world["home"] / ".cache" / "opensync-lite" / "statusline.json"
    walls, cpus = {name: [] for name in commands}, {name: 0.0 for name in commands}
    try:
        for _ in range(RUNS):
            for name, (command, env) in commands.items():
                written = cache.stat().st_mtime_ns if cache.exists() else 0
                before, started = _cpu(), time.perf_counter()
                out = subprocess.run(command, input=data, capture_output=True, text=True, timeout=10, check=True,
                                     env={**world["env"], **env})
                walls[name].append(time.perf_counter() - started)
                cpus[name] += (_cpu() - before) / RUNS
                assert name == "bare" or out.stdout.startswith("Opus · ")
                if name == "up":  # Claude Code runs it once per turn: the last forward is done by the next
                    wait_for(lambda: cache.exists() and cache.stat().st_mtime_ns != written, seconds=5)
    finally:
        hole.close()
    p95 = {name: sorted(values)[int(RUNS * 0.95) - 1] for name, values in walls.items()}
    print("p95 wall ms:", {k: round(v * 1000) for k, v in p95.items()}, "mean CPU ms:", {k: round(v * 1000) for k, v in cpus.items()})
    for name in ("up", "down", "hanging"):
        assert cpus[name] < 0.1  # the command's own cost, whatever else runs on the machine
        assert p95[name] < 1.0  # never the forwarder's 2 s time-out
        if p95["bare"] < 0.05:  # a machine not starved by other work: the target itself
            assert p95[name] < 0.1


def test_the_opensync_lite_script_runs_it_without_the_server_modules(world):
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "opensync_lite.launch", "statusline"],
                         input=json.dumps(status_json(time.time())), capture_output=True, text=True, timeout=20,
                         env={**world["env"], "OPENSYNC_KEY": ""})
    assert out.stdout.startswith("Opus · $1.23 session")
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "opensync_lite.statusline" in imported
    assert not imported & {"flask", "peewee", "click", "marshmallow", "opensync_lite.app"}
    # The full CLI has the command too.
    assert run(world, status_json(time.time()), CLI + ["statusline"]).startswith("Opus · $1.23 session")


def test_setup_writes_the_status_line_and_keeps_the_rest(world, tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    before = {"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo done"}]}]},
              "statusLine": {"type": "command", "command": "old-thing"}}
    (home / ".claude" / "settings.json").write_text(json.dumps(before))
    out = subprocess.run(SCRIPTED + ["--setup", "--url", "http://127.0.0.1:9999", "--key", "osk_test"],
                         capture_output=True, text=True, timeout=20, env={**world["env"], "HOME": str(home)})
    assert out.returncode == 0, out.stderr
    after = json.loads((home / ".claude" / "settings.json").read_text())
    assert {k: v for k, v in after.items() if k != "statusLine"} == {k: v for k, v in before.items() if k != "statusLine"}
    assert after["statusLine"]["type"] == "command" and after["statusLine"]["command"].endswith("statusline.py")
    saved = home / ".config" / "opensync-lite" / "statusline.json"
    assert json.loads(saved.read_text()) == {"url": "http://127.0.0.1:9999", "key": "osk_test"}
    assert saved.stat().st_mode & 0o077 == 0
    # The command it wrote runs, with the saved server (down here: still a line, at once).
    started = time.perf_counter()
    line = subprocess.run(after["statusLine"]["command"], shell=True, input=json.dumps(status_json(time.time())),
                          capture_output=True, text=True, timeout=10, env={"PATH": os.environ["PATH"], "HOME": str(home)})
    assert line.stdout.startswith("Opus · $1.23 session") and time.perf_counter() - started < 5
    (home / ".claude" / "settings.json").write_text("{broken")
    refused = subprocess.run(SCRIPTED + ["--setup"], capture_output=True, text=True, timeout=20,
                             env={**world["env"], "HOME": str(home)})
    assert refused.returncode == 1 and "not valid JSON" in refused.stderr
    assert (home / ".claude" / "settings.json").read_text() == "{broken"


def test_a_version_7_database_gets_the_snapshots_table(tmp_path):
    path = str(tmp_path / "old.db")
    create_app({"OPENSYNC_DB": path, "TESTING": True})
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE quota_snapshots")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    create_app({"OPENSYNC_DB": path, "TESTING": True})
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert conn.execute("SELECT COUNT(*) FROM quota_snapshots").fetchone() == (0,)
    conn.close()
