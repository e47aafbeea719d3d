"""The real Claude Code CLI (2.1.332, pinned in tests/package.json) run headless against the
scripted stand-in for the Messages API (tests/anthropic_standin.py): these prove the harness that
the end-to-end tests build on. The stand-in's usage is the only number they know in advance:
Claude Code's own JSON result, transcript, hook input and OpenTelemetry export must agree with it.
They also check the recorded corpus in tests/data/claude-code-2.1 against itself and ccusage 20.
Nothing here needs opensync_lite."""

import json
import re
import shutil
import subprocess

import pytest

from anthropic_standin import MAIN_MODEL, TOKEN_KINDS, OtlpReceiver, StandIn, message_text, tool_then_answer
from claude_cli import (CASES, CLAUDE_VERSION, CORPUS, EMOJI_PROMPT, NODE_MODULES, OTLP_KEY, PROMPT, PROMPT_MARK,
                        RESUME_PROMPT, SUBAGENT_PROMPT, ccusage20, claude, claude_binary, hook_inputs, otel_env,
                        otlp, record_hooks, resume_script, run_claude, standin, subagent_script,
                        wait_for_telemetry)

__all__ = ["claude", "otlp", "standin"]  # fixtures from claude_cli, used below

# Claude Code 2.1.332's own list prices for claude-sonnet-4-5, USD per token: a 5-minute cache
# write is 1.25 x input, a 1-hour one 2 x input.
SONNET_45 = {"input_tokens": 3e-6, "output_tokens": 15e-6, "ephemeral_5m_input_tokens": 3.75e-6,
             "ephemeral_1h_input_tokens": 6e-6, "cache_read_input_tokens": 0.3e-6}
MODEL_USAGE_KEYS = {"input_tokens": "inputTokens", "output_tokens": "outputTokens",
                    "cache_creation_input_tokens": "cacheCreationInputTokens",
                    "cache_read_input_tokens": "cacheReadInputTokens",
                    "ephemeral_5m_input_tokens": "cacheCreationEphemeral5mInputTokens",
                    "ephemeral_1h_input_tokens": "cacheCreationEphemeral1hInputTokens"}


def four(usage):
    return {k: usage[k] for k in TOKEN_KINDS}


