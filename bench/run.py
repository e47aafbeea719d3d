"""`make bench`: opensync-lite against the bare database driver and bare Flask on this machine.

Runs every figure on SQLite and on PostgreSQL (a throwaway local server), and prints them side
by side with their targets. Options: --sessions N (default 100 000; messages are 10 per
session), --requests N (per client thread, default 600), --databases sqlite,postgresql.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from client import Client  # noqa: E402
from dataset import SOURCES, generate  # noqa: E402

from opensync_lite import auth, create_app  # noqa: E402

THREADS = 8  # client threads
SERVER_THREADS = int(os.environ.get("BENCH_SERVER_THREADS", 8))  # waitress threads, both servers
STATS_SQL = (
    "SELECT source, COUNT(id), COALESCE(SUM(message_count), 0), COALESCE(SUM(prompt_tokens), 0),"
    " COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost), 0),"
    " COALESCE(SUM(duration_ms), 0), MAX(updated_at) FROM sessions WHERE user_id = ?"
    " GROUP BY source ORDER BY COUNT(id) DESC, source"
)


def start(args):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(match.group(1))


def stop(proc):
    proc.terminate()
    proc.wait(10)


def serve(db_path, workers=1):
    return start([sys.executable, "-m", "opensync_lite.cli", "serve", "--port", "0", "--workers", str(workers),
                  "--threads", str(SERVER_THREADS), "--quiet", "--db", db_path])


def new_db(path):
    app = create_app({"OPENSYNC_DB": path})
    with app.app_context():
        key, row = auth.create_key("local", "bench")
    app.extensions["opensync"].close()
    return key, row.user_id


def median_ms(fn, runs=20):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def get_ok(client, path):
    status, body = client.request("GET", path)
    assert status == 200, (status, body[:200])
    return json.loads(body)


def load(port, path, bodies_for, key=None):
    """THREADS keep-alive clients, each sending its own bodies; returns (req/s, latencies ms, errors)."""
    latencies, errors = [], []
    barrier = threading.Barrier(THREADS + 1)

    def worker(t):
        client = Client(port, key)
        mine = []
        bodies = bodies_for(t)
        barrier.wait()
        for body in bodies:
            start_t = time.perf_counter()
            status, _ = client.request("POST", path, body)
            mine.append((time.perf_counter() - start_t) * 1000)
            if status != 200:
                errors.append(status)
        client.close()
        latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, latencies, errors


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def message_body(t, k):
    return {
        "sessionExternalId": f"live-{t}-{k // 50}", "externalId": f"live-{t}-{k}", "role": "assistant",
        "source": "claude-code", "textContent": f"Step {k}: looked at parser.py and fixed the retry loop",
        "model": "model-03", "promptTokens": 1200, "durationMs": 850,
    }


def batch_rows(n, offset=0):
    return [
        {"sessionExternalId": f"batch-{(offset + i) // 100}", "externalId": f"bm-{offset + i}", "role": "user",
         "textContent": f"batch message {offset + i} about the parser cache", "model": "model-01",
         "createdAt": 1_764_547_200_000 + offset + i}
        for i in range(n)
    ]


def raw_batch(db_path, user_id, batches, size):
    """The same rows written through the bare driver's executemany, one transaction per batch."""
    postgres = db_path.startswith("postgresql://")
    if postgres:
        import psycopg

        conn = psycopg.connect(db_path, autocommit=True)
        mark, ignore = "%s", " ON CONFLICT DO NOTHING"
    else:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        mark, ignore = "?", ""
    began = time.perf_counter()
    for b in range(batches):
        rows = batch_rows(size, b * size)
        conn.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")
        sessions = sorted({r["sessionExternalId"] for r in rows})
        cursor = conn.cursor()
        cursor.executemany(
            f"INSERT {'' if postgres else 'OR IGNORE '}INTO sessions (user_id, external_id, created_at, updated_at)"
            f" VALUES ({mark}, {mark}, 0, 0){ignore}",
            [(user_id, s) for s in sessions],
        )
        ids = dict(conn.execute(
            f"SELECT external_id, id FROM sessions WHERE user_id = {mark} AND external_id IN ({','.join([mark] * len(sessions))})",
            [user_id, *sessions],
        ).fetchall())
        cursor.executemany(
            "INSERT INTO messages (session_id, external_id, role, text_content, model, created_at)"
            f" VALUES ({','.join([mark] * 6)})",
            [(ids[r["sessionExternalId"]], r["externalId"], r["role"], r["textContent"], r["model"], r["createdAt"])
             for r in rows],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return batches * size / elapsed


def dashboard_pages(db_path, key, deep_page, report, results):
    """6 + 7. Each dashboard page's server time (Flask's test client on the same file, so no
    network in the figure): warm = the same page again with no write in between (it reuses
    what the last view read), cold = the first view after a sync changed the data."""
    from dataset import WORDS

    app = create_app({"OPENSYNC_DB": db_path})
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"csrf": csrf, "key": key}).status_code == 302
    headers = {"Authorization": f"Bearer {key}"}
    messages = [{"sessionExternalId": "bench-long", "externalId": f"long-{i}", "role": "user" if i % 2 else "assistant",
                 "textContent": f"step {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(40)),
                 "parts": [{"type": "tool-call", "content": {"name": "Edit", "input": {"path": f"src/f{i}.py"}}}]}
                for i in range(500)]
    client.post("/sync/batch", json={"sessions": [{"externalId": "bench-long", "source": "claude-code",
                                                   "title": "A 500-message session"}], "messages": messages},
                headers=headers)
    long_id = client.get("/api/sessions/get?externalId=bench-long", headers=headers).get_json()["session"]["id"]
    writes = iter(range(10**6))

    def touch():  # a sync that changes the data version
        client.post("/sync/session", json={"externalId": f"bench-touch-{next(writes)}"}, headers=headers)

    def view(path):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    pages = [("overview", "/"), ("overview, source=cursor", "/?source=cursor"), ("sessions page 1", "/sessions"),
             ("sessions page 1000 (source, sortBy=cost)", deep_page), ("sessions, source=cursor", "/sessions?source=cursor"),
             ("session of 500 messages", f"/sessions/{long_id}")]
    for name, path in pages:
        view(path)
        warm = median_ms(lambda: view(path))
        cold = []
        for _ in range(5):
            touch()
            began = time.perf_counter()
            view(path)
            cold.append((time.perf_counter() - began) * 1000)
        report(f"6 dashboard {name}: median ms (cold after a sync)", f"{warm:.1f} ({statistics.median(cold):.0f})",
               "", None, "<= 50", warm <= 50)
    for name, path in (("a word in 40% of messages", "/search?q=parser"), ("three common words", "/search?q=parser+cache+index"),
                       ("a rare word", "/search?q=migrat")):
        view(path)
        ms = median_ms(lambda: view(path))
        report(f"7 dashboard search, {name} (ms)", f"{ms:.1f}", "", None, "<= 150", ms <= 150)
    app.extensions["opensync"].close()


