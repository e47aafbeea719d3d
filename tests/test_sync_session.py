import json

import pytest
from conftest import rows

pytestmark = pytest.mark.both_databases


def test_create_returns_id_and_stores_fields(api, db_path):
    body = {
        "externalId": "s1",
        "source": "opencode",
        "title": "Refactor",
        "projectPath": "/p/app",
        "projectName": "app",
        "model": "gpt-5",
        "provider": "openai",
        "promptTokens": 100,
        "completionTokens": 20,
        "cost": 0.5,
        "durationMs": 1234,
        "messageCount": 3,
        "toolCallCount": 1,
        "endReason": "exit",
    }
    response = api.post("/sync/session", body)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ok"] is True and isinstance(answer["sessionId"], str)
    session = api.session("s1")["session"]
    assert session["id"] == answer["sessionId"]
    for key, value in body.items():
        if key != "messageCount":
            assert session[key] == value, key
    assert session["totalTokens"] == 120
    assert session["messageCount"] == 0 and session["extra"] == {"messageCount": 3}


def test_session_id_is_an_alias_of_external_id(api):
    assert api.post("/sync/session", {"sessionId": "alias-1", "title": "t"}).status_code == 200
    assert api.session("alias-1")["session"]["title"] == "t"


def test_missing_external_id_is_400(api, db_path):
    response = api.post("/sync/session", {"title": "no id"})
    assert response.status_code == 400
    assert "externalId" in response.get_json()["fields"]
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(0,)]


def test_upsert_does_not_duplicate(api, db_path):
    first = api.post("/sync/session", {"externalId": "s"}).get_json()["sessionId"]
    second = api.post("/sync/session", {"externalId": "s", "title": "x"}).get_json()["sessionId"]
    assert first == second
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_partial_update_keeps_absent_fields(api):
    # The claude-code plugin's sequence: start, first prompt, stop.
    api.post("/sync/session", {"externalId": "s", "source": "claude-code", "projectPath": "/w/demo", "projectName": "demo", "model": "m1"})
    api.post("/sync/session", {"externalId": "s", "title": "Fix it"})
    api.post("/sync/session", {"externalId": "s", "promptTokens": 10, "completionTokens": 5, "cost": 0.1})
    session = api.session("s")["session"]
    assert session["source"] == "claude-code"
    assert (session["projectPath"], session["projectName"], session["model"]) == ("/w/demo", "demo", "m1")
    assert session["title"] == "Fix it"
    assert (session["promptTokens"], session["completionTokens"], session["totalTokens"]) == (10, 5, 15)


def test_source_is_set_on_create_and_changed_only_when_sent(api):
    api.post("/sync/session", {"externalId": "s", "source": "cursor"})
    api.post("/sync/session", {"externalId": "s", "title": "no source here"})
    api.post("/sync/session", {"externalId": "s", "source": None, "title": "null source"})
    assert api.session("s")["session"]["source"] == "cursor"
    api.post("/sync/session", {"externalId": "s", "source": "opencode"})
    assert api.session("s")["session"]["source"] == "opencode"


def test_legacy_session_without_source_is_null(api):
    api.post("/sync/session", {"externalId": "legacy"})
    assert api.session("legacy")["session"]["source"] is None


def test_zero_tokens_never_overwrite_stored_counts(api):
    api.post("/sync/session", {"externalId": "s", "promptTokens": 900, "completionTokens": 80, "cost": 0.2})
    # SessionEnd without a transcript sends zeros.
    api.post("/sync/session", {"externalId": "s", "promptTokens": 0, "completionTokens": 0, "cost": 0, "endReason": "exit"})
    session = api.session("s")["session"]
    assert (session["promptTokens"], session["completionTokens"], session["totalTokens"]) == (900, 80, 980)
    assert session["cost"] == 0.2 and session["endReason"] == "exit"
    # A larger later count replaces (the plugin sends running totals).
    api.post("/sync/session", {"externalId": "s", "promptTokens": 1000})
    session = api.session("s")["session"]
    assert (session["promptTokens"], session["totalTokens"]) == (1000, 1080)


def test_unknown_keys_are_kept_in_extra_and_merged(api):
    api.post("/sync/session", {"externalId": "s", "gitBranch": "main", "permissionMode": "plan"})
    api.post("/sync/session", {"externalId": "s", "gitBranch": "dev", "thinkingEnabled": True})
    extra = api.session("s")["session"]["extra"]
    assert extra == {"gitBranch": "dev", "permissionMode": "plan", "thinkingEnabled": True}


