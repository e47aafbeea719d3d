"""Many plugins writing at once through a real waitress server: nothing lost, nothing doubled,
and "database is locked" never reaches a client."""

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
