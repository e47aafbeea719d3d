"""A Claude Code history on disk, shaped like the real one: several projects, responses split
over several lines (each repeating message.id, requestId and usage), summary and isMeta lines,
a session resumed in a second file, a subagent transcript and inline sidechain lines, an old
line with costUSD, a <synthetic> response, lines lacking requestId, a huge tool result and a
torn line."""

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODELS = ["claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022"]
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def stamp(t):
    return t.isoformat().replace("+00:00", "Z")


class Writer:
    def __init__(self, rng):
        self.rng, self.n = rng, 0

    def uid(self, prefix="x"):
        self.n += 1
        return f"{prefix}{self.n:05d}"

    def user(self, session, t, text, cwd, meta=False, **extra):
        line = {"type": "user", "sessionId": session, "uuid": self.uid("u"), "timestamp": stamp(t), "cwd": cwd,
                "message": {"role": "user", "content": text}, **extra}
        if meta:
            line["isMeta"] = True
        return [line]

    def response(self, session, t, cwd, model, blocks, with_ids=True, cost=None, **extra):
        """One API response written as one line per content block, each repeating the usage."""
        usage = {"input_tokens": self.rng.randint(1, 400), "output_tokens": self.rng.randint(5, 3000),
                 "cache_creation_input_tokens": self.rng.randint(0, 20000),
                 "cache_read_input_tokens": self.rng.randint(0, 90000)}
        message_id, request_id = self.uid("msg_"), self.uid("req_")
        lines = []
        for i, block in enumerate(blocks):
            line = {"type": "assistant", "sessionId": session, "uuid": self.uid("a"),
                    "timestamp": stamp(t + timedelta(seconds=i)), "cwd": cwd,
                    "message": {"role": "assistant", "model": model, "content": [block], "usage": dict(usage)}, **extra}
            if with_ids:
                line["message"]["id"] = message_id
                line["requestId"] = request_id
            if cost is not None:
                line["costUSD"] = cost
            lines.append(line)
        return lines


def write(path, lines, torn=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
        if torn:
            f.write('{"type": "assistant", "sessionId": "torn", "uuid"\n')


def make_history(home, seed=3):
    """Write the history under ``home``/.claude/projects; returns a description of it."""
    rng = random.Random(seed)
    w = Writer(rng)
    projects = home / ".claude" / "projects"
    sessions = {}
    for p, project in enumerate(["alpha", "beta", "gamma"]):
        cwd = f"/home/dev/{project}"
        folder = projects / f"-home-dev-{project}"
        for s in range(3):
            session = f"{project}-session-{s}"
            t = START + timedelta(days=p * 3 + s, hours=s)
            lines = [{"type": "summary", "summary": f"{project.title()} work {s}", "leafUuid": "x"}] if s == 0 else []
            lines += w.user(session, t, "<command-name>/clear</command-name>", cwd, meta=True)
            lines += w.user(session, t, f"Please refactor the {project} parser, part {s}", cwd)
            for k in range(rng.randint(3, 6)):
                t += timedelta(minutes=2)
                model = MODELS[(p + s + k) % 3]
                blocks = [{"type": "thinking", "thinking": "planning"}, {"type": "text", "text": f"Step {k}"},
                          {"type": "tool_use", "id": w.uid("toolu_"), "name": "Edit", "input": {"file_path": f"{project}/f{k}.py"}}]
                lines += w.response(session, t, cwd, model, blocks[: rng.randint(1, 3)])
                lines += w.user(session, t, [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "ok"}], cwd)
            sessions[session] = {"project": project, "first": START + timedelta(days=p * 3 + s, hours=s)}
            write(folder / f"{session}.jsonl", lines, torn=(p == 1 and s == 1))
    # A session resumed in a second file keeps its sessionId.
    cwd = "/home/dev/alpha"
    later = START + timedelta(days=20)
    lines = w.user("alpha-session-1", later, "Continue where we stopped", cwd)
    lines += w.response("alpha-session-1", later, cwd, MODELS[0], [{"type": "text", "text": "Resuming"}])
    write(projects / "-home-dev-alpha" / "resumed-file.jsonl", lines)
    # A subagent transcript, and inline sidechain lines in its parent.
    sub = []
    for k in range(2):
        sub += w.response("beta-session-0", later + timedelta(minutes=k), "/home/dev/beta", MODELS[2],
                          [{"type": "text", "text": f"subagent step {k}"}], isSidechain=True, agentId="abc")
    write(projects / "-home-dev-beta" / "beta-session-0" / "subagents" / "agent-abc.jsonl", sub)
    inline = w.response("gamma-session-2", later, "/home/dev/gamma", MODELS[1], [{"type": "text", "text": "side"}],
                        isSidechain=True)
    # Lines without requestId count as they are; an old line carries its own costUSD; a
    # <synthetic> response is counted but is no model; a huge tool result.
    inline += w.response("gamma-session-2", later, "/home/dev/gamma", MODELS[0], [{"type": "text", "text": "a"}], with_ids=False)
    inline += w.response("gamma-session-2", later, "/home/dev/gamma", MODELS[1], [{"type": "text", "text": "b"}], cost=0.4321)
    synthetic = w.response("gamma-session-2", later, "/home/dev/gamma", "<synthetic>", [{"type": "text", "text": "No response"}])
    for line in synthetic:
        line["message"]["usage"] = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 0}
    inline += synthetic
    inline += w.user("gamma-session-2", later, [{"type": "tool_result", "tool_use_id": "t", "content": "x" * 1_500_000}], "/home/dev/gamma")
    write(projects / "-home-dev-gamma" / "gamma-session-2.jsonl", inline)
    return {"root": projects, "sessions": sessions, "writer": w}


def make_bulk(home, sessions, seed=11, responses=8):
    """``sessions`` transcripts over 20 projects, each a prompt and ``responses`` split
    responses: the benchmark's history. Returns the projects folder."""
    rng = random.Random(seed)
    w = Writer(rng)
    projects = home / ".claude" / "projects"
    for i in range(sessions):
        project = f"project-{i % 20}"
        cwd = f"/home/dev/{project}"
        session = f"bulk-{i:06d}"
        t = START + timedelta(minutes=7 * i)
        lines = w.user(session, t, f"Task {i}: improve the {project} build", cwd)
        for k in range(responses):
            lines += w.response(session, t + timedelta(seconds=30 * k), cwd, MODELS[(i + k) % 3],
                                [{"type": "text", "text": f"step {k} " + "detail " * 40},
                                 {"type": "tool_use", "id": w.uid("toolu_"), "name": "Bash", "input": {"command": "make"}}])
        write(projects / f"-home-dev-{project}" / f"{session}.jsonl", lines)
    return projects
