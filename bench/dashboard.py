"""Dashboard pages against the JSON pages that read the same rows (issue 18's speed figures).

    python bench/dashboard.py [--sessions 100000]

A SQLite data set of --sessions sessions with 10 messages each, assistant messages carrying tool
and thinking text (so search runs over the larger index), plus one session of 1 000 messages.
Each figure is the server's time through Flask's test client (no network): warm = the same page
again with no write in between, cold = the first view after a sync changed the data.
"""

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dataset import SOURCES, WORDS, generate  # noqa: E402
from run import median_ms, new_db  # noqa: E402

from opensync_lite import create_app  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--db", help="keep the generated data set in this file and reuse it on later runs "
                                     "(each run works on a copy, so its writes do not accumulate)")
    parser.add_argument("--only", help="run only the pages whose name contains this text")
    opts = parser.parse_args()
    db_path = str(Path(tempfile.mkdtemp(prefix="opensync-bench-dash-")) / "bench.db")
    if opts.db and Path(opts.db).exists():
        shutil.copyfile(opts.db, db_path)
        key, user_id = new_db(db_path)  # the same "local" user the data set belongs to
        print(f"data set: a copy of {opts.db}", flush=True)
    else:
        key, user_id = new_db(db_path)
        sessions, messages, seconds = generate(db_path, user_id, sessions=opts.sessions, tools=True)
        print(f"data set: {sessions:,} sessions, {messages:,} messages with tool and thinking text; {seconds:.0f} s",
              flush=True)
    import sqlite3
    with sqlite3.connect(db_path) as conn:
        sessions, messages = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("sessions", "messages"))

    app = create_app({"OPENSYNC_DB": db_path})
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"csrf": csrf, "key": key}).status_code == 302
    headers = {"Authorization": f"Bearer {key}"}
    long_messages = [
        {"sessionExternalId": "bench-long", "externalId": f"long-{i}", "role": "assistant" if i % 2 else "user",
         "textContent": f"step {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(40)),
         "parts": [{"type": "tool-call", "content": {"name": "Edit", "input": {"file_path": f"src/f{i}.py",
                                                                                "old_string": "a", "new_string": "b"}}}]
         if i % 2 else []}
        for i in range(1000)]
    response = client.post("/sync/batch", headers=headers, json={
        "sessions": [{"externalId": "bench-long", "source": "claude-code", "title": "A 1 000-message session"}],
        "messages": long_messages})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    if opts.db and not Path(opts.db).exists():
        app.extensions["opensync"].close()
        with sqlite3.connect(db_path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(db_path, opts.db)
        app = create_app({"OPENSYNC_DB": db_path})
        client = app.test_client()
        page = client.get("/signin").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        assert client.post("/signin", data={"csrf": csrf, "key": key}).status_code == 302
    long_id = client.get("/api/sessions/get?externalId=bench-long", headers=headers).get_json()["session"]["id"]

    # Page 1000 of one source by cost, reached by walking cursors as a user paging would.
    source, limit = SOURCES[1], 20
    base = f"/api/sessions?source={source}&sortBy=cost&limit={limit}"
    cursor = None
    for _ in range(999):
        cursor = client.get(base + (f"&cursor={cursor}" if cursor else ""), headers=headers).get_json()["nextCursor"]
    deep = f"source={source}&sortBy=cost&limit={limit}&cursor={cursor}"

    writes = iter(range(10**6))

    def touch():
        client.post("/sync/session", json={"externalId": f"bench-touch-{next(writes)}"}, headers=headers)

    def view(paths, auth=False):
        for path in paths:
            response = client.get(path, headers=headers if auth else None)
            assert response.status_code == 200, (path, response.status_code)

    overview_json = ["/api/stats", "/api/stats/daily", "/api/stats/models", "/api/stats/projects",
                     "/api/sessions?limit=10"]
    pairs = [
        ("overview", ["/"], overview_json),
        ("sessions page 1", ["/sessions"], ["/api/sessions?limit=50&subagents=fold"]),
        ("sessions page 1000 (source, by cost)", [f"/sessions?{deep}"], [f"/api/sessions?{deep}"]),
        ("sessions, source=cursor", ["/sessions?source=cursor"], ["/api/sessions?source=cursor"]),
        ("session of 1 000 messages", [f"/sessions/{long_id}"], [f"/api/sessions/get?id={long_id}"]),
        ("search, a word in ~40 % of messages", ["/search?q=parser"], ["/api/search?q=parser"]),
        ("search, a tool word (Bash npm)", ["/search?q=npm"], ["/api/search?q=npm"]),
        ("search, three words", ["/search?q=parser+cache+index"], ["/api/search?q=parser+cache+index"]),
        ("search page 5", ["/search?q=parser&offset=200"], ["/api/search?q=parser&offset=200"]),
        ("sessions of a project", ["/sessions?project=/home/dev/project-7"], ["/api/sessions?project=/home/dev/project-7"]),
        ("files", ["/files"], ["/api/files"]),
        ("files, one file", ["/files?file=src/f7.py"], ["/api/files?file=src/f7.py"]),
    ]
    rows = []
    for name, html_paths, json_paths in pairs:
        if opts.only and opts.only not in name:
            continue
        view(html_paths)
        view(json_paths, auth=True)
        warm = median_ms(lambda: view(html_paths))
        warm_json = median_ms(lambda: view(json_paths, auth=True))
        cold = []
        for _ in range(5):
            touch()
            began = time.perf_counter()
            view(html_paths)
            cold.append((time.perf_counter() - began) * 1000)
        rows.append((name, warm, statistics.median(cold), warm_json))
        print(f"  {name}: {warm:.1f} ms warm, {statistics.median(cold):.0f} ms cold, JSON {warm_json:.1f} ms",
              flush=True)
    app.extensions["opensync"].close()

    print(f"\n| page ({sessions:,} sessions, {messages:,} messages) | warm ms | cold ms | JSON page ms | ratio |")
    print("|---|---|---|---|---|")
    for name, warm, cold, warm_json in rows:
        print(f"| {name} | {warm:.1f} | {cold:.0f} | {warm_json:.1f} | {warm / warm_json:.2f} |")


if __name__ == "__main__":
    main()
