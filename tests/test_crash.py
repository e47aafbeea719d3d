"""Kill the server at random moments: every write it acknowledged must survive, complete."""

import json
import random
import signal
import sqlite3
import threading
import time

import pytest

from conftest import LiveServer
import workload

ROUNDS = 6


def stored_messages(db_path):
    conn = sqlite3.connect(db_path)
    try:
        messages = {ext: (text, sid) for ext, text, sid in conn.execute(
            "SELECT m.external_id, m.text_content, s.external_id FROM messages m JOIN sessions s ON s.id = m.session_id")}
        parts = dict(conn.execute("SELECT m.external_id, COUNT(p.id) FROM messages m LEFT JOIN parts p ON p.message_id = m.id GROUP BY m.id"))
        sessions = {ext for (ext,) in conn.execute("SELECT external_id FROM sessions")}
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        fts = conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')") and "ok"
    finally:
        conn.close()
    return messages, parts, sessions, integrity, fts


def check_acknowledged(acked, db_path):
    messages, parts, sessions, integrity, fts = stored_messages(db_path)
    assert integrity == "ok" and fts == "ok"
    checked = 0
    for path, body in acked:
        if path == "/sync/session":
            assert body["externalId"] in sessions
            continue
        items = [body] if path == "/sync/message" else body["messages"]
        for item in items:
            text, session = messages[item["externalId"]]
            assert (text, session) == (item["textContent"], item["sessionExternalId"])
            assert parts[item["externalId"]] == len(item.get("parts", []))
            checked += 1
    return checked


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(20261125)
    db_path = str(tmp_path / "crash.db")
    all_acked, kills = [], 0
    for round_no in range(ROUNDS):
        server = LiveServer(db_path)
        key = server.create_key()
        plans = [workload.plan(f"k{round_no}-", t, 400) for t in range(4)]
        result = {}
        writer = threading.Thread(target=lambda: result.update(zip(("statuses", "seconds", "acked"),
                                                                   workload.run(server.url, key, plans))))
        writer.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        kills += 1
        writer.join()
        server.stop()
        assert result["statuses"].get(200, 0) > 0, result["statuses"]
        all_acked += result["acked"]
        # Restarted on the same file: everything acknowledged so far is there and whole.
        restarted = LiveServer(db_path)
        try:
            check_acknowledged(all_acked, db_path)
            assert restarted.proc.poll() is None
        finally:
            restarted.stop()
    assert kills == ROUNDS
    checked = check_acknowledged(all_acked, db_path)
    assert checked > 100
    print(f"{kills} SIGKILL rounds, {len(all_acked)} acknowledged requests, {checked} messages verified")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_finishes_requests_in_flight(tmp_path, signum):
    server = LiveServer(str(tmp_path / "term.db"))
    key = server.create_key()
    batch = {"messages": [{"sessionExternalId": "big", "externalId": f"m{i}", "role": "user",
                           "textContent": f"message {i} " * 20, "parts": [{"type": "text", "content": str(i)}] * 3}
                          for i in range(6000)]}
    answer = {}

    def send():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("POST", "/sync/batch", json.dumps(batch), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        answer["status"], answer["body"] = response.status, json.loads(response.read())

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.3)
    assert sender.is_alive(), "the batch should still be in flight when the signal comes"
    server.proc.send_signal(signum)
    sender.join(60)
    assert server.proc.wait(30) == 0
    assert answer["status"] == 200 and answer["body"]["messages"] == 6000
    assert "finishing requests in flight" in server.logs()
    conn = sqlite3.connect(server.db_path)
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 6000
    conn.close()
    server.stop()
