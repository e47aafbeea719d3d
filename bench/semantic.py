"""Semantic search figures (not part of the tests): the relevance set's recall@5 and MRR per
search type, and, on a large generated history, embedding speed, the model's memory, and the
median time of semantic and hybrid queries.

    python bench/semantic.py relevance
    python bench/semantic.py speed --sessions 100000 [--db postgresql://...]
    python bench/semantic.py sync-impact   # /sync/* of a live serve with and without the job
"""

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import relevance_set  # noqa: E402
from conftest import make_key  # noqa: E402

from opensync_lite import create_app, db  # noqa: E402


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def relevance(args):
    from opensync_lite import queries
    from opensync_lite.semantic import encoder_for, worker

    path = args.db or str(Path(tempfile.mkdtemp()) / "relevance.db")
    app = create_app({"OPENSYNC_DB": path})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(app)}"}
    relevance_set.load(client, headers)
    with app.app_context():
        db.connect()
        worker.backfill(encoder_for(app.config))
        user_id = 1

        def search(kind, query):
            hits, _ = queries.search(user_id, query, limit=10, kind=kind)
            return [hit["external_id"] for hit in hits]

        table = relevance_set.evaluate(search)
    kinds = ("exact", "paraphrase", "misspelling", "all")
    print(f"{len(relevance_set.queries())} queries over {len(relevance_set.history())} sessions")
    print(f"{'':10}" + "".join(f"{k + ' R@5':>18}{'MRR':>7}" for k in kinds))
    for kind, row in table.items():
        print(f"{kind:10}" + "".join(f"{row[k][0]:>18.2f}{row[k][1]:>7.2f}" for k in kinds))
    return table


