import pytest
from conftest import rows

pytestmark = pytest.mark.both_databases

TOOL_PARTS = [
    {"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": "ls"}}},
    {"type": "tool-result", "content": "a.txt"},
]


def test_message_is_stored_with_parts(api):
    api.post("/sync/session", {"externalId": "s", "source": "claude-code"})
    response = api.post(
        "/sync/message",
        {"sessionExternalId": "s", "externalId": "t1", "role": "assistant", "source": "claude-code", "parts": TOOL_PARTS},
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ok"] is True and isinstance(answer["messageId"], str)
    (message,) = api.session("s")["messages"]
    assert message["id"] == answer["messageId"]
    assert message["role"] == "assistant" and message["textContent"] == ""
    assert message["parts"] == TOOL_PARTS


def test_message_fields_round_trip(api):
    body = {
        "sessionExternalId": "s",
        "externalId": "m",
        "role": "assistant",
        "textContent": "héllo <b>x</b> 'q' \"d\" ✓",
        "model": "claude-sonnet-4",
        "promptTokens": 7,
        "completionTokens": 3,
        "durationMs": 42,
        "createdAt": 1_700_000_000_123,
    }
    api.post("/sync/message", body)
    (message,) = api.session("s")["messages"]
    for key in ("role", "textContent", "model", "promptTokens", "completionTokens", "durationMs", "createdAt"):
        assert message[key] == body[key], key
    assert message["externalId"] == "m"


def test_message_for_unknown_session_creates_it_with_source(api):
    api.post("/sync/message", {"sessionExternalId": "new", "externalId": "m", "role": "user", "textContent": "hi", "source": "claude-code"})
    session = api.session("new")["session"]
    assert session["source"] == "claude-code" and session["messageCount"] == 1
    # A later /sync/session fills it in; the source stays.
    api.post("/sync/session", {"externalId": "new", "title": "Filled in", "model": "m"})
    session = api.session("new")["session"]
    assert (session["title"], session["source"]) == ("Filled in", "claude-code")


def test_message_source_does_not_override_a_session_source(api):
    api.post("/sync/session", {"externalId": "s", "source": "cursor"})
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m", "role": "user", "source": "opencode"})
    assert api.session("s")["session"]["source"] == "cursor"


def test_resend_replaces_text_and_parts_without_duplicating(api, db_path):
    base = {"sessionExternalId": "s", "externalId": "m", "role": "assistant"}
    api.post("/sync/message", {**base, "textContent": "draft", "parts": TOOL_PARTS})
    first = api.session("s")["messages"][0]["id"]
    response = api.post("/sync/message", {**base, "textContent": "final", "parts": [{"type": "text", "content": "final"}]})
    assert response.get_json()["messageId"] == first
    (message,) = api.session("s")["messages"]
    assert message["textContent"] == "final"
    assert message["parts"] == [{"type": "text", "content": "final"}]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(1,)]
    assert rows(db_path, "SELECT COUNT(*) FROM parts") == [(1,)]


def test_a_resend_moves_the_session_and_the_data_version_on(api, app, db_path):
    from opensync_lite import queries

    base = {"sessionExternalId": "s", "externalId": "m", "role": "assistant"}
    api.post("/sync/message", {**base, "textContent": "draft"})
    before = api.session("s")["session"]["updatedAt"]
    ((user_id,),) = rows(db_path, "SELECT user_id FROM sessions")
    with app.app_context():
        version = queries.data_version(user_id)
    api.post("/sync/message", {**base, "textContent": "final"})
    assert api.session("s")["session"]["updatedAt"] > before
    with app.app_context():
        assert queries.data_version(user_id) != version
    # Through a batch too, parts only.
    before = api.session("s")["session"]["updatedAt"]
    api.post("/sync/batch", {"messages": [{**base, "parts": [{"type": "text", "content": "again"}]}]})
    assert api.session("s")["session"]["updatedAt"] > before


def test_message_tokens_are_not_added_to_session_totals(api):
    api.post("/sync/session", {"externalId": "s", "promptTokens": 100, "completionTokens": 10})
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m", "role": "assistant", "promptTokens": 50, "completionTokens": 5})
    session = api.session("s")["session"]
    assert (session["promptTokens"], session["completionTokens"], session["totalTokens"]) == (100, 10, 110)


def test_message_count_is_the_number_of_stored_messages(api):
    api.post("/sync/session", {"externalId": "s", "messageCount": 9})
    session = api.session("s")["session"]
    assert session["messageCount"] == 0  # no message stored yet
    assert session["extra"] == {"messageCount": 9}  # the client's own figure is kept
    for i in range(3):
        api.post("/sync/message", {"sessionExternalId": "s", "externalId": f"m{i}", "role": "user"})
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m0", "role": "user", "textContent": "resend"})
    api.post("/sync/batch", {"messages": [{"sessionExternalId": "s", "externalId": f"m{i}"} for i in range(1, 5)]})
    api.post("/sync/session", {"externalId": "s", "messageCount": 9})
    assert api.session("s")["session"]["messageCount"] == 5


def test_messages_come_back_in_creation_order(api):
    for external_id, created in (("late", 3000), ("early", 1000), ("middle", 2000)):
        api.post("/sync/message", {"sessionExternalId": "s", "externalId": external_id, "role": "user", "createdAt": created})
    assert [m["externalId"] for m in api.session("s")["messages"]] == ["early", "middle", "late"]


def test_empty_text_and_missing_role(api):
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m", "textContent": ""})
    (message,) = api.session("s")["messages"]
    assert message["textContent"] == "" and message["role"] == "unknown"


def test_unknown_message_keys_are_kept(api):
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m", "role": "tool", "timestamp": 1700000000})
    assert api.session("s")["messages"][0]["extra"] == {"timestamp": 1700000000}


def test_a_numeric_timestamp_is_the_message_time_without_created_at(api):
    api.post("/sync/message", {"sessionExternalId": "c", "externalId": "s", "role": "user", "timestamp": 1700000000})
    api.post("/sync/message", {"sessionExternalId": "c", "externalId": "ms", "role": "user", "timestamp": 1700000001234})
    api.post("/sync/message", {"sessionExternalId": "c", "externalId": "both", "role": "user", "timestamp": 5,
                               "createdAt": 1700000009000})
    times = {m["externalId"]: m["createdAt"] for m in api.session("c")["messages"]}
    assert times == {"s": 1700000000000, "ms": 1700000001234, "both": 1700000009000}


def test_a_delete_moves_the_data_version_on(api, app, db_path):
    """Deletes are stamped, as writes are: the data version reads no COUNT of the sessions, yet
    no page is remembered past a deleted session (its projects neither)."""
    from opensync_lite import queries

    for name in ("a", "b"):
        api.post("/sync/session", {"externalId": name, "projectPath": f"/src/{name}"})
    ((user_id,),) = set(rows(db_path, "SELECT user_id FROM sessions"))
    with app.test_request_context():
        version = queries.data_version(user_id)
        assert "/src/b" in queries.user_projects(user_id).paths()
    assert api.delete("/api/sessions?externalId=b").status_code == 200
    with app.test_request_context():
        assert queries.data_version(user_id) != version
        assert queries.user_projects(user_id).paths() == {"/src/a"}
        again = queries.data_version(user_id)
    assert api.delete("/api/sessions?externalId=b").status_code == 404  # nothing deleted: nothing stamped
    with app.test_request_context():
        assert queries.data_version(user_id) == again
