"""Many plugins writing at once through a real waitress server: nothing lost, nothing doubled,
and "database is locked" never reaches a client."""

import threading
from collections import Counter

import workload

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


def test_two_server_processes_on_one_database_file(tmp_path):
    """Two `serve` processes on one file (WAL, BEGIN IMMEDIATE): sessions shared by both get
    every message once, and message counts stay exact."""
    from conftest import LiveServer

    first = LiveServer(str(tmp_path / "shared.db"))
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
