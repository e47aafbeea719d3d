"""The real agent, end to end: Claude Code 2.1.332 run headless against the scripted stand-in
for the Messages API writes a real transcript, fires real hooks (the real claude-code-sync's,
installed by its own `setup`) and prints its own usage and cost. Whatever path brings the
session in, it must hold exactly that: the four token kinds equal, the cost within 0.5 %, the
tool's output stored and searchable, the messages in the order of the work, nothing doubled.
The stand-in's usage is the only number these tests know in advance."""

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from anthropic_standin import StandIn, tool_then_answer
from claude_cli import EMOJI_PROMPT, NODE_MODULES, PROMPT, PROMPT_MARK, otel_env, run_claude

from conftest import CLI, LiveServer

KINDS = {"input_tokens": "inputTokens", "output_tokens": "outputTokens",
         "cache_creation_input_tokens": "cacheWriteTokens", "cache_read_input_tokens": "cacheReadTokens"}
TOOL_OUTPUT = "expected 10 tokens"  # what the scripted Bash call echoes


def get(server, key, path):
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := condition()):
            return value
        time.sleep(0.1)
    return condition()


def session_of(server, key, session_id):
    try:
        return get(server, key, f"/api/sessions/get?id={urllib.parse.quote(session_id)}")
    except urllib.error.HTTPError:
        return None


def check_truth(got, result):
    """``got`` (our /api/sessions/get) holds what Claude Code's JSON ``result`` says."""
    session, usage = got["session"], result["usage"]
    assert {ours: session[ours] for ours in KINDS.values()} == {ours: usage[theirs] for theirs, ours in KINDS.items()}
    assert session["cost"] == pytest.approx(result["total_cost_usd"], rel=0.005), session
    assert session["source"] == "claude-code"
    messages = got["messages"]
    assert len({m["externalId"] for m in messages}) == len(messages)
    assert not [m for m in messages if not m["textContent"] and not m["parts"]], "an empty message card"
    # The order of the work: the prompt, the text, the tool call, its result, the answer.
    calls = [(i, p) for i, m in enumerate(messages) for p in m["parts"] if p["type"] == "tool-call"]
    results = [(i, p) for i, m in enumerate(messages) for p in m["parts"] if p["type"] == "tool-result"]
    assert len(calls) == 1 and len(results) == 1, messages
    assert TOOL_OUTPUT in json.dumps(results[0][1]["content"])
    assert messages[0]["role"] == "user" and calls[0][0] <= results[0][0] < len(messages) - 1
    assert messages[-1]["role"] == "assistant" and messages[-1]["textContent"]
    assert session["toolCallCount"] == 1
    return session


def searchable(server, key, session_id):
    hits = get(server, key, "/api/search?q=" + urllib.parse.quote(f'"{TOOL_OUTPUT}"'))["results"]
    return any(h.get("externalId") == session_id or h.get("sessionExternalId") == session_id for h in hits)


@pytest.fixture
def server(tmp_path):
    live = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(tmp_path / "home")}, args=["--watch"])
    yield live
    live.stop()


