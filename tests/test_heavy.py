"""Heavy requests cannot starve the server: the evals preview reads a bounded part of a large
history and says so, and one user runs at most two exports at once (then 429 with
Retry-After) while other users' requests answer promptly, over a real waitress server."""

import http.client
import re
import threading
import time

import pytest

from factories import bulk_sessions

# Timed against other users' requests: run alone, after the parallel pass of `make test`.
pytestmark = [pytest.mark.both_databases, pytest.mark.alone]

SESSIONS, MESSAGES = 1000, 50  # 50 000 messages: half a minute of reading and redacting, unbounded


@pytest.fixture
def large(app, api):
    """The api user's 1 000 sessions of 50 messages (25 answered turns each)."""
    bulk_sessions(app, "local", SESSIONS, MESSAGES)
    return api


def test_the_preview_of_a_large_history_is_quick_and_says_it_is_partial(large):
    started = time.perf_counter()
    response = large.get("/api/export/evals/preview?format=openai&granularity=turn")
    seconds = time.perf_counter() - started
    body = response.get_json()
    assert response.status_code == 200, body
    assert seconds < 4, seconds
    assert body["partial"] is True and body["sessions"] == body["of"] == SESSIONS
    assert 0 < body["scanned"] < SESSIONS
    # The cases are those of the sessions it read (the last one perhaps in part), and the
    # samples are the file's first cases.
    turns = MESSAGES // 2
    assert turns * (body["scanned"] - 1) < body["cases"] <= turns * body["scanned"]
    assert [s["metadata"]["externalId"] for s in body["samples"]] == ["bulk-0", "bulk-0"]
    assert body["samples"][1]["input"][-1]["content"] == "Question 2 of session 0: why does the parser stop early?"


def test_a_preview_within_its_budget_reads_everything(large):
    ids = [large.session(f"bulk-{i}")["session"]["id"] for i in (3, 1, 2)]
    body = large.get(f"/api/export/evals/preview?ids={','.join(ids)}&granularity=turn").get_json()
    assert (body["partial"], body["scanned"], body["of"], body["sessions"]) == (False, 3, 3, 3)
    assert body["cases"] == 3 * MESSAGES // 2


def test_one_session_longer_than_the_budget_is_read_in_part(app, api, monkeypatch):
    from opensync_lite import evals

    monkeypatch.setattr(evals, "PREVIEW_MESSAGES", 40, raising=False)
    bulk_sessions(app, "local", 1, 100, prefix="long")
    body = api.get("/api/export/evals/preview?granularity=turn").get_json()
    assert (body["partial"], body["scanned"], body["of"]) == (True, 1, 1)
    assert body["cases"] == 20  # the answered turns of its first 40 messages


# --- at most two heavy requests per user at once ----------------------------------------------

def _sign_in(client, key):
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"csrf": csrf, "key": key, "next": "/"}).status_code == 302


class Held:
    """A streamed download begun in a thread of its own (as a server runs each request), its
    first chunk received, and the rest read (``finish``) or dropped (``drop``) when told."""

    def __init__(self, get, path):
        self.begun, self.told, self.done = threading.Event(), threading.Event(), threading.Event()
        self.read = True
        self.thread = threading.Thread(target=self._run, args=(get, path))
        self.thread.start()
        assert self.begun.wait(30)

    def _run(self, get, path):
        response = get(path)
        self.status = response.status_code
        self.begun.set()
        self.told.wait(30)
        self.body = response.get_data(as_text=True) if self.read else None
        response.close()

    def finish(self, read=True):
        self.read = read
        self.told.set()
        self.thread.join(30)
        return self.body


def test_a_third_heavy_request_of_one_user_answers_429_until_one_ends(app, api, other_api):
    bulk_sessions(app, "local", 3, 4)
    browser = app.test_client()
    _sign_in(browser, api.headers["Authorization"].removeprefix("Bearer "))
    # Two streamed downloads, begun and not yet read to their end, hold the user's two slots.
    first, second = Held(api.get, "/api/export/evals?format=openai"), Held(browser.get, "/sessions/export.csv")
    assert (first.status, second.status) == (200, 200)
    for path in ("/api/export/evals/preview", "/api/export/evals", "/api/export/sessions", "/api/export?externalId=bulk-0"):
        refused = api.get(path)
        assert refused.status_code == 429, path
        assert int(refused.headers["Retry-After"]) > 0 and "try again" in refused.get_json()["error"]
    page = browser.get("/export/evals")
    assert page.status_code == 429 and page.mimetype == "text/html" and int(page.headers["Retry-After"]) > 0
    assert "try again" in page.get_data(as_text=True)
    # Other requests of this user, and another user's exports, are not held back.
    assert api.get("/api/sessions?limit=1").status_code == 200
    assert other_api.get("/api/export/evals/preview").status_code == 200
    # A download read to its end gives its slot back; so does one the server closes (the
    # client went away).
    assert first.finish().count("\n") == 6
    assert api.get("/api/export/evals/preview").get_json()["cases"] == 6
    assert browser.get("/export/evals").status_code == 200
    second.finish(read=False)
    third, fourth = Held(api.get, "/api/export/evals"), Held(api.get, "/api/export/sessions?format=json")
    assert (third.status, fourth.status) == (200, 200)
    assert api.get("/api/export/evals/preview").status_code == 429
    third.finish(read=False)
    fourth.finish(read=False)
    assert api.get("/api/export/evals/preview").status_code == 200


def _get(url, path, key=None, timeout=10):
    """(status, headers, seconds, close) of one GET on a fresh connection, its answer left
    unread until ``close()`` drops it."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
    except OSError:  # no answer within the time-out
        conn.close()
        return None, {}, float("inf"), lambda: None

    def close():  # the response may own the socket by now: close both
        response.close()
        conn.close()

    return response.status, dict(response.getheaders()), time.perf_counter() - started, close


def test_many_heavy_requests_of_one_user_leave_the_server_to_the_others(app, live_server):
    """Eight long evals downloads of one user at once on a real `serve` (eight threads): two
    run, six answer 429 at once with Retry-After, and another user's requests still answer
    promptly."""
    bulk_sessions(app, "local", SESSIONS, MESSAGES)
    alice, bob = live_server.create_key("local"), live_server.create_key("bob")
    answers, start = [], threading.Barrier(8)

    def download():
        start.wait()
        answers.append(_get(live_server.url, "/api/export/evals?format=openai&granularity=turn", alice, timeout=60))

    threads = [threading.Thread(target=download) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        others = [_get(live_server.url, "/health"), _get(live_server.url, "/api/sessions?limit=5", bob),
                  _get(live_server.url, "/api/export/evals/preview", bob)]
        for status, _, seconds, close in others:
            close()
            assert status == 200 and seconds < 2, (status, seconds)
        statuses = sorted(status for status, _, _, _ in answers)
        assert statuses == [200] * 2 + [429] * 6, statuses
        assert all(int(headers["Retry-After"]) > 0 for status, headers, _, _ in answers if status == 429)
        # Her own light requests are not held back either.
        status, _, seconds, close = _get(live_server.url, "/api/sessions?limit=5", alice)
        close()
        assert status == 200 and seconds < 2, (status, seconds)
    finally:
        for _, _, _, close in answers:
            close()
    # Her two downloads dropped, their slots come back as soon as the server notices.
    deadline = time.time() + 30
    while True:
        status, _, _, close = _get(live_server.url, "/api/export/evals/preview", alice)
        close()
        if status == 200:
            break
        assert status == 429 and time.time() < deadline, status
        time.sleep(0.2)
