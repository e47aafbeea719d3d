"""Heavy requests cannot starve the server: the evals preview reads a bounded part of a large
history and says so, and one user runs at most two exports at once (then 429 with
Retry-After) while other users' requests answer promptly, over a real waitress server."""

import time

import pytest

from factories import bulk_sessions

pytestmark = pytest.mark.both_databases

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
