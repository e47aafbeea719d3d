"""`serve` reads the agents' own files as they change: a transcript line appended while it
runs is in the store within moments, with nothing counted twice."""

import json
import random
import time
import urllib.request
from datetime import datetime, timezone

from claude_history import Writer, write

from conftest import LiveServer

SESSION = "0b5f7d1e-3c2a-4e8b-9d6f-1a2b3c4d5e6f"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def get(server, key, path):
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        return {"status": err.code}


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := condition()):
            return value
        time.sleep(0.05)
    return condition()


def test_serve_watches_claude_codes_transcripts_by_default(tmp_path, db_path):
    home = tmp_path / "home"
    projects = home / ".claude" / "projects" / "-work-demo"
    w = Writer(random.Random(2))
    first = w.user(SESSION, T0, "first prompt", "/work/demo")
    first += w.response(SESSION, T0, "/work/demo", "claude-sonnet-4-5-20250929", [{"type": "text", "text": "Hello."}])
    write(projects / f"{SESSION}.jsonl", first)  # history already there when the server starts
    server = LiveServer(db_path, env={"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")}, args=["--watch"])
    try:
        assert any("Watching" in line and ".claude/projects" in line for line in wait_for(
            lambda: [line for line in server.banner if "Watching" in line] and server.banner))
        key = server.create_key()
        got = wait_for(lambda: (s := get(server, key, f"/api/sessions/get?id={SESSION}")).get("session") and s)
        assert got["session"]["title"] == "first prompt" and len(got["messages"]) == 2
        tokens = got["session"]["totalTokens"]
        # A line appended while it runs: in the store within moments.
        more = w.response(SESSION, T0, "/work/demo", "claude-sonnet-4-5-20250929", [{"type": "text", "text": "More."}])
        started = time.monotonic()
        write(projects / f"{SESSION}.jsonl", more)
        # (The session row and its messages are two reads: wait until both show the line.)
        got = wait_for(lambda: len((s := get(server, key, f"/api/sessions/get?id={SESSION}"))["messages"]) == 3
                       and s["session"]["totalTokens"] != tokens and s)
        took = time.monotonic() - started
        assert got, "the appended line never arrived"
        assert took < 5, took  # 0.2 s on an idle machine; a loaded CI has slack
        usage = more[0]["message"]["usage"]
        time.sleep(0.5)  # another pass may come: nothing may change
        got = get(server, key, f"/api/sessions/get?id={SESSION}")
        assert got["session"]["totalTokens"] == tokens + sum(usage.values()) and len(got["messages"]) == 3  # counted once
    finally:
        server.stop()


def test_no_watch_reads_nothing(tmp_path, db_path):
    home = tmp_path / "home"
    w = Writer(random.Random(3))
    write(home / ".claude" / "projects" / "-p" / f"{SESSION}.jsonl", w.user(SESSION, T0, "hello", "/p"))
    server = LiveServer(db_path, env={"HOME": str(home)}, args=["--no-watch"])
    try:
        key = server.create_key()
        time.sleep(1.5)
        assert get(server, key, "/api/sessions")["sessions"] == []
        assert not any("Watching" in line for line in server.banner)
    finally:
        server.stop()
