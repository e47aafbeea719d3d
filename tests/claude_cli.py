"""Drive the real Claude Code CLI (pinned in tests/package.json, installed by `npm ci --prefix
tests`) headless against the stand-in Messages API of anthropic_standin.py: a fresh HOME, a
project folder, no network.

    with StandIn([tool_then_answer(PROMPT_MARK)]) as api, OtlpReceiver() as otlp:
        run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project",
                         env=otel_env(otlp.url))
    assert run.result["usage"]["output_tokens"] == api.usage_sum("main")["output_tokens"]
    run.session_id, run.transcript(), run.lines(), otlp.log_records()

``resume=run.session_id`` runs another turn of the same session (script it: ``resume_script()``);
``record_hooks(home)`` before a run saves every hook's input for ``hook_inputs(home)``.

Fixtures (import them into a test module): ``standin`` (the usual script: a text block plus a
Bash tool_use, then a final answer, for any prompt containing ``PROMPT_MARK``), ``otlp`` (an
OTLP/HTTP receiver) and ``claude`` (``run_claude`` bound to the stand-in, a fresh HOME and project
folder under tmp_path).
"""

import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from anthropic_standin import (MAIN_MODEL, Conversation, OtlpReceiver, StandIn, Turn, agent, bash, text,
                               tool_then_answer)

TESTS = Path(__file__).parent
NODE_MODULES = TESTS / "node_modules"
CLAUDE_VERSION = "2.1.332"
API_KEY = "sk-ant-test-0000000000000000000000000000000000000000"
OTLP_KEY = "osk_test"
# The phrase the default script answers to: put it in a prompt to get the scripted tool call.
PROMPT_MARK = "expected token count"
PROMPT = f"Please run a shell command that echoes the {PROMPT_MARK}"


def _emoji_prompt():
    head = f"Echo the {PROMPT_MARK} for this title test, "
    head += "x" * (79 - len(head))
    return head + "\U0001F680 and a few words after the rocket"


# A prompt whose 80th UTF-16 unit is the high surrogate of an emoji: cut at 80 units (as
# claude-code-sync cuts titles) it ends in a lone surrogate.
EMOJI_PROMPT = _emoji_prompt()
RESUME_PROMPT = "Now run it once more"
# The usage the scripted subagent's answers report (told apart from the main thread's USAGE).
SUB_USAGE = {
    "input_tokens": 3,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 2000,
    "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
    "output_tokens": 9,
}
SUB_MARK = "subagent token count"

# The platform package's own binary first: it works even where npm skipped the postinstall
# script that copies it over bin/claude.exe (then a shell stub that only prints an error).
_CANDIDATES = (NODE_MODULES / "@anthropic-ai" / "claude-code-linux-x64" / "claude",
               NODE_MODULES / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe")
MISSING = (f"the Claude Code CLI {CLAUDE_VERSION} is not installed in {NODE_MODULES}: run `make install-test` "
           "(npm ci --prefix tests), which installs @anthropic-ai/claude-code and its linux-x64 binary")


def resume_script():
    """Two turns of one session: a tool call and an answer, then (``--resume``, RESUME_PROMPT)
    another tool call and an answer."""
    return [Conversation(PROMPT_MARK, [
        Turn([text("I will run the command."), bash("echo expected 10 tokens")]),
        Turn([text("The command printed: expected 10 tokens.")]),
        Turn([text("Running it once more."), bash("echo resumed 20 tokens")]),
        Turn([text("The second command printed: resumed 20 tokens.")]),
    ])]


def subagent_script(background=False):
    """The main thread hands the work to a general-purpose subagent (an Agent tool_use), whose own
    requests (first user message: the agent's prompt) get a Bash tool_use and an answer with
    SUB_USAGE. In the background (the CLI's default), the main thread answers the launch, then
    the task notification."""
    launch = agent(f"Run the shell command that echoes the {SUB_MARK} and report what it printed.",
                   description="Echo the count", background=background)
    main_turns = [Turn([text("I will hand this to a subagent."), launch])]
    if background:
        main_turns.append(Turn([text("The subagent is working on it in the background.")]))
    main_turns.append(Turn([text("The subagent reported: subagent 5 tokens.")]))
    return [
        Conversation(SUB_MARK, [Turn([text("Running it."), bash("echo subagent 5 tokens")], usage=copy.deepcopy(SUB_USAGE)),
                                Turn([text("It printed: subagent 5 tokens.")], usage=copy.deepcopy(SUB_USAGE))],
                     name="subagent"),
        Conversation(PROMPT_MARK, main_turns),
    ]


HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStart",
               "SubagentStop", "PreCompact", "Notification", "SessionEnd")


