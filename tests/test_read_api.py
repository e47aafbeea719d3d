import pytest
import time

pytestmark = pytest.mark.both_databases


def test_list_is_newest_updated_first_with_source(api):
    api.post("/sync/session", {"externalId": "a", "source": "claude-code"})
    api.post("/sync/session", {"externalId": "b", "source": "opencode"})
    api.post("/sync/session", {"externalId": "c"})
    time.sleep(0.002)  # updatedAt has millisecond resolution
    api.post("/sync/session", {"externalId": "a", "title": "touched last"})
    sessions = api.get("/api/sessions").get_json()["sessions"]
    assert [s["externalId"] for s in sessions][0] == "a"
    assert {s["externalId"]: s["source"] for s in sessions} == {"a": "claude-code", "b": "opencode", "c": None}
    expected = {"id", "externalId", "source", "title", "projectPath", "projectName", "model", "provider",
                "promptTokens", "completionTokens", "totalTokens", "cost", "durationMs", "messageCount",
                "createdAt", "updatedAt"}
    assert expected <= set(sessions[0])


def test_list_limit(api):
    for i in range(5):
        api.post("/sync/session", {"externalId": f"s{i}"})
    assert len(api.get("/api/sessions?limit=2").get_json()["sessions"]) == 2
    for bad in ("0", "501", "x"):
        response = api.get(f"/api/sessions?limit={bad}")
        assert response.status_code == 400 and "limit" in response.get_json()["fields"]


def test_get_by_id_or_external_id(api):
    session_id = api.post("/sync/session", {"externalId": "ext-1"}).get_json()["sessionId"]
    assert api.session(session_id)["session"]["externalId"] == "ext-1"
    assert api.session("ext-1")["session"]["id"] == session_id


def test_get_unknown_is_404_and_missing_id_400(api):
    assert api.get("/api/sessions/get?id=nope").status_code == 404
    assert api.get("/api/sessions/get?id=999999").status_code == 404
    response = api.get("/api/sessions/get")
    assert response.status_code == 400 and "id" in response.get_json()["fields"]


def test_sessions_list_for_opencode_sync_all(api):
    for ext in ("x", "y"):
        api.post("/sync/session", {"externalId": ext})
    assert api.get("/sync/sessions/list").get_json() == {"sessionIds": ["x", "y"]}


def test_unicode_digits_are_not_ids(api):
    api.post("/sync/session", {"externalId": "³"})
    assert api.session("³")["session"]["externalId"] == "³"
    assert api.get("/api/sessions/get?id=٣").status_code == 404


def test_get_takes_only_the_id(api):
    api.post("/sync/session", {"externalId": "only-id"})
    response = api.get("/api/sessions/get?id=only-id&format=json")
    assert response.status_code == 400 and "format" in response.get_json()["fields"]
