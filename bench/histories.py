"""Generated agent histories, in each agent's own layout under a HOME (the folders the agent
itself, its importer and ccusage look in by default), for the reader and watcher benchmarks.
Each generator writes ``n`` sessions under ``home`` and returns the folder its importer reads.
The layouts follow real captures of the pinned CLIs (the tests' runs): line kinds, field names
and the order they come in; the texts are filler."""

import json
import uuid
from datetime import datetime, timedelta, timezone

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def stamp(t):
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_lines(path, lines):
    """Compact, as the CLIs write it (ccusage 20 looks for `"type":"assistant"` before it parses a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))


def session_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def claude_code(home, n, rng):
    """Claude Code (~/.claude/projects/<cwd>/<uuid>.jsonl): one line per content block, tool
    results as user lines, the response's usage on each of its lines."""
    for s in range(n):
        sid, cwd, t = f"s{s:06d}", f"/home/dev/p{s % 20}", START + timedelta(minutes=s)
        lines = []
        for turn in range(rng.randint(10, 20)):
            t += timedelta(seconds=30)
            lines.append({"type": "user", "sessionId": sid, "uuid": f"{sid}u{turn}", "timestamp": stamp(t), "cwd": cwd,
                          "message": {"role": "user", "content": f"prompt {turn} " + "word " * rng.randint(5, 40)}})
            usage = {"input_tokens": rng.randint(1, 400), "output_tokens": rng.randint(5, 3000),
                     "cache_creation_input_tokens": rng.randint(0, 20000), "cache_read_input_tokens": rng.randint(0, 90000)}
            call = f"{sid}toolu{turn}"
            for i, block in enumerate([{"type": "text", "text": "answer " * rng.randint(5, 80)},
                                       {"type": "tool_use", "id": call, "name": "Read", "input": {"file_path": "/x.py"}}]):
                lines.append({"type": "assistant", "sessionId": sid, "uuid": f"{sid}a{turn}.{i}", "timestamp": stamp(t),
                              "cwd": cwd, "requestId": f"{sid}req{turn}",
                              "message": {"id": f"{sid}msg{turn}", "role": "assistant", "model": "claude-sonnet-4-20250514",
                                          "content": [block], "usage": dict(usage)}})
            lines.append({"type": "user", "sessionId": sid, "uuid": f"{sid}r{turn}", "timestamp": stamp(t), "cwd": cwd,
                          "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call,
                                                                   "content": "line\n" * rng.randint(1, 50)}]}})
        write_lines(home / ".claude" / "projects" / f"-home-dev-p{s % 20}" / f"{sid}.jsonl", lines)
    return home / ".claude" / "projects"


def pi(home, n, rng):
    """pi (~/.pi/agent/sessions/--<cwd>--/<ts>_<uuid>.jsonl): a session header, then message
    entries (user, assistant with usage and tool calls, toolResult)."""
    for s in range(n):
        sid, t = session_uuid(rng), START + timedelta(minutes=s)
        lines = [{"type": "session", "version": 3, "id": sid, "timestamp": stamp(t), "cwd": f"/home/dev/p{s % 20}"}]
        parent = None
        for turn in range(rng.randint(7, 13)):
            t += timedelta(seconds=30)
            call = f"{sid}c{turn}"
            entries = [
                {"role": "user", "content": [{"type": "text", "text": "prompt " * rng.randint(5, 40)}], "timestamp": 0},
                {"role": "assistant", "model": "claude-sonnet-4-5", "provider": "anthropic", "api": "anthropic-messages",
                 "responseId": f"{sid}r{turn}", "stopReason": "toolUse",
                 "content": [{"type": "text", "text": "answer " * rng.randint(5, 80)},
                             {"type": "toolCall", "id": call, "name": "read", "arguments": {"path": "x.py"}}],
                 "usage": {"input": rng.randint(1, 400), "output": rng.randint(5, 3000), "cacheRead": rng.randint(0, 9000),
                           "cacheWrite": rng.randint(0, 2000), "totalTokens": 0, "cost": {"total": 0.01}}},
                {"role": "toolResult", "toolCallId": call, "toolName": "read",
                 "content": [{"type": "text", "text": "line\n" * rng.randint(1, 50)}], "isError": False}]
            for kind, message in zip("uat", entries):
                entry_id = f"{sid[:8]}{turn:03d}{kind}"
                message["timestamp"] = int(t.timestamp() * 1000)
                lines.append({"type": "message", "id": entry_id, "parentId": parent, "timestamp": stamp(t), "message": message})
                parent = entry_id
        name = f"{stamp(START + timedelta(minutes=s)).replace(':', '-').replace('.', '-')}_{sid}.jsonl"
        write_lines(home / ".pi" / "agent" / "sessions" / f"--home-dev-p{s % 20}--" / name, lines)
    return home / ".pi" / "agent" / "sessions"