def write_hooks(home, command, events=HOOK_EVENTS):
    """Add ``command`` as a hook for ``events`` to HOME/.claude/settings.json (kept otherwise)."""
    path = Path(home) / ".claude" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(path.read_text()) if path.exists() else {}
    hooks = settings.setdefault("hooks", {})
    for event in events:
        entry = {"hooks": [{"type": "command", "command": command}]}
        if event in ("PreToolUse", "PostToolUse"):
            entry["matcher"] = "*"
        hooks.setdefault(event, []).append(entry)
    path.write_text(json.dumps(settings, indent=2))
    return path


def record_hooks(home, events=HOOK_EVENTS):
    """Install a hook for every event that appends its JSON input to HOME/hook-inputs.jsonl; read
    them back with ``hook_inputs(home)``."""
    log = shlex.quote(str(Path(home) / "hook-inputs.jsonl"))
    write_hooks(home, f"cat >> {log}; echo >> {log}", events)
    return Path(home) / "hook-inputs.jsonl"


def hook_inputs(home):
    path = Path(home) / "hook-inputs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def claude_binary():
    """The pinned CLI's native binary; a test fails (never skips) with MISSING without it."""
    for path in _CANDIDATES:
        if path.is_file() and os.access(path, os.X_OK) and path.stat().st_size > 1_000_000:
            return path
    pytest.fail(MISSING)


def ccusage20():
    """The command that runs ccusage 20.0.24 (installed as the npm alias ``ccusage20``; plain
    node_modules/.bin/ccusage stays 17.2.1)."""
    script = NODE_MODULES / "ccusage20" / "src" / "cli.js"
    if not script.is_file() or not (NODE_MODULES / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage").is_file():
        pytest.fail(f"ccusage 20.0.24 is not installed in {NODE_MODULES}: run `make install-test`")
    return [shutil.which("node") or "node", str(script)]


def base_env(home, base_url, extra=None):
    """The environment a run gets: nothing from the caller's but PATH and the locale, so no
    real credentials, config dir or proxy leak in; no auto-update, no non-essential traffic."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
        "SHELL": "/bin/bash",
        # Claude Code keeps background tasks' output under $TMPDIR/claude-<uid>/: one per HOME.
        "TMPDIR": str(Path(home) / "tmp"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


def otel_env(endpoint, protocol="http/json", key=OTLP_KEY, interval_ms=500):
    """The variables that make Claude Code export its OpenTelemetry logs and metrics to
    ``endpoint`` (an OTLP/HTTP base URL), flushing every ``interval_ms``."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}",
        "OTEL_LOG_USER_PROMPTS": "1",
        "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
        "OTEL_LOGS_EXPORT_INTERVAL": str(interval_ms),
    }


def wait_for_telemetry(otlp, api, seconds=10):
    """Wait until ``otlp`` holds logs and metrics and (for JSON) one ``claude_code.api_request``
    per message request ``api`` answered. Claude Code flushes before it exits: this is a guard."""
    def done(receiver):
        if not {"/v1/logs", "/v1/metrics"} <= {e.path for e in receiver.exports}:
            return False
        if any(e.content_type != "application/json" for e in receiver.exports):
            return True
        events = [r for r in receiver.log_records() if r["body"] == "claude_code.api_request"]
        return len(events) >= len(api.messages())

    return otlp.wait_for(done, seconds)