def import_figures(workdir, transcripts, report, results):
    """8. `opensync-lite import claude-code` on a generated history of ``transcripts`` files,
    beside `ccusage session --json --offline` reading the same files."""
    import resource

    sys.path.insert(0, str(HERE.parent / "tests"))
    from claude_history import make_bulk

    home = workdir / "home"
    began = time.perf_counter()
    root = make_bulk(home, transcripts)
    size = sum(f.stat().st_size for f in root.rglob("*.jsonl"))
    print(f"history: {transcripts:,} transcripts, {size / 1e6:.0f} MB, written in {time.perf_counter() - began:.1f} s",
          flush=True)
    db_path = str(workdir / "import.db")
    new_db(db_path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "opensync_lite.cli", "import", "claude-code", str(root), "--db", db_path],
                         capture_output=True, text=True, check=True).stdout
    ours = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ccusage_bin = HERE.parent / "tests" / "node_modules" / ".bin" / "ccusage"
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    began = time.perf_counter()
    subprocess.run([str(ccusage_bin), "session", "--json", "--offline"], env={**env, "HOME": str(home)},
                   capture_output=True, check=True)
    theirs = time.perf_counter() - began
    print(out.strip(), flush=True)
    report(f"8 import claude-code, {transcripts:,} transcripts: seconds vs ccusage session --offline",
           f"{ours:.1f}", f"{theirs:.1f}", ours / theirs, "<= 2", ours / theirs <= 2)
    results.append(("  import sessions/s", f"{transcripts / ours:.0f}", "", None, "", ""))
    report("  import peak RSS (MB; max over child processes so far)", f"{max(rss, before / 1024):.0f}", "", None,
           "<= 150", max(rss, before / 1024) <= 150)


def raw_stats_ms(db_path, user_id):
    """The stats query straight to the database driver (no Flask, no Peewee)."""
    if db_path.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db_path, autocommit=True) as raw:
            sql = STATS_SQL.replace("?", "%s")
            raw.execute(sql, (user_id,)).fetchall()
            return median_ms(lambda: raw.execute(sql, (user_id,)).fetchall())
    raw = sqlite3.connect(db_path)
    try:
        raw.execute(STATS_SQL, (user_id,)).fetchall()
        return median_ms(lambda: raw.execute(STATS_SQL, (user_id,)).fetchall())
    finally:
        raw.close()


