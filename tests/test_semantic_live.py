"""Embedding in the background of a live `serve` as a sync arrives, and `opensync-lite embed`
backfilling a store filled before (its summary, a second run with nothing to do)."""

import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from opensync_lite import create_app

from conftest import CLI, LiveServer, make_key, rows


def call(url, path, key, body=None, **params):
    """(status, JSON) of a GET (``params``) or POST (``body``) with the key."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}?{urllib.parse.urlencode(params)}", data=data, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(str(tmp_path_factory.mktemp("live") / "opensync.db"))
    yield live
    live.stop()


def test_a_live_server_embeds_what_a_sync_sends(server):
    key = server.create_key()
    body = {"externalId": "live-1", "title": "Segfault in the thumbnail generator", "source": "opencode"}
    assert call(server.url, "/sync/session", key, body)[0] == 200
    message = {"sessionExternalId": "live-1", "externalId": "m1", "role": "user",
               "textContent": "The image resizer crashes with SIGSEGV on palette PNG files"}
    assert call(server.url, "/sync/message", key, message)[0] == 200
    deadline, found = time.monotonic() + 30, []
    while time.monotonic() < deadline and not found:
        status, answer = call(server.url, "/api/search", key, q="picture preview service crashing", type="semantic")
        assert status == 200, answer
        found = answer["results"]
        time.sleep(0.3)
    assert [hit["sessionId"] for hit in found][:1] and found[0]["title"] == "Segfault in the thumbnail generator"
    assert rows(server.db_path, "SELECT COUNT(*) FROM embedded_sessions") == [(1,)]


def test_embed_backfills_a_store_and_then_has_nothing_to_do(tmp_path):
    path = str(tmp_path / "opensync.db")
    app = create_app({"OPENSYNC_DB": path})
    client, headers = app.test_client(), {"Authorization": f"Bearer {make_key(app)}"}
    for n in range(12):
        client.post("/sync/session", json={"externalId": f"s{n}", "title": f"Session {n}"}, headers=headers)
        client.post("/sync/message", json={"sessionExternalId": f"s{n}", "externalId": "m", "role": "user",
                                           "textContent": f"Please look at issue number {n}"}, headers=headers)
    app.extensions["opensync"].close()
    first = subprocess.run(CLI + ["embed", "--db", path], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "Embedded 12 sessions (24 texts for 12 messages) with wordllama-l2-supercat-256" in first.stdout
    assert rows(path, "SELECT COUNT(*), COUNT(DISTINCT session_id) FROM embeddings") == [(24, 12)]
    again = subprocess.run(CLI + ["embed", "--db", path, "--user", "local"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "Embedded 0 sessions" in again.stdout
