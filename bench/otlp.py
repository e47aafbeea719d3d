"""`python bench/otlp.py`: /v1/logs requests per second (each a real Claude Code export: a
prompt, a tool decision and result, two api_request events and two answers, as recorded in
tests/data/claude-code-2.1/a-tool-call) beside /sync/message on the same server, 8 keep-alive
clients. The issue's goal: /v1/logs >= 500 requests/s here."""

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import THREADS, load, message_body, new_db, percentile, serve, stop  # noqa: E402

EXPORT = HERE.parent / "tests" / "data" / "claude-code-2.1" / "a-tool-call" / "otlp" / "02-logs.json"


def export_body(t, k, template=json.loads(EXPORT.read_text())):
    """The recorded export as another session's (each its own session, request and message ids)."""
    text = json.dumps(template)
    session = template["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"]
    sid = next(a["value"]["stringValue"] for a in session if a["key"] == "session.id")
    text = text.replace(sid, f"bench-{t}-{k // 10}").replace('"req_', f'"req_{t}_{k}_').replace(
        '"toolu_', f'"toolu_{t}_{k}_')
    body = json.loads(text)
    for record in body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for a in record["attributes"]:
            if a["key"] == "message.uuid":
                a["value"]["stringValue"] += f"-{t}-{k}"
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="per client thread")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        figures = {}
        for path, bodies in (("/v1/logs", export_body), ("/sync/message", message_body)):
            db = str(Path(workdir) / f"{path.strip('/').replace('/', '-')}.db")
            key, _ = new_db(db)
            proc, port = serve(db)
            try:
                rate, latencies, errors = load(port, path, lambda t: [bodies(t, k) for k in range(opts.requests)], key)
            finally:
                stop(proc)
            figures[path] = (rate, percentile(latencies, 50), percentile(latencies, 99), len(errors))
    print(f"{'route':<16}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}   ({THREADS} clients x {opts.requests})")
    for path, (rate, p50, p99, errors) in figures.items():
        print(f"{path:<16}{rate:>8.0f}{p50:>9.1f}{p99:>9.1f}{errors:>9}")
    rate = figures["/v1/logs"][0]
    print(f"/v1/logs goal >= 500 req/s: {'met' if rate >= 500 else 'MISSED'} ({rate / figures['/sync/message'][0]:.2f}x /sync/message)")


if __name__ == "__main__":
    main()