def measure(kind, fresh, opts, workdir, echo):
    """Figures 1-6 (and 7, 8 on SQLite) on one database; ``fresh(name)`` makes a new empty
    one and returns its path or URL. Returns the report rows."""
    results = []

    def report(name, ours, baseline, ratio, target, ok, unit=""):
        results.append((name, ours, baseline, ratio, target, "met" if ok else "MISSED"))

    db_path = fresh("bench")
    key, user_id = new_db(db_path)
    n_sessions, n_messages, seconds = generate(db_path, user_id, sessions=opts.sessions)
    print(f"[{kind}] data set: {n_sessions:,} sessions, {n_messages:,} messages, {len(SOURCES)} sources, "
          f"12 models, 200 projects, 90 days; generated in {seconds:.1f} s", flush=True)

    proc, port = serve(db_path)
    try:
        client = Client(port, key)
        # 1. GROUP BY source through the whole stack vs the same query to the bare driver.
        get_ok(client, "/api/stats/sources")  # warm the thread's connection and the page cache
        api_ms = median_ms(lambda: get_ok(client, "/api/stats/sources"))
        raw_ms = raw_stats_ms(db_path, user_id)
        report("1 /api/stats/sources median (ms) vs raw SQL", f"{api_ms:.2f}", f"{raw_ms:.2f}",
               api_ms / raw_ms, "<= 1.5", api_ms / raw_ms <= 1.5)

        # 2. Keyset pagination: page 1000 costs what page 1 costs.
        source, limit = SOURCES[1], 20
        base = f"/api/sessions?source={source}&sortBy=cost&limit={limit}"
        cursor, page = None, 1
        while page < 1000:
            body = get_ok(client, base + (f"&cursor={cursor}" if cursor else ""))
            cursor, page = body["nextCursor"], page + 1
            if cursor is None:
                raise SystemExit(f"only {page - 1} pages of {limit}: use more --sessions")
        page1000 = base + f"&cursor={cursor}"
        assert len(get_ok(client, page1000)["sessions"]) == limit
        p1 = median_ms(lambda: get_ok(client, base))
        p1000 = median_ms(lambda: get_ok(client, page1000))
        report(f"2 /api/sessions?source&sortBy=cost page 1000 vs page 1 (ms, limit {limit})",
               f"{p1000:.2f}", f"{p1:.2f}", p1000 / p1, "<= 2", p1000 / p1 <= 2)
        client.close()
        dashboard_pages(db_path, key, f"/sessions?source={source}&sortBy=cost&limit={limit}&cursor={cursor}", report,
                        results)

        # 3 + 5. /sync/message throughput with 8 keep-alive clients, and the server's peak RSS.
        n = opts.requests
        cpu = cpu_seconds(proc.pid)
        rate, lat, errors = load(port, "/sync/message", lambda t: [message_body(t, k) for k in range(n)], key)
        cpu_ms = (cpu_seconds(proc.pid) - cpu) / len(lat) * 1000
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    echo_rate, echo_lat, echo_errors, echo_cpu_ms = echo
    report(f"3 /sync/message req/s vs bare Flask echo ({THREADS} threads x {n})", f"{rate:.0f}",
           f"{echo_rate:.0f}", rate / echo_rate, ">= 0.7", rate / echo_rate >= 0.7)
    results.append(("  latency p50 / p99 (ms): ours | echo", f"{percentile(lat, 50):.1f} / {percentile(lat, 99):.1f}",
                    f"{percentile(echo_lat, 50):.1f} / {percentile(echo_lat, 99):.1f}", None, "", ""))
    results.append(("  server CPU per request (ms): ours | echo", f"{cpu_ms:.2f}", f"{echo_cpu_ms:.2f}",
                    cpu_ms / echo_cpu_ms, "", ""))
    results.append(("  non-200 answers: ours | echo", str(len(errors)), str(len(echo_errors)), None, "0",
                    "met" if not errors and not echo_errors else "MISSED"))

    # 4. /sync/batch of 500 messages vs the driver's executemany of the same rows, each on a fresh database.
    batch_db = fresh("batch")
    batch_key, _ = new_db(batch_db)
    proc, port = serve(batch_db)
    try:
        client = Client(port, batch_key)
        began = time.perf_counter()
        for b in range(opts.batches):
            status, body = client.request("POST", "/sync/batch", {"sessions": [], "messages": batch_rows(500, b * 500)})
            assert status == 200 and json.loads(body)["messages"] == 500, body[:300]
        batch_rate = opts.batches * 500 / (time.perf_counter() - began)
        client.close()
    finally:
        stop(proc)
    raw_db = fresh("raw")
    _, raw_user = new_db(raw_db)
    raw_rate = raw_batch(raw_db, raw_user, opts.batches, 500)
    report("4 /sync/batch messages/s vs raw executemany (500 per batch)", f"{batch_rate:.0f}", f"{raw_rate:.0f}",
           batch_rate / raw_rate, ">= 0.3", batch_rate / raw_rate >= 0.3)
    report("5 server peak RSS during 3 (MB)", f"{rss:.1f}", "", None, "<= 80", rss <= 80)

    # 9. /sync/message req/s with 1, 2 and 4 server processes (serve --workers N).
    rates = {}
    for workers in (1, 2, 4):
        workers_db = fresh(f"workers{workers}")
        workers_key, _ = new_db(workers_db)
        proc, port = serve(workers_db, workers)
        try:
            rates[workers], _, errors = load(port, "/sync/message",
                                             lambda t: [message_body(t, k) for k in range(n)], workers_key)
        finally:
            stop(proc)
        scale = rates[workers] / rates[1]
        report(f"9 /sync/message req/s, serve --workers {workers} ({os.cpu_count()} cores), vs 1 worker",
               f"{rates[workers]:.0f}", f"{rates[1]:.0f}", scale,
               f">= {0.8 * min(workers, os.cpu_count()):.1f}" if workers > 1 else "",
               scale >= 0.8 * min(workers, os.cpu_count()) and not errors)
    if kind == "sqlite":
        import_figures(workdir, opts.transcripts, report, results)
    return results


