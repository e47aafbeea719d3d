"""`make soak`: the concurrency workload against a real server for longer (not in `make test`).

Runs rounds of 16 threads x 300 mixed writes until --seconds have passed, then prints
requests/s, errors and lost writes, and exits non-zero if any write was lost or failed.
"""

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import workload  # noqa: E402
from conftest import LiveServer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300, help="per thread per round")
    opts = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="opensync-soak-")
    server = LiveServer(str(Path(workdir) / "soak.db"))
    key = server.create_key()
    sent = errors = lost = 0
    elapsed = 0.0
    rounds = 0
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < opts.seconds:
            prefix = f"r{rounds}-"
            plans = [workload.plan(prefix, t, opts.requests) for t in range(opts.threads)]
            statuses, seconds, _ = workload.run(server.url, key, plans)
            found, miscounted = workload.stored(server.db_path, prefix)
            round_lost = len(workload.lost_writes(workload.expected(plans), found)) + len(miscounted)
            round_sent = sum(statuses.values())
            round_errors = round_sent - statuses.get(200, 0)
            sent, errors, lost, elapsed, rounds = sent + round_sent, errors + round_errors, lost + round_lost, elapsed + seconds, rounds + 1
            print(f"round {rounds}: {round_sent} requests, {round_sent / seconds:.0f}/s, "
                  f"errors {round_errors}, lost writes {round_lost}", flush=True)
    finally:
        server.stop()
    integrity = sqlite3.connect(server.db_path).execute("PRAGMA integrity_check").fetchone()[0]
    print(f"\nsoak: {rounds} rounds, {sent} requests in {elapsed:.1f} s = {sent / elapsed:.0f} requests/s; "
          f"errors {errors}; lost writes {lost}; integrity_check {integrity}")
    sys.exit(0 if errors == 0 and lost == 0 and integrity == "ok" else 1)


if __name__ == "__main__":
    main()
