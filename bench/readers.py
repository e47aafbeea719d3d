"""Importer speed: N generated sessions per format, `opensync-lite import <agent>` into a fresh
SQLite db (cold) and again on the unchanged files (warm), sessions/s beside the 1 000/s target.

    PYTHONPATH=$PWD python bench/readers.py [--sessions 2000] [--agents claude-code,codex,gemini,pi,copilot,qwen]
"""

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from opensync_lite.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from histories import FORMATS  # noqa: E402

TARGET = 1000


def timed(kind, path, db):
    began = time.perf_counter()
    result = CliRunner().invoke(main, ["import", kind, str(path), "--db", str(db)])
    if result.exit_code != 0:
        sys.exit(f"import {kind} failed: {result.output}{result.exception!r}")
    return time.perf_counter() - began, result.output


def check(kind, output, sessions):
    """A generated history the reader misread would time nothing: every session new, no line skipped."""
    found = re.search(r"into (\d+) new .*; (\d+) lines skipped", output)
    if not found or int(found[1]) != sessions or found[2] != "0":
        sys.exit(f"import {kind} did not read the {sessions} generated sessions cleanly: {output}")


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
            cold, output = timed(kind, files, tmp / "db.sqlite")
            check(kind, output, args.sessions)
            warm, _ = timed(kind, files, tmp / "db.sqlite")
            n = args.sessions
            print(f"{kind:12} {n:8} {n / cold:8.0f} {n / warm:9.0f} {'ok' if n / cold >= TARGET else 'below'}", flush=True)


if __name__ == "__main__":
    main_()
