"""A deterministic mixed write workload for concurrency tests and the soak script: each
client thread sends sessions, messages and batches, to sessions of its own and to sessions
every thread shares, resending some ids; `expected` says what the database must then hold."""

import http.client
import json
import threading
import time
from collections import defaultdict

from conftest import rows

SHARED = 4


def plan(prefix, thread, count):
    """The (path, body) requests thread ``thread`` sends."""
    out = []
    for k in range(count):
        session = f"{prefix}shared-{k % SHARED}" if k % 3 == 0 else f"{prefix}t{thread}-s{k % 5}"
        kind = k % 10
        if kind < 2:
            out.append(("/sync/session", {"externalId": session, "source": "claude-code", "title": f"t{thread} k{k}",
                                          "promptTokens": k + 1, "completionTokens": k}))
        elif kind < 7:
            # Every 4th message resends an id this thread sent 10 requests earlier.
            m = k - 10 if k % 4 == 0 and k >= 10 and (k - 10) % 10 in range(2, 7) else k
            m_session = f"{prefix}shared-{m % SHARED}" if m % 3 == 0 else f"{prefix}t{thread}-s{m % 5}"
            out.append(("/sync/message", {"sessionExternalId": m_session, "externalId": f"{prefix}t{thread}-m{m}",
                                          "role": "assistant", "textContent": f"message {m} from thread {thread}",
                                          "source": "claude-code",
                                          "parts": [{"type": "text", "content": f"part of {m}"}]}))
        else:
            out.append(("/sync/batch", {
                "sessions": [{"externalId": session, "model": "m-1"}],
                "messages": [{"sessionExternalId": session, "externalId": f"{prefix}t{thread}-b{k}-{i}",
                              "role": "user", "textContent": f"batch {k} item {i}"} for i in range(5)],
            }))
    return out


def expected(plans):
    """{session externalId: set of message externalIds} the plans must leave behind."""
    sessions = defaultdict(set)
    for requests in plans:
        for path, body in requests:
            if path == "/sync/session":
                sessions[body["externalId"]]
            elif path == "/sync/message":
                sessions[body["sessionExternalId"]].add(body["externalId"])
            else:
                for s in body["sessions"]:
                    sessions[s["externalId"]]
                for m in body["messages"]:
                    sessions[m["sessionExternalId"]].add(m["externalId"])
    return sessions


def run(url, key, plans):
    """Send each plan from its own thread over one keep-alive connection.
    Returns (answers by status, seconds, acknowledged (path, body) list)."""
    host, port = url.removeprefix("http://").split(":")
    statuses = defaultdict(int)
    acked = []
    lock = threading.Lock()

    def worker(requests):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for path, body in requests:
            try:
                conn.request("POST", path, json.dumps(body), headers)
                response = conn.getresponse()
                answer = response.read()
                status = response.status
                if status == 200:
                    assert json.loads(answer)["ok"] is True
            except (OSError, http.client.HTTPException):
                status = "connection error"
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            with lock:
                statuses[status] += 1
                if status == 200:
                    acked.append((path, body))
        conn.close()

    threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(statuses), time.perf_counter() - began, acked


def stored(db_path, prefix):
    """{session externalId: [message externalIds]} and the sessions whose message_count is off."""
    pattern = prefix + "%"
    found_rows = rows(
        db_path,
        "SELECT s.external_id, m.external_id FROM sessions s LEFT JOIN messages m ON m.session_id = s.id"
        " WHERE s.external_id LIKE ?", (pattern,))
    miscounted = rows(
        db_path,
        "SELECT s.external_id FROM sessions s WHERE s.external_id LIKE ? AND s.message_count !="
        " (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)", (pattern,))
    found = defaultdict(list)
    for session, message in found_rows:
        if message is not None:
            found[session].append(message)
        else:
            found[session]
    return found, [s for (s,) in miscounted]


def lost_writes(want, found):
    """Acknowledged messages and sessions that are not in the database."""
    lost = [s for s in want if s not in found]
    for session, messages in want.items():
        lost += sorted(messages - set(found.get(session, ())))
    return lost