def echo_baseline(n):
    """The bare Flask echo server under the same load as figure 3."""
    echo_proc, echo_port = start([sys.executable, str(HERE / "echo_server.py"), str(SERVER_THREADS)])
    try:
        cpu = cpu_seconds(echo_proc.pid)
        rate, lat, errors = load(echo_port, "/echo", lambda t: [message_body(t, k) for k in range(n)])
        return rate, lat, errors, (cpu_seconds(echo_proc.pid) - cpu) / len(lat) * 1000
    finally:
        stop(echo_proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=600, help="per client thread")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--transcripts", type=int, default=5000, help="import benchmark history size")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (a throwaway local server)")
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opensync-bench-"))
    kinds = opts.databases.split(",")
    echo = echo_baseline(opts.requests)
    columns, cluster = {}, None
    try:
        for kind in kinds:
            if kind == "sqlite":
                fresh = lambda name: str(workdir / f"{name}.db")  # noqa: E731
            else:
                cluster = cluster or start_postgres()
                fresh = lambda name: new_postgres_database(cluster, name)  # noqa: E731
            columns[kind] = measure(kind, fresh, opts, workdir, echo)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(columns)
    if echo[0] and any(r[0].startswith("3 ") and r[5] == "MISSED" for rows in columns.values() for r in rows):
        print("what limits 3: each server is one Python process whose threads share one core (the GIL); "
              "a /sync/message costs the server CPU shown (key check, validation, a write transaction with "
              "search indexing) against the bare echo's, so one process stays near their ratio; figure 9 "
              "shows what more processes add.")


def start_postgres():
    sys.path.insert(0, str(HERE.parent / "tests"))
    import pgcluster

    if pgcluster.binaries() is None:
        raise SystemExit("no PostgreSQL binaries (apt-get install postgresql), or pass --databases sqlite")
    return pgcluster.Cluster(pgcluster.binaries())


def new_postgres_database(cluster, name):
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.database_url(name)


def print_table(columns):
    """One row per figure: each database's value, baseline and ratio side by side."""
    kinds = list(columns)
    names = list(dict.fromkeys(r[0] for rows in columns.values() for r in rows))
    by = {kind: {r[0]: r for r in rows} for kind, rows in columns.items()}
    width = max(len(n) for n in names)
    head = "".join(f"  {kind + ' ours':>16} {'baseline':>10} {'ratio':>6} {'result':>6}" for kind in kinds)
    print(f"\n{'measure':<{width}}{head}  target")
    for name in names:
        cells, target = "", ""
        for kind in kinds:
            row = by[kind].get(name)
            if row is None:
                cells += f"  {'-':>16} {'':>10} {'':>6} {'':>6}"
                continue
            _, ours, baseline, ratio, target, verdict = row
            ratio_text = f"{ratio:.2f}" if ratio is not None else ""
            cells += f"  {ours:>16} {baseline:>10} {ratio_text:>6} {verdict:>6}"
        print(f"{name:<{width}}{cells}  {target}")
    missed = sorted({f"{r[0].strip()} [{kind}]" for kind, rows in columns.items() for r in rows if r[5] == "MISSED"})
    if missed:
        print("\nmissed targets: " + "; ".join(missed))


if __name__ == "__main__":
    main()