CODEX_INSTRUCTIONS = "You are a coding agent running in the Codex CLI. " * 40  # session_meta carries them (~2 KB)


def codex(home, n, rng):
    """Codex 0.171 (~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl): session_meta, then
    per turn a turn_context (the model), the user's message, reasoning, a function call, its
    token_usage_record and token_count, the output, the answer with its usage, task_complete."""
    for s in range(n):
        sid, t = session_uuid(rng), START + timedelta(minutes=s)
        cwd = f"/home/dev/p{s % 20}"
        lines = [{"timestamp": stamp(t), "type": "session_meta", "payload": {
            "session_id": sid, "id": sid, "timestamp": stamp(t), "cwd": cwd, "originator": "codex_exec",
            "cli_version": "0.171.0", "source": "exec", "model_provider": "openai",
            "base_instructions": {"text": CODEX_INSTRUCTIONS}, "git": {"branch": "main"}}}]
        total = dict.fromkeys(("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
                               "reasoning_output_tokens", "total_tokens"), 0)

        def used(turn, step):
            usage = {"input_tokens": rng.randint(1000, 30000), "output_tokens": rng.randint(5, 3000),
                     "reasoning_output_tokens": 0, "cache_write_input_tokens": 0}
            usage["cached_input_tokens"] = rng.randint(0, usage["input_tokens"])
            usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
            for k in total:
                total[k] += usage[k]
            ids = {"thread_id": sid, "turn_id": f"{sid}-t{turn}", "session_id": sid}
            return [{"timestamp": stamp(t), "type": "token_usage_record", "payload": {
                        **ids, "response_id": f"resp_{sid[:8]}{turn}{step}", "usage": usage, "thread_token_usage": dict(total)}},
                    {"timestamp": stamp(t), "type": "event_msg", "payload": {"type": "token_count", "info": {
                        "total_token_usage": dict(total), "last_token_usage": usage, "model_context_window": 258400}}}]

        for turn in range(rng.randint(5, 10)):
            t += timedelta(seconds=30)
            call = f"call_{sid[:8]}{turn}"
            lines += [
                {"timestamp": stamp(t), "type": "event_msg", "payload": {"type": "task_started", "turn_id": f"{sid}-t{turn}"}},
                {"timestamp": stamp(t), "type": "turn_context", "payload": {
                    "turn_id": f"{sid}-t{turn}", "cwd": cwd, "approval_policy": "never", "model": "gpt-5-codex"}},
                {"timestamp": stamp(t), "type": "response_item", "payload": {
                    "type": "message", "id": f"msg_{sid[:8]}{turn}u", "role": "user",
                    "content": [{"type": "input_text", "text": "prompt " * rng.randint(5, 40)}]}},
                {"timestamp": stamp(t), "type": "response_item", "payload": {
                    "type": "reasoning", "id": f"re_{sid[:8]}{turn}", "content": None, "encrypted_content": None,
                    "summary": [{"type": "summary_text", "text": "thinking " * rng.randint(3, 20)}]}},
                {"timestamp": stamp(t), "type": "response_item", "payload": {
                    "type": "function_call", "status": "completed", "id": f"fu_{sid[:8]}{turn}", "name": "exec_command",
                    "arguments": json.dumps({"cmd": "cat x.py"}), "call_id": call}},
                *used(turn, "a"),
                {"timestamp": stamp(t), "type": "response_item", "payload": {
                    "type": "function_call_output", "id": f"fco_{sid[:8]}{turn}", "call_id": call,
                    "output": "line\n" * rng.randint(1, 50)}},
                {"timestamp": stamp(t), "type": "response_item", "payload": {
                    "type": "message", "status": "completed", "id": f"me_{sid[:8]}{turn}", "role": "assistant",
                    "content": [{"type": "output_text", "text": "answer " * rng.randint(5, 80), "annotations": []}]}},
                *used(turn, "b"),
                {"timestamp": stamp(t), "type": "event_msg", "payload": {"type": "task_complete", "turn_id": f"{sid}-t{turn}"}},
            ]
        day = START + timedelta(minutes=s)
        name = f"rollout-{day.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl"
        write_lines(home / ".codex" / "sessions" / day.strftime("%Y/%m/%d") / name, lines)
    return home / ".codex" / "sessions"