@dataclass
class ClaudeRun:
    """One `claude -p` run: its parsed JSON result and where it wrote."""

    command: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    home: Path
    cwd: Path
    result: dict = field(default=None)

    @property
    def session_id(self):
        return self.result["session_id"]

    @property
    def projects(self):
        return self.home / ".claude" / "projects"

    def transcripts(self):
        """Every transcript file under HOME/.claude/projects (subagents' too), sorted."""
        return sorted(self.projects.rglob("*.jsonl"))

    def transcript(self, session_id=None):
        """The main transcript of ``session_id`` (this run's by default)."""
        name = f"{session_id or self.session_id}.jsonl"
        found = [p for p in self.transcripts() if p.name == name]
        assert len(found) == 1, f"no single {name} under {self.projects}: {self.transcripts()}"
        return found[0]

    def lines(self, path=None):
        """The JSON lines of a transcript (the main one by default)."""
        with open(path or self.transcript(), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def run_claude(prompt, *, base_url, home, cwd, resume=None, env=None, args=(), model=MAIN_MODEL,
               allowed_tools="Bash", output_format="json", timeout=120, check=True):
    """Run ``claude -p PROMPT --allowedTools Bash --output-format json`` (``--resume ID`` for
    another turn of a session) with HOME=home in cwd, against the stand-in at ``base_url``.
    ``env``: extra variables (OTEL, hooks). Returns a ClaudeRun; with ``check`` it asserts the
    CLI exited 0 with a successful JSON result."""
    home, cwd = Path(home), Path(cwd)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    command = [str(claude_binary()), "-p", prompt, "--output-format", output_format]
    if allowed_tools:
        command += ["--allowedTools", allowed_tools]
    if model:
        command += ["--model", model]
    if resume:
        command += ["--resume", resume]
    command += list(args)
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=base_env(home, base_url, env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    run = ClaudeRun(command, done.returncode, done.stdout, done.stderr, time.monotonic() - started, home, cwd)
    if output_format == "json":
        try:
            run.result = json.loads(done.stdout)
        except ValueError:
            run.result = None
    if check:
        assert done.returncode == 0 and run.result and not run.result.get("is_error"), (
            f"claude exited {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}")
    return run


@pytest.fixture
def standin():
    """The Messages API stand-in with the usual script (text + Bash tool_use, then an answer)."""
    with StandIn([tool_then_answer(PROMPT_MARK)]) as server:
        yield server


@pytest.fixture
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def claude(standin, tmp_path):
    """``run_claude`` bound to the stand-in, HOME=tmp_path/home and cwd=tmp_path/project."""
    def run(prompt=PROMPT, **kwargs):
        kwargs.setdefault("base_url", standin.url)
        kwargs.setdefault("home", tmp_path / "home")
        kwargs.setdefault("cwd", tmp_path / "project")
        return run_claude(prompt, **kwargs)

    return run


# The recorded corpus, tests/data/claude-code-2.1 (README.md there says what each case shows).
# Re-record with: PYTHONPATH=. .venv/bin/python tests/claude_cli.py record [DEST]
CORPUS = TESTS / "data" / "claude-code-2.1"
SUBAGENT_PROMPT = f"Please use a subagent to echo the {PROMPT_MARK}"
CASES = {
    "a-tool-call": dict(script=lambda: [tool_then_answer(PROMPT_MARK)], prompts=[PROMPT]),
    "b-emoji-prompt": dict(script=lambda: [tool_then_answer(PROMPT_MARK)], prompts=[EMOJI_PROMPT], hooks=True),
    "c-resume": dict(script=resume_script, prompts=[PROMPT, RESUME_PROMPT], hooks=True),
    "d-subagent": dict(script=subagent_script, prompts=[SUBAGENT_PROMPT], hooks=True),
    "e-subagent-background": dict(script=lambda: subagent_script(background=True), prompts=[SUBAGENT_PROMPT],
                                  hooks=True),
    "f-otlp-protobuf": dict(script=lambda: [tool_then_answer(PROMPT_MARK)], prompts=[PROMPT],
                            protocol="http/protobuf"),
    # As (a) behind a gateway that drops the API's request-id header: no requestId in the lines.
    "g-no-request-id": dict(script=lambda: [tool_then_answer(PROMPT_MARK)], prompts=[PROMPT], request_id_header=False),
}


def run_case(name, root):
    """Run one corpus case under ``root`` (home/ and project/ there), telemetry on; returns
    (runs, stand-in, OTLP receiver) with both servers stopped."""
    spec = CASES[name]
    home, cwd = Path(root) / "home", Path(root) / "project"
    if spec.get("hooks"):
        home.mkdir(parents=True, exist_ok=True)
        record_hooks(home)
    runs = []
    with StandIn(spec["script"](), request_id_header=spec.get("request_id_header", True)) as api, \
            OtlpReceiver() as otlp:
        for prompt in spec["prompts"]:
            runs.append(run_claude(prompt, base_url=api.url, home=home, cwd=cwd,
                                   resume=runs[0].session_id if runs else None,
                                   env=otel_env(otlp.url, spec.get("protocol", "http/json"))))
            wait_for_telemetry(otlp, api)
            time.sleep(0.2)
    return runs, api, otlp


def record_case(name, dest):
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=f"claude-corpus-{name}-"))
    runs, api, otlp = run_case(name, root)
    out = Path(dest) / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copytree(runs[0].projects, out / "projects")
    for i, run in enumerate(runs, 1):
        (out / (f"result-{i}.json" if len(runs) > 1 else "result.json")).write_text(run.stdout)
    (out / "requests.json").write_text(json.dumps(api.log(compact=True), indent=1, ensure_ascii=False) + "\n")
    (out / "otlp").mkdir()
    for i, export in enumerate(otlp.exports, 1):
        suffix = "json" if export.content_type == "application/json" else "bin"
        (out / "otlp" / f"{i:02d}-{export.path.rsplit('/', 1)[1]}.{suffix}").write_bytes(export.raw)
    if hook_inputs(runs[0].home):
        shutil.copy(runs[0].home / "hook-inputs.jsonl", out / "hook-inputs.jsonl")
    env = base_env(runs[0].home, api.url, otel_env(otlp.url, CASES[name].get("protocol", "http/json")))
    manifest = {
        "cli": CLAUDE_VERSION,
        "home": str(runs[0].home),
        "cwd": str(runs[0].cwd),
        "env": {k: ("sk-ant-test-…" if k == "ANTHROPIC_API_KEY" else v) for k, v in env.items() if k != "PATH"},
        "hooks": str(runs[0].home / ".claude" / "settings.json") if CASES[name].get("hooks") else None,
        "runs": [{"command": ["claude", *run.command[1:]], "seconds": round(run.seconds, 2), "session_id": run.session_id}
                 for run in runs],
        "responses": [{k: r[k] for k in ("kind", "turn", "model", "message_id", "request_id", "usage")}
                      for r in api.log() if r["message_id"]],
        "otlp": [{"path": e.path, "content_type": e.content_type, "authorization": e.headers.get("Authorization"),
                  "bytes": len(e.raw)} for e in otlp.exports],
    }
    (out / "run.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    return manifest


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "record":
        sys.exit("usage: claude_cli.py record [DEST] [CASE ...]")
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else CORPUS
    for case in sys.argv[3:] or CASES:
        manifest = record_case(case, dest)
        print(case, [r["seconds"] for r in manifest["runs"]], "s")
