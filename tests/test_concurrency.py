"""Many plugins writing at once through a real waitress server: nothing lost, nothing doubled,
and "database is locked" never reaches a client."""

import threading
from collections import Counter

import pytest

import workload
from conftest import rows

pytestmark = pytest.mark.both_databases

THREADS, REQUESTS = 16, 300


def test_concurrent_mixed_writes(live_server):
    key = live_server.create_key()
    plans = [workload.plan("c-", t, REQUESTS) for t in range(THREADS)]
    statuses, seconds, acked = workload.run(live_server.url, key, plans)
    assert statuses == {200: THREADS * REQUESTS}, statuses

    want = workload.expected(plans)
    found, miscounted = workload.stored(live_server.db_path, "c-")
    assert workload.lost_writes(want, found) == []
    assert set(found) == set(want)
    for session, messages in found.items():
        duplicates = [m for m, n in Counter(messages).items() if n > 1]
        assert duplicates == [], session
        assert set(messages) == want[session], session
    assert miscounted == []
    print(f"{THREADS * REQUESTS} requests in {seconds:.1f} s ({THREADS * REQUESTS / seconds:.0f}/s), "
          f"{sum(len(m) for m in want.values())} messages in {len(want)} sessions")


def test_two_server_processes_on_one_database(db_path):
    """Two `serve` processes on one database (SQLite: WAL, BEGIN IMMEDIATE; PostgreSQL: a
    lock per user): sessions shared by both get every message once, and message counts stay
    exact."""
    from conftest import LiveServer

    first = LiveServer(db_path)
    second = LiveServer(first.db_path)
    try:
        key = first.create_key()
        plans = {server: [workload.plan("two-", t + 4 * i, 150) for t in range(4)]
                 for i, server in enumerate((first, second))}
        answers = {}
        runners = [threading.Thread(target=lambda s=s: answers.update({s: workload.run(s.url, key, plans[s])}))
                   for s in plans]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    finally:
        first.stop()
        second.stop()
    for server, (statuses, _, _) in answers.items():
        assert statuses == {200: 4 * 150}, statuses
    want = workload.expected([p for server_plans in plans.values() for p in server_plans])
    found, miscounted = workload.stored(first.db_path, "two-")
    assert workload.lost_writes(want, found) == [] and set(found) == set(want)
    for session, messages in found.items():
        assert sorted(messages) == sorted(want[session]), session  # each once
    assert miscounted == []


def test_serve_with_two_worker_processes(db_path):
    """`serve --workers 2`: two processes accept on one port; every write lands once, the
    counts stay exact, and SIGTERM stops them all cleanly."""
    import os
    import signal
    from pathlib import Path

    from conftest import LiveServer

    import time

    def children_of(pid):
        found = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and (p / "stat").read_text().rsplit(") ", 1)[1].split()[1] == str(pid):
                    found.append(p)
            except OSError:
                pass  # gone meanwhile
        return found

    server = LiveServer(db_path, args=["--workers", "2", "--quiet"])
    try:
        deadline = time.time() + 10
        while len(children := children_of(server.proc.pid)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(children) == 2
        key = server.create_key()
        plans = [workload.plan("w-", t, 150) for t in range(8)]
        statuses, _, _ = workload.run(server.url, key, plans)
        assert statuses == {200: 8 * 150}, statuses
        want = workload.expected(plans)
        found, miscounted = workload.stored(server.db_path, "w-")
        assert workload.lost_writes(want, found) == [] and miscounted == []
        for session, messages in found.items():
            assert sorted(messages) == sorted(want[session]), session
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        assert not any(os.path.exists(f"/proc/{p.name}") for p in children)
    finally:
        server.stop()


def test_every_write_moves_the_data_version_on_whoever_stamped_last(app, api, db_path):
    """Another server process may have stamped the user's latest write later than this
    process's clock reads (same millisecond, or a clock a little ahead): a write still moves
    the data version on, so no dashboard page is remembered past it."""
    from opensync_lite import queries

    api.post("/sync/session", {"externalId": "a"})
    (user_id, stamped) = rows(db_path, "SELECT user_id, written_at FROM sessions")[0]
    rows(db_path, "UPDATE sessions SET written_at = ?", (stamped + 60_000,))  # the other process
    with app.app_context():
        before = queries.data_version(user_id)
        api.post("/sync/message", {"sessionExternalId": "a", "externalId": "m", "role": "user"})
        after = queries.data_version(user_id)
    assert after != before
    assert rows(db_path, "SELECT written_at FROM sessions") == [(stamped + 60_001,)]