def test_claude_code_alone_then_import(tmp_path, db_path):
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
        run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project")
    done = subprocess.run([*CLI, "import", "claude-code", str(run.projects), "--db", db_path],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stderr, done.stderr  # today's line types are no problems
    server = LiveServer(db_path)
    try:
        key = server.create_key()
        got = session_of(server, key, run.session_id)
        check_truth(got, run.result)
        assert got["session"]["title"] == PROMPT
        assert searchable(server, key, run.session_id)
        # The session's latest activity is the transcript's, not the time of the import.
        last = max(line["timestamp"] for line in run.lines() if isinstance(line.get("timestamp"), str))
        assert abs(got["session"]["updatedAt"] - _ms(last)) < 1000
    finally:
        server.stop()


def _ms(stamp):
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _plugin(tmp_path, server):
    """claude-code-sync 0.1.15 configured for the live server and installed by its own `setup`."""
    home = tmp_path / "home"
    env = {"PATH": f"{NODE_MODULES / '.bin'}:{os.environ['PATH']}", "HOME": str(home)}
    config = home / ".config" / "claude-code-sync"
    config.mkdir(parents=True, exist_ok=True)
    key = server.create_key()
    (config / "config.json").write_text(json.dumps({"convexUrl": server.url, "apiKey": key, "autoSync": True,
                                                    "syncToolCalls": True}))
    done = subprocess.run(["claude-code-sync", "setup"], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and (home / ".claude" / "settings.json").is_file(), done
    return key, {"PATH": env["PATH"]}


def test_claude_code_with_the_plugins_hooks_beside_the_watcher(tmp_path, server):
    key, env = _plugin(tmp_path, server)
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
        run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project", env=env)

    def settled():
        got = session_of(server, key, run.session_id)
        return got if got and got["session"]["cost"] and got["session"]["toolCallCount"] and len(
            [p for m in got["messages"] for p in m["parts"] if p["type"] == "tool-result"]) else None

    got = wait_for(settled)
    assert got, session_of(server, key, run.session_id)
    time.sleep(1.5)  # the last hooks (Stop, SessionEnd) and a watcher pass more: nothing may change
    got = session_of(server, key, run.session_id)
    check_truth(got, run.result)
    assert got["session"]["title"] == PROMPT
    assert searchable(server, key, run.session_id)
    assert len(get(server, key, "/api/sessions")["sessions"]) == 1


def test_a_prompt_cut_inside_an_emoji_by_the_plugin_loses_nothing(tmp_path, server):
    key, env = _plugin(tmp_path, server)
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
        run = run_claude(EMOJI_PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project", env=env)
    got = wait_for(lambda: (g := session_of(server, key, run.session_id)) and g["session"]["cost"] and g)
    assert got
    time.sleep(1.5)
    got = session_of(server, key, run.session_id)
    check_truth(got, run.result)
    # The plugin's title is the prompt cut inside the emoji; the transcript's whole prompt replaces it.
    assert got["session"]["title"] == " ".join(EMOJI_PROMPT.split())[:100]
    assert any(m["role"] == "user" and m["textContent"] == EMOJI_PROMPT for m in got["messages"])
    assert " 400 " not in server.logs()  # the plugin's requests were all taken


def _telemetry(server, key, protocol="http/json"):
    """The three settings (and the two optional ones) that send Claude Code's own telemetry here."""
    env = otel_env(server.url, protocol=protocol, key=key)
    env["OTEL_LOG_TOOL_DETAILS"] = "1"  # the tool's input in its events (never its output)
    return env


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_claude_code_telemetry_alone_to_a_server_that_cannot_see_the_transcripts(tmp_path, protocol):
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(tmp_path / "elsewhere")})
    try:
        key = server.create_key()
        with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
            run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project",
                             env=_telemetry(server, key, protocol))
        got = wait_for(lambda: (g := session_of(server, key, run.session_id)) and g["session"]["cost"] and g)
        assert got, server.logs()[-3000:]
        time.sleep(1)  # Claude Code flushes at exit; a late export may not change anything
        got = session_of(server, key, run.session_id)
        session, usage = got["session"], run.result["usage"]
        assert {ours: session[ours] for ours in KINDS.values()} == {ours: usage[theirs] for theirs, ours in KINDS.items()}
        assert session["cost"] == pytest.approx(run.result["total_cost_usd"], rel=0.005)
        assert session["source"] == "claude-code" and session["title"] == PROMPT and session["costBasis"] == "recorded"
        messages = got["messages"]
        assert messages[0]["role"] == "user" and messages[0]["textContent"] == PROMPT
        assert messages[-1]["role"] == "assistant" and TOOL_OUTPUT in messages[-1]["textContent"]
        (call,) = [p["content"] for m in messages for p in m["parts"] if p["type"] == "tool-call"]
        assert call["name"] == "Bash" and call["input"]["command"] == f"echo {TOOL_OUTPUT}"
        assert len({m["externalId"] for m in messages}) == len(messages) == session["messageCount"]
        assert session["toolCallCount"] == 1
        assert searchable(server, key, run.session_id)
        assert len(get(server, key, "/api/sessions")["sessions"]) == 1
    finally:
        server.stop()


def test_claude_code_with_the_plugin_the_watcher_and_telemetry_at_once(tmp_path, server):
    """A day's set-up with everything on: one session, Claude Code's own figures, the tool's
    output (from the transcript), each message once."""
    key, env = _plugin(tmp_path, server)
    env.update(_telemetry(server, key))
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
        run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project", env=env)

    def settled():
        got = session_of(server, key, run.session_id)
        return got if got and got["session"]["cost"] and [
            p for m in got["messages"] for p in m["parts"] if p["type"] == "tool-result"] else None

    assert wait_for(settled), session_of(server, key, run.session_id)
    time.sleep(1.5)
    got = session_of(server, key, run.session_id)
    check_truth(got, run.result)
    assert got["session"]["title"] == PROMPT
    assert not [m for m in got["messages"] if m["externalId"].startswith("otel:")]  # the transcript's copy only
    assert searchable(server, key, run.session_id)
    assert len(get(server, key, "/api/sessions")["sessions"]) == 1


def test_claude_code_with_the_plugin_and_telemetry_and_no_transcript(tmp_path):
    """Hooks and telemetry to a server that cannot read the transcript: telemetry's exact
    tokens and cost over the plugin's folded ones, and the plugin's messages once each."""
    server = LiveServer(str(tmp_path / "opensync.db"), env={"HOME": str(tmp_path / "elsewhere")})
    try:
        key, env = _plugin(tmp_path, server)
        env.update(_telemetry(server, key))
        with StandIn([tool_then_answer(PROMPT_MARK)]) as api:
            run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project", env=env)
        got = wait_for(lambda: (g := session_of(server, key, run.session_id)) and g["session"]["cost"] and g)
        assert got, server.logs()[-3000:]
        time.sleep(1.5)
        got = session_of(server, key, run.session_id)
        session, usage = got["session"], run.result["usage"]
        assert {ours: session[ours] for ours in KINDS.values()} == {ours: usage[theirs] for theirs, ours in KINDS.items()}
        assert session["cost"] == pytest.approx(run.result["total_cost_usd"], rel=0.005)
        messages = got["messages"]
        assert not [m for m in messages if m["externalId"].startswith("otel:")]  # the plugin's copy stands
        assert [m["textContent"] for m in messages if m["role"] == "user"] == [PROMPT]
        assert len({m["externalId"] for m in messages}) == len(messages) == session["messageCount"]
        assert len(get(server, key, "/api/sessions")["sessions"]) == 1
    finally:
        server.stop()
