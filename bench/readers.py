"""Importer speed: N generated sessions per format, `opensync-lite import <agent>` into a fresh
SQLite db (cold) and again on the unchanged files (warm), sessions/s beside the 1 000/s target.

    PYTHONPATH=$PWD python bench/readers.py [--sessions 2000] [--agents claude-code,pi]
"""

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from opensync_lite.cli import main

TARGET = 1000
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def stamp(t):
    return t.isoformat().replace("+00:00", "Z")


def claude_code(root, n, rng):
    """Claude Code: one line per content block, tool results as user lines, usage per response."""
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
        path = root / "projects" / f"-home-dev-p{s % 20}" / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root / "projects"


def pi(root, n, rng):
    """pi: a session header, then message entries (user, assistant with usage and tool calls, toolResult)."""
    for s in range(n):
        sid, t = f"pi{s:06d}", START + timedelta(minutes=s)
        lines = [{"type": "session", "id": sid, "timestamp": stamp(t), "cwd": f"/home/dev/p{s % 20}"}]
        for turn in range(rng.randint(7, 13)):
            t += timedelta(seconds=30)
            call = f"{sid}c{turn}"
            lines.append({"type": "message", "id": f"{sid}e{turn}u", "timestamp": stamp(t),
                          "message": {"role": "user", "content": [{"type": "text", "text": "prompt " * rng.randint(5, 40)}]}})
            lines.append({"type": "message", "id": f"{sid}e{turn}a", "timestamp": stamp(t), "message": {
                "role": "assistant", "model": "claude-sonnet-4-5", "provider": "anthropic", "responseId": f"{sid}r{turn}",
                "content": [{"type": "text", "text": "answer " * rng.randint(5, 80)},
                            {"type": "toolCall", "id": call, "name": "read", "arguments": {"path": "x.py"}}],
                "usage": {"input": rng.randint(1, 400), "output": rng.randint(5, 3000), "cacheRead": rng.randint(0, 9000),
                          "cacheWrite": rng.randint(0, 2000), "cost": {"total": 0.01}}}})
            lines.append({"type": "message", "id": f"{sid}e{turn}t", "timestamp": stamp(t), "message": {
                "role": "toolResult", "toolCallId": call, "content": [{"type": "text", "text": "line\n" * rng.randint(1, 50)}],
                "isError": False}})
        path = root / "sessions" / f"--home-dev-p{s % 20}--" / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root / "sessions"


FORMATS = {"claude-code": claude_code, "pi": pi}


def timed(kind, path, db):
    began = time.perf_counter()
    result = CliRunner().invoke(main, ["import", kind, str(path), "--db", str(db)])
    if result.exit_code != 0:
        sys.exit(f"import {kind} failed: {result.output}{result.exception!r}")
    return time.perf_counter() - began


def main_():
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--agents", default=",".join(FORMATS))
    args = p.parse_args()
    print(f"{'reader':12} {'sessions':>8} {'cold/s':>8} {'warm/s':>9} target {TARGET}/s")
    for kind in args.agents.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            files = FORMATS[kind](tmp / "home", args.sessions, random.Random(7))
            cold = timed(kind, files, tmp / "db.sqlite")
            warm = timed(kind, files, tmp / "db.sqlite")
            n = args.sessions
            print(f"{kind:12} {n:8} {n / cold:8.0f} {n / warm:9.0f} {'ok' if n / cold >= TARGET else 'below'}", flush=True)


if __name__ == "__main__":
    main_()
