"""Search sees only the caller's data: another user's flood of a word neither hides the
caller's matches nor changes their order or ranks (no statistics across users)."""

import pytest

pytestmark = pytest.mark.both_databases


def flood(api, word, n):
    api.post("/sync/batch", {"messages": [
        {"sessionExternalId": f"flood{i % 30}", "externalId": f"f{i}", "role": "assistant",
         "textContent": f"{word} step {i}: {word} again"} for i in range(n)]})


def mine(api):
    api.post("/sync/session", {"externalId": "b1", "title": "Deploy notes"})
    api.post("/sync/message", {"sessionExternalId": "b1", "externalId": "old", "role": "user",
                               "textContent": "how do I deploy the worker", "createdAt": 1_000})
    api.post("/sync/message", {"sessionExternalId": "b1", "externalId": "older", "role": "assistant",
                               "textContent": "deploy with make deploy, then deploy the docs", "createdAt": 2_000})


def results(api, q):
    """Every match of every result: (session, kind, message, rank)."""
    answer = api.get(f"/api/search?q={q}&limit=50").get_json()["results"]
    return [(r["sessionId"], m["kind"], m.get("messageId"), m["rank"]) for r in answer for m in r["matches"]]


def test_another_users_flood_hides_nothing_and_changes_no_rank(api, other_api):
    mine(other_api)
    alone = results(other_api, "deploy")
    assert len(alone) == 3 and len({r[0] for r in alone}) == 1  # one session: its title and both messages
    flood(api, "deploy", 3000)  # newer than all of the other user's rows
    assert results(other_api, "deploy") == alone
    assert all(r[1] != "message" or r[2] is not None for r in alone)
    # And the flooding user sees only theirs: 30 sessions, their best three messages each.
    theirs = results(api, "deploy")
    assert len({r[0] for r in theirs}) == 30 and len(theirs) == 90
    assert not {r[0] for r in theirs} & {r[0] for r in alone} and not {r[2] for r in theirs} & {r[2] for r in alone}