def gemini(home, n, rng):
    """Gemini CLI 0.61 (~/.gemini/tmp/<project>/chats/session-<ts>-<id8>.jsonl, an append log):
    the metadata record, the user's message, the answer written bare then again with its
    toolCalls, the functionResponse as a user record, the final answer, $set lastUpdated between."""
    projects = {}
    for s in range(n):
        sid, t = session_uuid(rng), START + timedelta(minutes=s)
        project, root = f"p{s % 20}", f"/home/dev/p{s % 20}"
        projects[root] = project
        lines = [{"sessionId": sid, "projectHash": f"{s % 20:064x}", "startTime": stamp(t), "lastUpdated": stamp(t),
                  "kind": "main"}]
        for turn in range(rng.randint(5, 10)):
            t += timedelta(seconds=30)
            call = f"run_shell_command_{sid[:8]}_{turn}"
            tokens = {"input": rng.randint(1000, 30000), "output": rng.randint(5, 3000), "thoughts": rng.randint(0, 500),
                      "tool": 0}
            tokens["cached"] = rng.randint(0, tokens["input"])
            tokens["total"] = tokens["input"] + tokens["output"] + tokens["thoughts"]
            answer = {"id": f"{sid[:8]}-{turn}-a", "timestamp": stamp(t), "type": "gemini", "content": "",
                      "thoughts": [{"subject": "", "description": "thinking " * rng.randint(3, 20), "timestamp": stamp(t)}],
                      "tokens": tokens, "model": "gemini-2.5-pro"}
            result = [{"functionResponse": {"id": call, "name": "run_shell_command",
                                            "response": {"output": "line\n" * rng.randint(1, 50)}}}]
            final = {"input": tokens["input"] + 200, "output": rng.randint(5, 800), "cached": tokens["input"], "thoughts": 0,
                     "tool": 0}
            final["total"] = final["input"] + final["output"]
            lines += [
                {"id": f"{sid[:8]}-{turn}-u", "timestamp": stamp(t), "type": "user",
                 "content": [{"text": "prompt " * rng.randint(5, 40)}]},
                {"$set": {"lastUpdated": stamp(t)}},
                answer,
                {"$set": {"lastUpdated": stamp(t)}},
                {**answer, "toolCalls": [{"id": call, "name": "run_shell_command", "args": {"command": "cat x.py"},
                                          "result": result, "status": "success", "timestamp": stamp(t)}]},
                {"id": f"{sid[:8]}-{turn}-r", "timestamp": stamp(t), "type": "user", "content": result},
                {"$set": {"lastUpdated": stamp(t)}},
                {"id": f"{sid[:8]}-{turn}-f", "timestamp": stamp(t), "type": "gemini",
                 "content": "answer " * rng.randint(5, 80), "thoughts": [], "tokens": final, "model": "gemini-2.5-pro"},
                {"$set": {"lastUpdated": stamp(t)}},
            ]
        chats = home / ".gemini" / "tmp" / project / "chats"
        day = START + timedelta(minutes=s)
        write_lines(chats / f"session-{day.strftime('%Y-%m-%dT%H-%M')}-{sid[:8]}.jsonl", lines)
        (chats.parent / ".project_root").write_text(root)
    (home / ".gemini" / "projects.json").write_text(json.dumps({"projects": projects}, indent=2))
    return home / ".gemini" / "tmp"


