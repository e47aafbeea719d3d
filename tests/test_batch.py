import json

import pytest

from conftest import rows, snapshot

pytestmark = pytest.mark.both_databases


def test_batch_stores_sessions_then_messages(api):
    body = {
        "sessions": [{"externalId": "b1", "source": "factory-droid", "title": "Batch"}],
        "messages": [
            {"sessionExternalId": "b1", "externalId": f"m{i}", "role": "assistant", "textContent": f"t{i}",
             "parts": [{"type": "tool_use", "content": {"toolName": "Read", "args": {}, "result": "ok"}}]}
            for i in range(5)
        ],
    }
    response = api.post("/sync/batch", body)
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "sessions": 1, "messages": 5, "errors": [], "errorCount": 0}
    got = api.session("b1")
    assert got["session"]["source"] == "factory-droid" and got["session"]["messageCount"] == 5
    assert [m["textContent"] for m in got["messages"]] == [f"t{i}" for i in range(5)]
    assert got["messages"][0]["parts"][0]["type"] == "tool_use"


def test_invalid_items_are_reported_and_do_not_stop_the_others(api, db_path):
    body = {
        "sessions": [{"externalId": "ok1"}, {"title": "no id"}, "not an object", {"externalId": "ok2", "promptTokens": -1}],
        "messages": [
            {"sessionExternalId": "ok1", "externalId": "m1", "role": "user"},
            {"sessionExternalId": "ok1", "externalId": "m2", "role": "wizard"},
        ],
    }
    answer = api.post("/sync/batch", body).get_json()
    assert answer["ok"] is True and answer["sessions"] == 1 and answer["messages"] == 1
    reported = [(e["kind"], e["index"]) for e in answer["errors"]]
    assert reported == [("session", 1), ("session", 2), ("session", 3), ("message", 1)]
    assert "externalId" in answer["errors"][0]["fields"]
    assert "promptTokens" in answer["errors"][2]["fields"]
    assert "role" in answer["errors"][3]["fields"]
    assert rows(db_path, "SELECT external_id FROM sessions ORDER BY id") == [("ok1",)]
    assert rows(db_path, "SELECT external_id FROM messages") == [("m1",)]


def test_empty_batch_is_fine(api):
    assert api.post("/sync/batch", {}).get_json() == {"ok": True, "sessions": 0, "messages": 0, "errors": [],
                                                    "errorCount": 0}


def test_batch_body_must_be_the_envelope(api, db_path):
    before = snapshot(db_path)
    for body in ([], "x", 3, {"sessions": {"externalId": "a"}}, {"messages": "nope"}):
        response = api.post("/sync/batch", body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]
    assert snapshot(db_path) == before


def test_batch_resend_does_not_duplicate(api, db_path):
    body = {"sessions": [{"externalId": "s"}], "messages": [{"sessionExternalId": "s", "externalId": "m", "role": "user"}]}
    api.post("/sync/batch", body)
    api.post("/sync/batch", body)
    assert rows(db_path, "SELECT COUNT(*) FROM sessions") == [(1,)]
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(1,)]


def test_a_message_twice_in_one_batch_is_merged_as_a_resend(api, db_path):
    first = {"sessionExternalId": "s", "externalId": "m", "role": "assistant", "textContent": "draft",
             "model": "m1", "parts": [{"type": "text", "content": "draft"}], "x": 1}
    again = {"sessionExternalId": "s", "externalId": "m", "textContent": "final", "y": 2}
    other = {"sessionExternalId": "s", "externalId": "n", "role": "user", "textContent": "hi"}
    answer = api.post("/sync/batch", {"messages": [first, other, again]}).get_json()
    assert answer["messages"] == 3 and answer["errors"] == []
    messages = {m["externalId"]: m for m in api.session("s")["messages"]}
    assert set(messages) == {"m", "n"}
    m = messages["m"]
    assert (m["textContent"], m["role"], m["model"]) == ("final", "assistant", "m1")
    assert m["parts"] == [{"type": "text", "content": "draft"}] and m["extra"] == {"x": 1, "y": 2}
    assert api.session("s")["session"]["messageCount"] == 2
    assert rows(db_path, "SELECT COUNT(*) FROM parts") == [(1,)]


def test_batch_spanning_sessions_and_resends(api):
    api.post("/sync/message", {"sessionExternalId": "a", "externalId": "a1", "role": "user", "textContent": "old",
                               "parts": [{"type": "text", "content": "old"}]})
    batch = [{"sessionExternalId": sid, "externalId": f"{sid}{i}", "role": "user", "textContent": f"{sid}{i}",
              "parts": [{"type": "text", "content": i}]} for sid in ("a", "b") for i in range(1, 80)]
    assert api.post("/sync/batch", {"messages": batch}).get_json()["messages"] == 158
    a = api.session("a")
    assert a["session"]["messageCount"] == 79
    by_id = {m["externalId"]: m for m in a["messages"]}
    assert by_id["a1"]["textContent"] == "a1" and by_id["a1"]["parts"] == [{"type": "text", "content": 1}]
    assert by_id["a79"]["parts"] == [{"type": "text", "content": 79}]
    assert api.session("b")["session"]["messageCount"] == 79


def test_stored_message_resent_twice_in_one_batch_keeps_both_extras(api):
    api.post("/sync/message", {"sessionExternalId": "s", "externalId": "m", "role": "user", "a": 1})
    batch = [{"sessionExternalId": "s", "externalId": "m", "b": 2}, {"sessionExternalId": "s", "externalId": "m", "c": 3}]
    api.post("/sync/batch", {"messages": batch})
    (message,) = api.session("s")["messages"]
    assert message["extra"] == {"a": 1, "b": 2, "c": 3}


def test_a_message_with_thousands_of_invalid_parts_answers_its_first_field_errors_and_their_count(api, db_path):
    from opensync_lite.schemas import MAX_FIELD_ERRORS
    body = {"messages": [{"sessionExternalId": "s", "externalId": f"m{i}", "role": "user", "parts": [{}] * 4000}
                         for i in range(2)] + [{"sessionExternalId": "s", "externalId": "ok", "role": "user"}]}
    request = json.dumps(body, separators=(",", ":"))
    response = api.post("/sync/batch", data=request, content_type="application/json")
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["messages"] == 1 and answer["errorCount"] == 2
    for error in answer["errors"]:
        assert len(error["fields"]["parts"]) == MAX_FIELD_ERRORS  # the first ones, by index
        assert sorted(error["fields"]["parts"], key=int) == [str(i) for i in range(MAX_FIELD_ERRORS)]
        assert error["fieldErrorCount"] == 4000
    assert len(response.data) < len(request) / 10  # bounded, whatever the parts
    assert rows(db_path, "SELECT external_id FROM messages") == [("ok",)]