def speed(args):
    """A generated history of --sessions sessions (10 messages each: 5 turns) straight into the
    database, its vectors made by the encoder (timed on a sample, then copied for the rest:
    embedding 1M messages here would take most of an hour), then warm query medians."""
    import numpy as np

    from opensync_lite import queries
    from opensync_lite.semantic import encoder_for, store, worker

    sys.path.insert(0, str(HERE))
    from dataset import generate

    path = args.db or str(Path(tempfile.mkdtemp()) / "speed.db")
    app = create_app({"OPENSYNC_DB": path})
    before = rss_mb()
    with app.app_context():
        db.connect()
        from opensync_lite import auth
        user_id = auth.get_or_create_user("local").id
        reuse = args.db and store.Embedding.select().exists()  # a --db filled by an earlier run
        t = time.perf_counter()
        if not reuse:
            generate(path, user_id, sessions=args.sessions, messages_per_session=10)
        print(f"generated {args.sessions} sessions / {args.sessions * 10} messages in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        encoder = encoder_for(app.config)
        print(f"model loaded in {time.perf_counter() - t:.1f} s; RSS +{rss_mb() - before:.0f} MB (peak, process {rss_mb():.0f} MB)")
        # Embedding speed: the real job on a sample of sessions.
        sample = store.pending(encoder.name, args.sample) if not reuse else []
        counts = worker.Counts()
        t = time.perf_counter()
        worker.embed_sessions(encoder, sample, counts)
        seconds = time.perf_counter() - t
        print(f"embedding: {counts.messages / max(seconds, 1e-9):.0f} messages/s ({counts.texts / max(seconds, 1e-9):.0f} texts/s, "
              f"{counts.sessions} sessions) on one thread")
        # The rest: the sample's vectors, jittered, so the scan has its full size.
        rows = list(store.Embedding.select(store.Embedding.message, store.Embedding.vector).limit(50_000).tuples())
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f2").reshape(len(rows), -1).astype(np.float32)
        rng = np.random.default_rng(1)
        remaining = [] if reuse else store.pending(encoder.name, 10**9)
        t = time.perf_counter()
        from opensync_lite.models import Message
        for start in range(0, len(remaining), 2000):
            chunk = remaining[start:start + 2000]
            firsts = {}
            for message_id, session_id in (Message.select(Message.id, Message.session)
                                           .where(Message.session.in_([s[0] for s in chunk]), Message.role == "user")
                                           .tuples()):
                firsts.setdefault(session_id, []).append(message_id)
            with db.write_transaction():
                batch = []
                for session in chunk:
                    for message_id in [None] + firsts.get(session[0], []):
                        v = vectors[rng.integers(len(vectors))] + rng.normal(0, 0.02, vectors.shape[1]).astype(np.float32)
                        batch.append({"user": user_id, "session": session[0], "message": message_id,
                                      "model": encoder.name, "digest": "x", "vector": store.to_blob(v / np.linalg.norm(v))})
                for at in range(0, len(batch), 5000):
                    store.Embedding.insert_many(batch[at:at + 5000]).execute()
                store.EmbeddedSession.insert_many([{"session": s[0], "written_at": s[2], "model": encoder.name}
                                                   for s in chunk]).on_conflict_ignore().execute()
        vector_count = store.Embedding.select().count()
        print(f"stored {vector_count} vectors in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        found = store.matrix(db.database.obj, user_id, encoder.name, encoder.prefix)
        size = found.coarse.nbytes + (found.fine.nbytes if found.fine is not None else 0)
        print(f"matrix loaded in {time.perf_counter() - t:.1f} s: {found.size} rows, "
              f"{size / 2**20:.0f} MB; process RSS {rss_mb():.0f} MB")
        if found.fine is not None:  # how often the two-stage scan keeps the exact best rows
            kept = []
            for text in ("database migration fails", "tests flaky in CI", "memory leak in the server", "dark mode"):
                q = encoder.encode([text])[0]
                exact = set(np.argsort(-(found.fine[:found.size].astype(np.float32) @ q))[:20].tolist())
                kept.append(len(exact & {i for _, i in found.best(q, 20)}) / 20)
            print(f"two-stage scan ({found.prefix} of {found.fine.shape[1]} dimensions, then re-rank): "
                  f"{100 * statistics.mean(kept):.0f} % of the exact best 20 rows kept")
        words = ["database migration fails", "tests flaky in CI", "memory leak in the server", "dark mode",
                 "fix the login", "slow query on orders", "deploy the container", "refactor the parser"]
        for kind in ("fulltext", "semantic", "hybrid"):
            times = []
            for n in range(args.queries):
                t = time.perf_counter()
                queries.search(user_id, words[n % len(words)], limit=20, kind=kind)
                times.append((time.perf_counter() - t) * 1000)
            print(f"{kind:9} median {statistics.median(times[1:]):.0f} ms, p90 "
                  f"{sorted(times)[int(len(times) * 0.9)]:.0f} ms over {len(times)} queries")


def sync_impact(args):
    """Requests per second of /sync/session + /sync/message from 4 client threads against a
    live `serve`, with the background job idle (--no-embed) and busy embedding a backlog."""
    import json
    import threading
    import urllib.request

    from conftest import LiveServer
    from dataset import generate

    from opensync_lite import auth

    def run(embed):
        path = str(Path(tempfile.mkdtemp()) / "impact.db")
        app = create_app({"OPENSYNC_DB": path})
        with app.app_context():
            user_id = auth.get_or_create_user("local").id
        app.extensions["opensync"].close()
        generate(path, user_id, sessions=args.backlog, messages_per_session=10)  # a backlog to embed
        server = LiveServer(path, args=["--quiet"] + ([] if embed else ["--no-embed"]))
        key = server.create_key()
        time.sleep(8)  # the model loaded and the job under way
        times, lock = [], threading.Lock()

        def client(n):
            for i in range(args.requests):
                eid = f"impact-{n}-{i}"
                for path_, body in (("/sync/session", {"externalId": eid, "title": f"session {i}"}),
                                    ("/sync/message", {"sessionExternalId": eid, "externalId": "m", "role": "user",
                                                       "textContent": "please fix the failing build " * 5})):
                    request = urllib.request.Request(server.url + path_, data=json.dumps(body).encode(), headers={
                        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
                    t = time.perf_counter()
                    urllib.request.urlopen(request, timeout=30).read()
                    with lock:
                        times.append(time.perf_counter() - t)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        embedded = relevance_rows(path)
        server.stop()
        return len(times) / wall, statistics.median(times) * 1000, embedded

    idle = run(False)
    busy = run(True)
    print(f"/sync/* with the job off: {idle[0]:.0f} requests/s, median {idle[1]:.1f} ms")
    print(f"/sync/* while embedding:  {busy[0]:.0f} requests/s, median {busy[1]:.1f} ms "
          f"({busy[2]} sessions embedded meanwhile); throughput {100 * (busy[0] / idle[0] - 1):+.0f} %")


def relevance_rows(path):
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM embedded_sessions").fetchone()[0]
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("relevance", "speed", "sync-impact"))
    parser.add_argument("--backlog", type=int, default=5000, help="sessions waiting to be embedded (sync-impact)")
    parser.add_argument("--requests", type=int, default=150, help="per client thread (sync-impact)")
    parser.add_argument("--db")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=300, help="sessions embedded for real (speed)")
    parser.add_argument("--queries", type=int, default=21)
    args = parser.parse_args()
    {"relevance": relevance, "speed": speed, "sync-impact": sync_impact}[args.what](args)


if __name__ == "__main__":
    main()