def split(usage):
    """The 5-minute / 1-hour cache-write split of an API usage (or of a usage_sum())."""
    usage = usage.get("cache_creation", usage)
    return {k: usage[k] for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")}


def price(total):
    """What the stand-in's usage costs at SONNET_45 (the 5m / 1h split priced apart)."""
    return sum(total[k] * p for k, p in SONNET_45.items())


def add(*totals):
    return {k: sum(t[k] for t in totals) for k in totals[0]}


def model_usage(total):
    """A usage_sum() in the result's / cost-state's modelUsage spelling."""
    return {theirs: total[ours] for ours, theirs in MODEL_USAGE_KEYS.items()}


def munged(path):
    """Claude Code's folder name for a project path (every non-alphanumeric becomes '-')."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """One plain run (text + Bash tool_use, then an answer) with OTLP JSON export on."""
    root = tmp_path_factory.mktemp("plain")
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api, OtlpReceiver() as receiver:
        run = run_claude(PROMPT, base_url=api.url, home=root / "home", cwd=root / "project",
                         env=otel_env(receiver.url))
        assert wait_for_telemetry(receiver, api), receiver.exports
    return run, api, receiver


def test_the_pinned_tools_are_installed():
    out = subprocess.run([str(claude_binary()), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == f"{CLAUDE_VERSION} (Claude Code)", out
    out = subprocess.run([*ccusage20(), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "ccusage 20.0.24", out
    # The existing comparison keeps ccusage 17.2.1 as node_modules/.bin/ccusage.
    out = subprocess.run([str(NODE_MODULES / ".bin" / "ccusage"), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "17.2.1", out


def test_the_json_result_is_the_standins_usage(plain):
    run, api, _ = plain
    answered = api.messages()
    assert [(r.kind, r.turn, r.model) for r in answered] == [("main", 0, MAIN_MODEL), ("main", 1, MAIN_MODEL)]
    assert all(r.status == 200 for r in api.requests), api.log(compact=True)  # it asked nothing we cannot answer
    assert all(r.session_id == run.session_id for r in answered)
    total = api.usage_sum("main")
    assert four(run.result["usage"]) == four(total)
    assert split(run.result["usage"]) == split(total)
    assert {k: run.result["modelUsage"][MAIN_MODEL][k] for k in MODEL_USAGE_KEYS.values()} == model_usage(total)
    assert set(run.result["modelUsage"]) == {MAIN_MODEL}
    # Its own cost prices the 1-hour writes at 2 x input, not 1.25 x.
    assert run.result["total_cost_usd"] == pytest.approx(price(total), rel=1e-9)
    assert run.result["modelUsage"][MAIN_MODEL]["costUSD"] == run.result["total_cost_usd"]
    assert run.result["num_turns"] == 2 and run.result["result"] == "The command printed: expected 10 tokens."


def test_the_transcript_names_each_response(plain):
    run, api, _ = plain
    path = run.transcript()
    assert path.relative_to(run.projects).as_posix() == f"{munged(run.cwd)}/{run.session_id}.jsonl"
    assert run.transcripts() == [path]
    lines = run.lines()
    assert {line.get("sessionId") for line in lines} == {run.session_id}
    assert all(line.get("version") == CLAUDE_VERSION for line in lines if "uuid" in line)
    requests = {line["id"]: line for line in lines if line["type"] == "api-request"}
    assistant = [line for line in lines if line["type"] == "assistant"]
    for answer, blocks in zip(api.messages("main"), (["text", "tool_use"], ["text"])):
        mine = [line for line in assistant if line["message"]["id"] == answer.message_id]
        # One line per content block, each repeating the response's full (final) usage.
        assert [line["message"]["content"][0]["type"] for line in mine] == blocks
        assert [line["apiBlockIndex"] for line in mine] == list(range(len(blocks)))
        assert {line["requestId"] for line in mine} == {answer.request_id}
        (ref,) = {line["requestRef"] for line in mine}
        assert requests[ref]["params"]["model"] == MAIN_MODEL  # requestRef is the api-request line's own id
        for line in mine:
            assert four(line["message"]["usage"]) == four(answer.usage)
            assert split(line["message"]["usage"]) == split(answer.usage)
            assert line["message"]["model"] == line["requestedModel"] == MAIN_MODEL
    assert len(assistant) == 3
    (cost,) = [line for line in lines if line["type"] == "cost-state"]
    assert cost["totalCostUSD"] == run.result["total_cost_usd"]
    assert {k: cost["modelUsage"][MAIN_MODEL][k] for k in MODEL_USAGE_KEYS.values()} == model_usage(api.usage_sum())
    assert cost["hasUnknownModelCost"] is False


def test_the_tool_result_goes_back_to_the_model(plain):
    run, api, _ = plain
    _, second = api.messages("main")
    (tool_line,) = [line for line in run.lines()
                    if line["type"] == "assistant" and line["message"]["content"][0]["type"] == "tool_use"]
    tool_use = tool_line["message"]["content"][0]
    assert tool_use["name"] == "Bash" and tool_use["input"]["command"] == "echo expected 10 tokens"
    results = [b for b in second.body["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert [r["tool_use_id"] for r in results] == [tool_use["id"]]
    assert message_text({"content": [results[0]]}).startswith("expected 10 tokens")
    assert results[0]["is_error"] is False
    (user,) = [line for line in run.lines() if line["type"] == "user" and line.get("toolUseResult")]
    assert user["toolUseResult"]["stdout"] == "expected 10 tokens"
    assert user["sourceToolAssistantUUID"] == tool_line["uuid"]


def test_otlp_json_carries_each_request(plain):
    run, api, receiver = plain
    assert {e.path for e in receiver.exports} == {"/v1/logs", "/v1/metrics"}
    assert {e.content_type for e in receiver.exports} == {"application/json"}
    assert {e.headers.get("Authorization") for e in receiver.exports} == {f"Bearer {OTLP_KEY}"}
    records = receiver.log_records()
    assert {r["resource"]["service.name"] for r in records} == {"claude-code"}
    assert {r["resource"]["service.version"] for r in records} == {CLAUDE_VERSION}
    assert {r["scope"] for r in records} == {"com.anthropic.claude_code.events"}
    assert {r["attributes"]["session.id"] for r in records} == {run.session_id}
    events = [r["attributes"] for r in records if r["body"] == "claude_code.api_request"]
    answered = {a.request_id: a for a in api.messages("main")}
    assert sorted(e["request_id"] for e in events) == sorted(answered)
    for event in events:
        usage = answered[event["request_id"]].usage
        assert event["model"] == MAIN_MODEL
        assert (event["input_tokens"], event["output_tokens"], event["cache_read_tokens"],
                event["cache_creation_tokens"]) == (usage["input_tokens"], usage["output_tokens"],
                                                    usage["cache_read_input_tokens"],
                                                    usage["cache_creation_input_tokens"])
        assert (event["cache_creation_5m_tokens"], event["cache_creation_1h_tokens"]) == tuple(split(usage).values())
        assert event["cost_usd_micros"] == round(event["cost_usd"] * 1e6)
    assert sum(e["cost_usd"] for e in events) == pytest.approx(run.result["total_cost_usd"], rel=1e-9)
    (prompt,) = [r["attributes"] for r in records if r["body"] == "claude_code.user_prompt"]
    assert prompt["prompt"] == PROMPT and prompt["prompt_length"] == str(len(PROMPT))
    (result,) = [r["attributes"] for r in records if r["body"] == "claude_code.tool_result"]
    assert result["tool_name"] == "Bash" and result["success"] == "true"
    assert {"claude_code.session.count", "claude_code.cost.usage", "claude_code.token.usage"} <= set(receiver.metric_names())


def test_otlp_protobuf_arrives(tmp_path):
    with StandIn([tool_then_answer(PROMPT_MARK)]) as api, OtlpReceiver() as receiver:
        run = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project",
                         env=otel_env(receiver.url, protocol="http/protobuf"))
        assert wait_for_telemetry(receiver, api), receiver.exports
    assert {(e.path, e.content_type) for e in receiver.exports} == {("/v1/logs", "application/x-protobuf"),
                                                                    ("/v1/metrics", "application/x-protobuf")}
    assert {e.headers.get("Authorization") for e in receiver.exports} == {f"Bearer {OTLP_KEY}"}
    logs = b"".join(e.raw for e in receiver.of("/v1/logs"))
    assert run.session_id.encode() in logs and b"claude_code.api_request" in logs
    assert all(r.request_id.encode() in logs for r in api.messages())


def test_resume_appends_to_the_same_session(tmp_path):
    with StandIn(resume_script()) as api:
        first = run_claude(PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project")
        second = run_claude(RESUME_PROMPT, base_url=api.url, home=first.home, cwd=first.cwd, resume=first.session_id)
    assert second.session_id == first.session_id
    assert second.transcripts() == [first.transcript()]
    answered = api.messages("main")
    assert [r.turn for r in answered] == [0, 1, 2, 3]
    this_run = add(*({k: r.usage[k] for k in TOKEN_KINDS} for r in answered[2:]))
    # The result's usage is this run's alone; its cost and modelUsage are the whole session's.
    assert four(second.result["usage"]) == this_run
    whole = api.usage_sum("main")
    assert second.result["total_cost_usd"] == pytest.approx(price(whole), rel=1e-9)
    assert {k: second.result["modelUsage"][MAIN_MODEL][k] for k in MODEL_USAGE_KEYS.values()} == model_usage(whole)
    # The resumed request carries the first run's conversation, tool result included.
    resumed = answered[2].body["messages"]
    assert [m["role"] for m in resumed] == ["user", "assistant", "user", "assistant", "user"]
    assert message_text(resumed[2]).startswith("expected 10 tokens")
    assert RESUME_PROMPT in message_text(resumed[-1])
    # One cost-state line per run, each the session's running total.
    costs = [line for line in second.lines() if line["type"] == "cost-state"]
    assert [c["totalCostUSD"] for c in costs] == [first.result["total_cost_usd"], second.result["total_cost_usd"]]
    prompts = [line["message"]["content"] for line in second.lines()
               if line["type"] == "user" and isinstance(line["message"]["content"], str)]
    assert prompts == [PROMPT, RESUME_PROMPT]


def test_an_emoji_at_the_80th_utf16_unit_and_the_hook_input(claude, standin, tmp_path):
    units = EMOJI_PROMPT.encode("utf-16-le", "surrogatepass")
    assert 0xD800 <= int.from_bytes(units[158:160], "little") <= 0xDBFF  # unit 80 is a high surrogate
    assert units[:160].decode("utf-16-le", "surrogatepass")[-1] == "\ud83d"  # so a cut at 80 leaves it alone
    record_hooks(tmp_path / "home")
    run = claude(EMOJI_PROMPT)
    first_user = next(line for line in run.lines() if line["type"] == "user")
    assert first_user["message"]["content"] == EMOJI_PROMPT
    assert EMOJI_PROMPT in message_text(standin.messages("main")[0].body["messages"][0])
    hooks = hook_inputs(run.home)
    events = [h["hook_event_name"] for h in hooks]
    assert sorted(events) == sorted(["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop",
                                     "SessionEnd"])
    assert events.index("UserPromptSubmit") < events.index("PreToolUse") < events.index("PostToolUse") < events.index("Stop")
    assert {h["session_id"] for h in hooks} == {run.session_id}
    assert {h["transcript_path"] for h in hooks} == {str(run.transcript())}
    (submit,) = [h for h in hooks if h["hook_event_name"] == "UserPromptSubmit"]
    assert submit["prompt"] == EMOJI_PROMPT
    # PostToolUse carries tool_response (what claude-code-sync should read), never tool_result.
    (post,) = [h for h in hooks if h["hook_event_name"] == "PostToolUse"]
    assert post["tool_name"] == "Bash" and post["tool_input"]["command"] == "echo expected 10 tokens"
    assert post["tool_response"]["stdout"] == "expected 10 tokens" and "tool_result" not in post
    (stop,) = [h for h in hooks if h["hook_event_name"] == "Stop"]
    assert stop["last_assistant_message"] == "The command printed: expected 10 tokens."
    assert four(run.result["usage"]) == four(standin.usage_sum("main"))


def test_a_subagent_writes_its_own_transcript(tmp_path):
    with StandIn(subagent_script()) as api:
        run = run_claude(SUBAGENT_PROMPT, base_url=api.url, home=tmp_path / "home", cwd=tmp_path / "project")
    assert [(r.kind, r.turn) for r in api.messages()] == [("main", 0), ("subagent", 0), ("subagent", 1), ("main", 1)]
    main, sub = api.usage_sum("main"), api.usage_sum("subagent")
    (agent_file,) = [p for p in run.transcripts() if p != run.transcript()]
    assert agent_file.parent == run.transcript().with_suffix("") / "subagents"
    agent_id = agent_file.stem.removeprefix("agent-")
    meta = json.loads(agent_file.with_suffix(".meta.json").read_text())
    assert meta["agentType"] == "general-purpose" and meta["requestShape"] == "foreground"
    lines = run.lines(agent_file)
    assert {line.get("sessionId") for line in lines if "uuid" in line} == {run.session_id}
    assistant = [line for line in lines if line["type"] == "assistant"]
    assert {line["message"]["id"] for line in assistant} == {r.message_id for r in api.messages("subagent")}
    assert all(line["isSidechain"] is True and line["agentId"] == agent_id for line in assistant)
    # The result's usage is the main thread's; its cost and modelUsage include the subagent's.
    assert four(run.result["usage"]) == four(main)
    assert {k: run.result["modelUsage"][MAIN_MODEL][k] for k in MODEL_USAGE_KEYS.values()} == model_usage(add(main, sub))
    assert run.result["total_cost_usd"] == pytest.approx(price(add(main, sub)), rel=1e-9)
    (cost,) = [line for line in run.lines() if line["type"] == "cost-state"]
    assert cost["totalCostUSD"] == run.result["total_cost_usd"]
    assert not [line for line in lines if line["type"] == "cost-state"]  # the parent's holds it all


def _corpus_case(name):
    folder = CORPUS / name
    manifest = json.loads((folder / "run.json").read_text())
    results = [json.loads((folder / f).read_text()) for f in sorted(p.name for p in folder.glob("result*.json"))]
    return folder, manifest, results


def _sum(responses, kind=None):
    out = dict.fromkeys(TOKEN_KINDS, 0)
    for r in responses:
        if kind is None or r["kind"] == kind:
            for k in TOKEN_KINDS:
                out[k] += r["usage"][k]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_corpus_agrees_with_itself(name):
    folder, manifest, results = _corpus_case(name)
    assert manifest["cli"] == CLAUDE_VERSION
    assert name in (CORPUS / "README.md").read_text()
    assert len(results) == len(CASES[name]["prompts"])
    session = results[0]["session_id"]
    main_file = next((folder / "projects").rglob(f"{session}.jsonl"))
    lines = [json.loads(line) for line in main_file.read_text(encoding="utf-8").splitlines()]
    responses = manifest["responses"]
    # Each response once, by message.id: the transcript's usage is the stand-in's.
    seen = {}
    for path in (folder / "projects").rglob("*.jsonl"):
        for line in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
            if line["type"] == "assistant":
                seen.setdefault(line["message"]["id"], four(line["message"]["usage"]))
    assert seen == {r["message_id"]: four(r["usage"]) for r in responses}
    costs = [line for line in lines if line["type"] == "cost-state"]
    assert costs[-1]["totalCostUSD"] == results[-1]["total_cost_usd"]
    mains = [r for r in responses if r["kind"] == "main"]
    if name == "c-resume":
        assert four(results[1]["usage"]) == _sum(mains[2:])
    elif name == "e-subagent-background":
        assert four(results[0]["usage"]) == _sum(mains[-1:])  # only the task notification's turn
    else:
        assert four(results[0]["usage"]) == _sum(mains)
    assert results[-1]["total_cost_usd"] == pytest.approx(sum(
        r["usage"][k] * p if k in r["usage"] else r["usage"]["cache_creation"][k] * p
        for r in responses for k, p in SONNET_45.items()), rel=1e-9)
    otlp_files = sorted((folder / "otlp").iterdir())
    assert {p.suffix for p in otlp_files} == ({".bin"} if CASES[name].get("protocol") == "http/protobuf" else {".json"})
    for p in otlp_files:
        if p.suffix == ".json":
            json.loads(p.read_bytes())
    assert (folder / "hook-inputs.jsonl").exists() == bool(CASES[name].get("hooks"))
    with_ids = {bool(line.get("requestId")) for line in lines if line["type"] == "assistant"}
    assert with_ids == {CASES[name].get("request_id_header", True)}


def test_ccusage20_counts_the_corpus_as_claude_code_does(tmp_path):
    home = tmp_path / "home"
    names = ("a-tool-call", "c-resume", "d-subagent", "g-no-request-id")
    for name in names:
        shutil.copytree(CORPUS / name / "projects", home / ".claude" / "projects", dirs_exist_ok=True)
    out = subprocess.run([*ccusage20(), "session", "--json", "--offline"], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = {s["period"]: s for s in json.loads(out)["session"]}
    for name in names:
        _, _, results = _corpus_case(name)
        own = results[-1]
        mine = theirs[own["session_id"]]
        usage = own["modelUsage"][MAIN_MODEL]
        assert (mine["inputTokens"], mine["outputTokens"], mine["cacheCreationTokens"], mine["cacheReadTokens"]) == (
            usage["inputTokens"], usage["outputTokens"], usage["cacheCreationInputTokens"], usage["cacheReadInputTokens"])
        assert mine["totalCost"] == pytest.approx(own["total_cost_usd"], rel=0.005)