def test_created_at_is_used_only_on_create(api):
    api.post("/sync/session", {"externalId": "a", "createdAt": 1_700_000_000_000})
    api.post("/sync/session", {"externalId": "b", "createdAt": "2024-01-02T03:04:05Z"})
    api.post("/sync/session", {"externalId": "c", "createdAt": "2024-01-02T03:04:05.500+02:00"})
    assert api.session("a")["session"]["createdAt"] == 1_700_000_000_000
    assert api.session("b")["session"]["createdAt"] == 1_704_164_645_000
    assert api.session("c")["session"]["createdAt"] == 1_704_157_445_500
    api.post("/sync/session", {"externalId": "a", "createdAt": 1_800_000_000_000})
    assert api.session("a")["session"]["createdAt"] == 1_700_000_000_000


def test_updated_at_moves_forward(api):
    api.post("/sync/session", {"externalId": "s"})
    before = api.session("s")["session"]["updatedAt"]
    api.post("/sync/session", {"externalId": "s", "title": "later"})
    assert api.session("s")["session"]["updatedAt"] >= before


def test_extra_keeps_any_json_string_exactly(api):
    odd = {"nul\x00key": "a\x00b", "surrogate": "\ud800", "emoji": "😀", "nested": [{"deep": ["\udfff"]}]}
    assert api.post("/sync/session", {"externalId": "odd", **odd}).status_code == 200
    assert api.session("odd")["session"]["extra"] == odd


def test_created_at_of_zero_is_kept(api):
    api.post("/sync/session", {"externalId": "epoch", "createdAt": 0})
    assert api.session("epoch")["session"]["createdAt"] == 0


def test_token_kinds_parent_and_a_clients_own_total(api):
    api.post("/sync/session", {"externalId": "k", "promptTokens": 600, "completionTokens": 40, "inputTokens": 100,
                               "outputTokens": 40, "cacheWriteTokens": 200, "cacheReadTokens": 300})
    session = api.session("k")["session"]
    assert (session["inputTokens"], session["outputTokens"], session["cacheWriteTokens"], session["cacheReadTokens"]) == (
        100, 40, 200, 300)
    assert session["totalTokens"] == 640
    stats = api.get("/api/stats").get_json()
    assert (stats["cacheWriteTokens"], stats["cacheReadTokens"]) == (200, 300)
    # The pi plugin sends only a total: it counts, and never goes below prompt + completion.
    api.post("/sync/session", {"externalId": "pi", "source": "pi", "totalTokens": 5000, "messageCount": 3})
    assert api.session("pi")["session"]["totalTokens"] == 5000
    api.post("/sync/session", {"externalId": "k", "totalTokens": 10})
    assert api.session("k")["session"]["totalTokens"] == 640
    assert api.get("/api/stats").get_json()["totalTokens"] == 5640
    api.post("/sync/session", {"externalId": "child", "parentExternalId": "k", "title": "subagent"})
    assert api.session("child")["session"]["parentExternalId"] == "k"
    assert [s["externalId"] for s in api.get("/api/sessions?parent=k").get_json()["sessions"]] == ["child"]


def test_a_keys_default_source_fills_only_what_names_none(app, client):
    from conftest import Api
    from opensync_lite import auth

    with app.app_context():
        key, _ = auth.create_key("local", "oc", "opencode")
    api = Api(client, key)
    api.post("/sync/session", {"externalId": "plain"})
    api.post("/sync/session", {"externalId": "named", "source": "cursor"})
    api.post("/sync/message", {"sessionExternalId": "by-message", "externalId": "m", "role": "user"})
    api.post("/sync/batch", {"sessions": [{"externalId": "in-batch"}], "messages": []})
    got = {s: api.session(s)["session"]["source"] for s in ("plain", "named", "by-message", "in-batch")}
    assert got == {"plain": "opencode", "named": "cursor", "by-message": "opencode", "in-batch": "opencode"}


def test_a_title_cut_inside_an_emoji_is_repaired_and_stored(api, caplog):
    """claude-code-sync cuts titles at 80 UTF-16 units: through an emoji's surrogate pair."""
    title = "x" * 79 + "\ud83d"  # the first half of 😀
    raw = json.dumps({"externalId": "cut", "title": title, "projectName": "p\udc00"}).encode()
    with caplog.at_level("WARNING", logger="opensync_lite.repairs"):
        response = api.post("/sync/session", data=raw, content_type="application/json")
    assert response.status_code == 200, response.get_json()
    session = api.session("cut")["session"]
    assert session["title"] == "x" * 79 + "\ufffd" and session["projectName"] == "p\ufffd"
    assert sum("lone UTF-16 surrogate" in r.getMessage() for r in caplog.records) == 2
    # An id is never repaired: two different ids must not become one.
    bad_id = json.dumps({"externalId": "id\ud83d"}).encode()
    response = api.post("/sync/session", data=bad_id, content_type="application/json")
    assert response.status_code == 400 and "externalId" in response.get_json()["fields"]
    message = json.dumps({"sessionExternalId": "cut", "externalId": "m", "role": "user",
                          "textContent": "hi \ud83d"}).encode()
    assert api.post("/sync/message", data=message, content_type="application/json").status_code == 200
    assert api.session("cut")["messages"][0]["textContent"] == "hi \ufffd"
