"""`python bench/exports.py`: how fast the evals export and the HTML export run, with and
without the redaction step, on the benchmark's data set (SQLite; --sessions N, default 2 000,
10 messages each: 5 turns a session). Prints figures; it asserts nothing."""

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from dataset import generate  # noqa: E402

from opensync_lite import auth, create_app  # noqa: E402


def timed(client, path, headers):
    started = time.perf_counter()
    response = client.get(path, headers=headers, buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return time.perf_counter() - started, len(response.data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="opensync-bench-exports-")
    db_path = str(Path(folder) / "bench.db")
    app = create_app({"OPENSYNC_DB": db_path})
    with app.app_context():
        key, row = auth.create_key("local")
        user_id = row.user_id
    app.extensions["opensync"].close()
    generate(db_path, user_id, sessions=args.sessions, messages_per_session=10)
    app = create_app({"OPENSYNC_DB": db_path})
    client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
    print(f"{args.sessions:,} sessions, {args.sessions * 10:,} messages (SQLite, this machine)")
    for fmt in ("openai", "deepeval"):
        for redact in ("true", "false"):
            seconds, size = timed(client, f"/api/export/evals?format={fmt}&granularity=turn&redact={redact}", headers)
            print(f"evals {fmt:8} per turn, redact={redact:5}: {seconds:6.2f} s, {args.sessions / seconds:7,.0f} sessions/s,"
                  f" {size / 1e6 / seconds:5.2f} MB/s ({size / 1e6:.1f} MB)")
    seconds, _ = timed(client, "/api/export/evals/preview?format=openai", headers)
    print(f"evals preview (bounded, see README):{seconds:6.2f} s")
    started, n = time.perf_counter(), min(200, args.sessions)
    for i in range(n):
        timed(client, f"/api/export?externalId=bench-{i}&format=html", headers)
    print(f"HTML export of one session: {1000 * (time.perf_counter() - started) / n:.1f} ms each ({n} sessions)")


if __name__ == "__main__":
    main()