def copilot(home, n, rng):
    """Copilot CLI 1.0 (~/.copilot/session-state/<uuid>/events.jsonl, an append log of {type,
    data, id, timestamp, parentId}): session.start, then per turn the user's message, a
    usage_record before each answer it produced (by apiCallId), the answer with its toolRequests,
    the tool's execution_start and _complete, the final answer."""
    for s in range(n):
        sid, t = session_uuid(rng), START + timedelta(minutes=s)
        events, parent = [], None

        def event(kind, data):
            nonlocal parent
            entry_id = f"{sid[:8]}-{len(events):05d}"
            events.append({"type": kind, "data": data, "id": entry_id, "timestamp": stamp(t), "parentId": parent})
            parent = entry_id

        def usage(call):
            total = rng.randint(1000, 30000)
            read = rng.randint(0, total)
            event("session.usage_record", {"usage": {
                "model": "claude-sonnet-4.5", "inputTokens": total, "outputTokens": rng.randint(5, 3000),
                "cacheReadTokens": read, "cacheWriteTokens": rng.randint(0, total - read), "cost": 0.0,
                "initiator": "user", "modelProvider": "anthropic", "providerType": "anthropic", "apiCallId": call,
                "accounting": {"sourceSessionId": sid, "sequence": len(events), "usageId": call}}})

        event("session.start", {"sessionId": sid, "version": 1, "producer": "copilot-agent", "copilotVersion": "1.0.102",
                                "startTime": stamp(t), "selectedModel": "claude-sonnet-4.5",
                                "context": {"cwd": f"/home/dev/p{s % 20}"}})
        for turn in range(rng.randint(5, 10)):
            t += timedelta(seconds=30)
            prompt, tool = "prompt " * rng.randint(5, 40), f"toolu_{sid[:8]}{turn}"
            calls = (f"msg_{sid[:8]}{turn}a", f"msg_{sid[:8]}{turn}b")
            event("user.message", {"content": prompt, "messageId": f"{sid[:8]}u{turn}", "turnId": str(turn),
                                   "transformedContent": f"<current_datetime>{stamp(t)}</current_datetime>\n\n{prompt}"})
            event("assistant.turn_start", {"turnId": str(turn)})
            usage(calls[0])
            event("assistant.message", {"messageId": f"{sid[:8]}a{turn}", "model": "claude-sonnet-4.5",
                                        "content": "I will read it.", "toolRequests": [{
                                            "toolCallId": tool, "name": "bash", "arguments": {"command": "cat x.py"},
                                            "type": "function"}],
                                        "reasoningText": "thinking " * rng.randint(3, 20), "apiCallId": calls[0]})
            event("tool.execution_start", {"toolCallId": tool, "toolName": "bash", "arguments": {"command": "cat x.py"}})
            event("tool.execution_complete", {"toolCallId": tool, "success": True, "model": "claude-sonnet-4.5",
                                              "result": {"content": "line\n" * rng.randint(1, 50)}})
            usage(calls[1])
            event("assistant.message", {"messageId": f"{sid[:8]}f{turn}", "model": "claude-sonnet-4.5",
                                        "content": "answer " * rng.randint(5, 80), "toolRequests": [], "apiCallId": calls[1]})
            event("assistant.turn_end", {"turnId": str(turn)})
        # The CLI sums the run's usage at exit (what ccusage 20 reads; the importer counts the records).
        metrics = {k: sum(e["data"]["usage"][k] for e in events if e["type"] == "session.usage_record")
                   for k in ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")}
        requests = sum(e["type"] == "session.usage_record" for e in events)
        model_metrics = {"claude-sonnet-4.5": {"requests": {"count": requests, "cost": 0}, "usage": metrics}}
        event("session.shutdown", {"shutdownType": "routine", "totalPremiumRequests": 0,
                                   "sessionStartTime": int((START + timedelta(minutes=s)).timestamp() * 1000),
                                   "modelMetrics": model_metrics, "currentModel": "claude-sonnet-4.5"})
        folder = home / ".copilot" / "session-state" / sid
        write_lines(folder / "events.jsonl", events)
        # What else the CLI keeps in a session's folder: the finder walks it too.
        for sub in ("checkpoints", "files", "research", "rewind-file-snapshots"):
            (folder / sub).mkdir()
        (folder / "checkpoints" / "index.md").write_text("# Checkpoint History\n")
        (folder / "rewind-file-snapshots" / "tracking.json").write_text('{"schema":1,"tracking":true}')
        (folder / ".workspace-fork.lock").touch()
        (folder / "workspace.yaml").write_text(f"id: {sid}\ncwd: /home/dev/p{s % 20}\nclient_name: github/cli\n"
                                               f"name: 'prompt'\nuser_named: false\ncreated_at: {events[0]['timestamp']}\n")
    return home / ".copilot" / "session-state"


def qwen(home, n, rng):
    """Qwen Code 0.24 (~/.qwen/projects/<cwd slug>/chats/<session id>.jsonl): records chained by
    parentUuid: the user's message, the api_response telemetry, the answer (thought, functionCall,
    usageMetadata), the tool_result, the final answer with its own telemetry before it."""
    for s in range(n):
        sid, t, cwd = session_uuid(rng), START + timedelta(minutes=s), f"/home/dev/p{s % 20}"
        lines, parent = [], None

        def record(kind, **fields):
            nonlocal parent
            entry_id = f"{sid[:8]}-{len(lines):05d}"
            lines.append({"uuid": entry_id, "parentUuid": parent, "sessionId": sid, "timestamp": stamp(t), "type": kind,
                          "cwd": cwd, "version": "0.24.4", **fields})
            parent = entry_id

        def answer(parts):
            prompt, output = rng.randint(1000, 30000), rng.randint(5, 3000)
            cached = rng.randint(0, prompt)
            record("system", subtype="ui_telemetry", systemPayload={"uiEvent": {
                "event.name": "qwen-code.api_response", "event.timestamp": stamp(t), "model": "qwen3-coder-plus",
                "input_token_count": prompt, "output_token_count": output, "cached_content_token_count": cached,
                "thoughts_token_count": 0, "total_token_count": prompt + output}})
            record("assistant", model="qwen3-coder-plus", message={"role": "model", "parts": parts}, usageMetadata={
                "promptTokenCount": prompt, "candidatesTokenCount": output, "thoughtsTokenCount": 0,
                "totalTokenCount": prompt + output, "cachedContentTokenCount": cached})

        for turn in range(rng.randint(5, 10)):
            t += timedelta(seconds=30)
            call = f"call_{sid[:8]}{turn}"
            record("user", message={"role": "user", "parts": [{"text": "prompt " * rng.randint(5, 40)}]})
            answer([{"text": "thinking " * rng.randint(3, 20), "thought": True},
                    {"functionCall": {"id": call, "name": "run_shell_command", "args": {"command": "cat x.py"}}}])
            record("tool_result", message={"role": "user", "parts": [{"functionResponse": {
                "id": call, "name": "run_shell_command", "response": {"output": "line\n" * rng.randint(1, 50)}}}]},
                toolCallResult={"callId": call, "status": "success"})
            answer([{"text": "answer " * rng.randint(5, 80)}])
        write_lines(home / ".qwen" / "projects" / cwd.replace("/", "-") / "chats" / f"{sid}.jsonl", lines)
    return home / ".qwen" / "projects"


FORMATS = {"claude-code": claude_code, "codex": codex, "gemini": gemini, "pi": pi, "copilot": copilot, "qwen": qwen}
