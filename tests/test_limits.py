"""Bounds that keep one client from hurting the others: batch size and its error report,
large batches written in chunks, a locked database answered 503, slow clients."""

import json
import sqlite3
import threading
import time
import urllib.request

import pytest

from opensync_lite import create_app, db
MAX_BATCH_ITEMS = 10_000  # schemas.MAX_BATCH_ITEMS, stated here so the test reads alone

from conftest import Api, LiveServer, make_key, rows, snapshot

# Timed against other load (slow clients, a large batch, the writer queue): run alone, after the
# parallel pass of `make test`.
pytestmark = pytest.mark.alone


def test_a_batch_of_invalid_items_answers_the_first_errors_and_their_count(api, db_path):
    body = {"messages": [{}] * 5000 + [{"sessionExternalId": "s", "externalId": "m", "role": "user"}]}
    response = api.post("/sync/batch", body)
    answer = response.get_json()
    assert response.status_code == 200 and answer["messages"] == 1
    assert answer["errorCount"] == 5000 and len(answer["errors"]) == 100
    assert [e["index"] for e in answer["errors"]] == list(range(100))
    assert len(response.data) < 40_000  # the request was ~15 KB; the answer stays of its order
    assert rows(db_path, "SELECT external_id FROM messages") == [("m",)]


def test_a_batch_over_the_item_limit_is_refused_naming_the_limit(api, db_path):
    before = snapshot(db_path)
    started = time.perf_counter()
    response = api.post("/sync/batch", {"sessions": [{}] * 10, "messages": [{}] * MAX_BATCH_ITEMS})
    assert response.status_code == 400
    answer = response.get_json()
    assert "messages" in answer["fields"] and str(MAX_BATCH_ITEMS) in json.dumps(answer["fields"])
    assert time.perf_counter() - started < 2
    assert snapshot(db_path) == before
    assert api.post("/sync/batch", {"messages": [{}] * 10}).get_json()["errorCount"] == 10


def test_a_locked_database_answers_503_with_retry_after(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2)
    path = str(tmp_path / "opensync.db")
    app = create_app({"OPENSYNC_DB": path, "TESTING": True})
    api = Api(app.test_client(), make_key(app))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        response = api.post("/sync/session", {"externalId": "s"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"].isdigit() and "busy" in response.get_json()["error"]
    assert api.post("/sync/session", {"externalId": "s"}).status_code == 200


def _post(url, key, path, body, timeout=60):
    request = urllib.request.Request(url + path, json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_a_large_batch_does_not_lock_out_another_users_writes(tmp_path):
    """Two worker processes: while one writes the largest batch a client may send, the other
    keeps writing another user's sessions, each within a short wait and never a 500."""
    path = str(tmp_path / "opensync.db")
    server = LiveServer(path, args=["--workers", "2", "--quiet"])
    try:
        big, small = server.create_key("big"), server.create_key("small")
        text = "x" * 600
        batch = {"messages": [{"sessionExternalId": f"b{i % 20}", "externalId": f"m{i}", "role": "assistant",
                               "textContent": text, "parts": [{"type": "text", "content": text}]}
                              for i in range(MAX_BATCH_ITEMS)]}
        answer = {}
        writer = threading.Thread(target=lambda: answer.setdefault("status", _post(server.url, big, "/sync/batch", batch)))
        writer.start()
        statuses, waits = [], []
        while writer.is_alive():
            started = time.perf_counter()
            statuses.append(_post(server.url, small, "/sync/session", {"externalId": f"s{len(statuses)}"}))
            waits.append(time.perf_counter() - started)
        writer.join()
        assert answer["status"] == 200
        assert len(statuses) >= 3 and set(statuses) == {200}, statuses
        assert max(waits) < 1, waits
        assert rows(path, "SELECT COUNT(*) FROM messages") == [(MAX_BATCH_ITEMS,)]
    finally:
        server.stop()


def _get(url, path, key=None, timeout=5):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=timeout) as response:
        return response.status, time.perf_counter() - started


def test_slow_clients_neither_fill_the_server_nor_keep_their_connections(db_path):
    """150 connections that trickle a body a byte at a time: /health and a signed-in request
    still answer at once, and each trickler is cut off once its request is overdue."""
    import socket

    server = LiveServer(db_path, args=["--read-timeout", "4", "--quiet"])
    try:
        key = server.create_key()
        host, port = "127.0.0.1", server.port
        slow = []
        for _ in range(150):
            s = socket.create_connection((host, port))
            s.sendall(b"POST /sync/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n{")
            slow.append(s)
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.5):
                for s in slow:
                    try:
                        s.send(b" ")
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        try:
            status, took = _get(server.url, "/health")
            assert status == 200 and took < 1, took
            status, took = _get(server.url, "/api/sessions", key)
            assert status == 200 and took < 1, took
            time.sleep(6.5)  # past the read time-out (4 s) and a maintenance turn
            closed = 0
            for s in slow:
                s.settimeout(1)
                try:
                    closed += s.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed == len(slow)
        finally:
            stop.set()
            for s in slow:
                s.close()
    finally:
        server.stop()


def test_serve_help_names_the_connection_settings():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "opensync_lite.cli", "serve", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for option, env in (("--connection-limit", "OPENSYNC_CONNECTION_LIMIT"), ("--channel-timeout", "OPENSYNC_CHANNEL_TIMEOUT"),
                        ("--read-timeout", "OPENSYNC_READ_TIMEOUT")):
        assert option in out and env in out


def test_a_worker_that_dies_is_replaced(db_path):
    import os
    import signal
    from pathlib import Path

    def children_of(pid):
        found = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and (p / "stat").read_text().rsplit(") ", 1)[1].split()[1] == str(pid):
                    found.append(int(p.name))
            except OSError:
                pass
        return sorted(found)

    def wait_for(condition, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if (value := condition()):
                return value
            time.sleep(0.1)
        return condition()

    server = LiveServer(db_path, args=["--workers", "2", "--quiet"])
    try:
        def two_workers(without=None):
            found = children_of(server.proc.pid)
            return found if len(found) == 2 and without not in found else None

        workers = wait_for(two_workers)
        assert workers and len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        replaced = wait_for(lambda: two_workers(without=workers[0]))
        assert replaced and workers[1] in replaced, replaced
        assert "was killed by signal 9 (SIGKILL); starting another" in wait_for(lambda: "SIGKILL" in server.logs() and server.logs())
        for _ in range(10):  # both workers answer (the kernel spreads connections over them)
            assert _get(server.url, "/health")[0] == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
