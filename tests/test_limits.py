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
