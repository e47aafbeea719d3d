"""The watcher's full pass over unchanged folders beside ccusage 20 reading the same files.

N generated sessions per format (bench/histories.py) under a temporary HOME, imported once by a
first pass; then the pass `serve`'s watcher makes every FULL_PASS_S (watch.Watcher._pass with
no changed paths: every agent's folders walked, each file's recorded state looked up) is timed
on the unchanged files, per agent and for all at once, beside `ccusage <agent> daily --json`
(and the unified `ccusage daily --json`) on that HOME. ccusage is a whole process: its start-up
alone (on an empty HOME) is printed too. Figures are min and median of --repeat runs.

    PYTHONPATH=$PWD python bench/watcher.py [--sessions 2000] [--repeat 5] [--agents claude-code,codex,...]
"""

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from histories import FORMATS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CCUSAGE = ROOT / "tests" / "node_modules" / "ccusage20" / "src" / "cli.js"
CCUSAGE_AGENT = {"claude-code": "claude", "codex": "codex", "gemini": "gemini", "pi": "pi", "copilot": "copilot",
                 "qwen": "qwen"}
AGENT_ENV = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "PI_CODING_AGENT_DIR", "COPILOT_HOME",
             "QWEN_RUNTIME_DIR", "QWEN_HOME", "CLINE_DATA_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME")


def timings(run, repeat):
    """(min, median) ms of ``repeat`` calls of ``run``, after one call not counted."""
    run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return min(times), statistics.median(times)


def ccusage(home, args):
    """ccusage 20 on ``home`` (its own default folders there); the parsed JSON it prints."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TZ": "UTC", "NO_COLOR": "1"}
    done = subprocess.run([shutil.which("node") or "node", str(CCUSAGE), *args, "--json", "--offline"],
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"ccusage {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else {}


def tokens_seen(report):
    """The total tokens a ccusage report counted (to tell it read the generated files)."""
    totals = report.get("totals") if isinstance(report, dict) else None
    return (totals or {}).get("totalTokens", 0) if isinstance(totals, dict) else 0


def main_():
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--agents", default=",".join(FORMATS))
    p.add_argument("--profile", help="write a cProfile of one all-agents pass here")
    args = p.parse_args()
    kinds = args.agents.split(",")
    logging.basicConfig(level=logging.WARNING)  # a line the first pass skips is shown
    if not CCUSAGE.is_file():
        sys.exit(f"ccusage 20 is not installed at {CCUSAGE} (make install-test)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home, empty = tmp / "home", tmp / "empty"
        empty.mkdir()
        for kind in kinds:
            FORMATS[kind](home, args.sessions, random.Random(7))
        # The watcher finds the agents' folders as serve does: their defaults under HOME.
        for name in AGENT_ENV:
            os.environ.pop(name, None)
        os.environ["HOME"], os.environ["XDG_DATA_HOME"] = str(home), str(tmp / "xdg")
        from opensync_lite import auth, config, create_app
        from opensync_lite.cli import _watched
        from opensync_lite.importers.agents import FILE_AGENTS
        from opensync_lite.watch import Watcher

        app = create_app({"OPENSYNC_DB": str(tmp / "db.sqlite")})
        watching = _watched(True, (), None)
        with app.app_context():
            user_id = auth.get_or_create_user(config.DEFAULT_USER).id

            def watcher(names):
                return Watcher(app, config.DEFAULT_USER, {n: f for n, f in watching.items() if n in names})

            everything = watcher(set(watching))
            began = time.perf_counter()
            everything._pass(user_id, None)  # the first pass imports them all
            print(f"first pass (import of {args.sessions} sessions x {len(kinds)} formats): "
                  f"{time.perf_counter() - began:.1f} s", flush=True)
            if args.profile:
                import cProfile
                cProfile.runctx("everything._pass(user_id, None)", globals(), locals(), args.profile)
            startup = timings(lambda: ccusage(empty, ["daily"]), args.repeat)
            print(f"ccusage start-up alone (empty HOME): min {startup[0]:.0f} ms, median {startup[1]:.0f} ms\n")
            print(f"{'format':12} {'sessions':>8} {'pass min':>9} {'pass med':>9} {'ccusage min':>12} "
                  f"{'ccusage med':>12} {'ratio':>6}  (ms; ratio = pass median / ccusage median)")
            rows = [(kind, watcher({FILE_AGENTS[kind].name}), [CCUSAGE_AGENT[kind], "daily"]) for kind in kinds]
            rows.append(("all", everything, ["daily"]))
            for kind, w, report in rows:
                seen = tokens_seen(ccusage(home, report))
                if not seen:
                    sys.exit(f"ccusage {' '.join(report)} counted no tokens in the generated {kind} files")
                ours = timings(lambda: w._pass(user_id, None), args.repeat)
                theirs = timings(lambda: ccusage(home, report), args.repeat)
                n = args.sessions * (len(kinds) if kind == "all" else 1)
                print(f"{kind:12} {n:8} {ours[0]:9.0f} {ours[1]:9.0f} {theirs[0]:12.0f} {theirs[1]:12.0f} "
                      f"{ours[1] / theirs[1]:6.2f}", flush=True)


if __name__ == "__main__":
    main_()
