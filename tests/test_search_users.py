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
    answer = api.get(f"/api/search?q={q}&limit=50").get_json()["results"]
    return [(r["kind"], r.get("messageId"), r["rank"]) for r in answer]


def test_another_users_flood_hides_nothing_and_changes_no_rank(api, other_api):
    mine(other_api)
    alone = results(other_api, "deploy")
    assert len(alone) == 3  # the session's title and both messages
    flood(api, "deploy", 3000)  # newer than all of the other user's rows
    assert results(other_api, "deploy") == alone
    assert all(r[0] != "message" or r[1] is not None for r in alone)
    # And the flooding user sees only theirs.
    assert len(results(api, "deploy")) == 50 and not {r[1] for r in results(api, "deploy")} & {r[1] for r in alone}
