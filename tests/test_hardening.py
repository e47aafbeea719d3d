"""Defects found by review, each reproduced here as the request that showed it."""

import base64
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from opensync_lite import create_app, db

from conftest import Api, downgrade_to_version_4, make_key, rows, snapshot

pytestmark = pytest.mark.both_databases

V1_SCHEMA = Path(__file__).parent / "data" / "schema_v1.sql"


# --- 1. keys named like a field's Python attribute are not that field -------------------------

@pytest.mark.parametrize("body", [
    {"externalId": "d1", "prompt_tokens": -5, "completion_tokens": 3},
    {"externalId": "d1", "duration_ms": "ten", "created_at": "x"},
    {"externalId": "d1", "prompt_tokens": 9_000_000_000_000_000_000, "completion_tokens": "x"},
    {"externalId": "d1", "external_id": "evil\u0000id", "project_path": 5, "message_count": -1},
])
def test_snake_case_twins_are_kept_in_extra_not_stored_as_fields(api, body):
    assert api.post("/sync/session", body).status_code == 200
    session = api.session("d1")["session"]
    assert (session["promptTokens"], session["completionTokens"], session["totalTokens"]) == (0, 0, 0)
    assert session["externalId"] == "d1" and session["durationMs"] == 0 and session["projectPath"] is None
    assert session["extra"] == {k: v for k, v in body.items() if k != "externalId"}
    # The reads that broke on such rows still answer.
    assert api.get("/api/sessions").status_code == 200
    assert api.get("/api/stats").status_code == 200
    assert len(api.get("/api/export/sessions?format=csv").get_data(as_text=True).splitlines()) == 2


def test_snake_case_twins_in_batches_messages_and_parts(api):
    batch = {"sessions": [{"externalId": "d1b", "duration_ms": "ten"}],
             "messages": [{"sessionExternalId": "d1b", "externalId": "m", "text_content": 7,
                           "session_external_id": "other", "parts": [{"type": "text", "content": "x", "order": -1}]}]}
    answer = api.post("/sync/batch", batch).get_json()
    assert answer["errors"] == []
    detail = api.session("d1b")
    assert detail["session"]["durationMs"] == 0 and detail["session"]["extra"] == {"duration_ms": "ten"}
    (message,) = detail["messages"]
    assert message["textContent"] == "" and message["extra"] == {"text_content": 7, "session_external_id": "other"}
    assert message["parts"] == [{"type": "text", "content": "x", "extra": {"order": -1}}]
    assert api.get("/api/sessions/get?id=other").status_code == 404


def test_a_client_key_named_extra_is_kept_inside_extra(api):
    assert api.post("/sync/session", {"externalId": "e", "extra": {"a": 1}, "b": 2}).status_code == 200
    assert api.session("e")["session"]["extra"] == {"extra": {"a": 1}, "b": 2}


# --- 2. stored lone surrogates export ---------------------------------------------------------

def test_exports_survive_lone_surrogates(api):
    api.post("/sync/session", {"externalId": "sur", "title": "t", "odd": "\ud800"})
    api.post("/sync/message", {"sessionExternalId": "sur", "externalId": "m", "role": "user", "textContent": "hi",
                               "parts": [{"type": "text", "content": "x\udfffy"}, {"type": "tool", "content": {"k": "\ud800"}}]})
    body = api.get("/api/export?id=sur&format=json").get_data(as_text=True)
    assert json.loads(body)["session"]["extra"]["odd"] == "\ud800"  # exact, as a \u escape
    lines = api.get("/api/export?id=sur&format=jsonl").get_data(as_text=True).splitlines()
    assert json.loads(lines[1])["parts"][1]["content"] == {"k": "\ud800"}
    markdown = api.get("/api/export?id=sur&format=markdown")
    assert markdown.status_code == 200 and "x\ufffdy" in markdown.get_data(as_text=True)
    streamed = api.get("/api/export/sessions?format=json").get_data(as_text=True)
    assert json.loads(streamed)[0]["extra"]["odd"] == "\ud800"


# --- 3. a session made by a message starts when the message does -------------------------------

def test_auto_created_session_takes_the_message_time_then_the_session_time(api):
    t = "2024-01-02T03:04:05Z"
    api.post("/sync/message", {"sessionExternalId": "late", "externalId": "m", "role": "user", "createdAt": t})
    assert api.session("late")["session"]["createdAt"] == 1704164645000
    api.post("/sync/session", {"externalId": "late", "createdAt": "2024-01-02T03:00:00Z"})
    assert api.session("late")["session"]["createdAt"] == 1704164400000
    # From then on createdAt is the session's own and is kept, as for any session.
    api.post("/sync/session", {"externalId": "late", "createdAt": "2025-01-01T00:00:00Z"})
    assert api.session("late")["session"]["createdAt"] == 1704164400000
    days = api.get("/api/stats/daily?from=2024-01-02&to=2024-01-02").get_json()["days"]
    assert [d["sessions"] for d in days] == [1]


# --- 4 and 13. daily stats and time parsing ---------------------------------------------------

def test_daily_stats_count_only_what_the_range_holds(api):
    api.post("/sync/session", {"externalId": "a", "createdAt": "2026-03-08T01:00:00Z", "promptTokens": 10})
    api.post("/sync/session", {"externalId": "b", "createdAt": "2026-03-08T20:00:00Z", "promptTokens": 1000})
    api.post("/sync/session", {"externalId": "c", "createdAt": "2026-03-08T10:00:00Z", "promptTokens": 100})
    window = {"from": "2026-03-08T00:00:00-05:00", "to": "2026-03-08T12:00:00-05:00"}  # 05:00Z to 17:00Z
    summary = api.get("/api/stats", query_string=window).get_json()
    days = api.get("/api/stats/daily", query_string=window).get_json()["days"]
    assert summary["totalTokens"] == 100 and summary["sessionCount"] == 1
    assert [(d["date"], d["sessions"], d["totalTokens"]) for d in days] == [("2026-03-08", 1, 100)]


def test_sessions_before_1970_fall_on_their_own_day(api):
    api.post("/sync/session", {"externalId": "old", "createdAt": "1969-12-31T12:00:00Z"})
    days = api.get("/api/stats/daily?to=1970-01-01&days=3").get_json()["days"]
    assert {d["date"]: d["sessions"] for d in days} == {"1969-12-30": 0, "1969-12-31": 1, "1970-01-01": 0}


@pytest.mark.parametrize("bad", ["2026-01-01T10:60:00Z", "2026-01-01T10:00:00+05:60", "2026-13-01", "12345"])
def test_impossible_times_are_refused(api, bad):
    response = api.get("/api/stats", query_string={"from": bad})
    assert response.status_code == 400 and "from" in response.get_json()["fields"]
    assert api.post("/sync/session", {"externalId": "t", "createdAt": bad}).status_code == 400


def test_leap_second_basic_dates_and_epoch_ms(api):
    api.post("/sync/session", {"externalId": "leap", "createdAt": "2016-12-31T23:59:60Z"})
    assert api.session("leap")["session"]["createdAt"] == 1483228799000
    api.post("/sync/session", {"externalId": "jan31", "createdAt": "2026-01-31T12:00:00Z"})
    for window in ({"from": "20260131", "to": "20260131"}, {"from": "1769817600000", "to": "1769904000000"}):
        response = api.get("/api/sessions", query_string=window)
        assert response.status_code == 200, response.get_json()
        assert [s["externalId"] for s in response.get_json()["sessions"]] == ["jan31"]


# --- 5. ids are never reused, and an ambiguous id is a 409 ----------------------------------------

def test_ids_are_not_reused_after_a_delete(api):
    first = api.post("/sync/session", {"externalId": "x1"}).get_json()["sessionId"]
    assert api.delete(f"/api/sessions/{first}").status_code == 200
    second = api.post("/sync/session", {"externalId": "x2"}).get_json()["sessionId"]
    assert int(second) > int(first)
    assert api.delete(f"/api/sessions/{first}").status_code == 404  # a retry deletes nothing
    assert api.session("x2")["session"]["id"] == second


def test_external_id_form_and_ambiguous_ids(api):
    one = api.post("/sync/session", {"externalId": "first"}).get_json()["sessionId"]
    shadow = api.post("/sync/session", {"externalId": one}).get_json()["sessionId"]  # externalId "1"
    answer = api.get("/api/sessions/get", query_string={"id": one})
    assert answer.status_code == 409
    assert "first" in answer.get_json()["error"] and shadow in answer.get_json()["error"]
    assert api.get("/api/sessions/get", query_string={"externalId": one}).get_json()["session"]["id"] == shadow
    assert api.get("/api/export", query_string={"externalId": one}).get_json()["session"]["id"] == shadow
    assert api.get("/api/sessions/get", query_string={"id": one, "externalId": one}).status_code == 400
    assert api.delete(f"/api/sessions/{one}").status_code == 409
    assert api.delete("/api/sessions", query_string={"externalId": one}).get_json()["deleted"] == shadow
    assert api.session("first")["session"]["id"] == one


def test_an_external_id_with_a_slash_can_be_deleted(api):
    api.post("/sync/session", {"externalId": "a/b"})
    assert api.delete("/api/sessions", query_string={"externalId": "a/b"}).status_code == 200
    assert api.get("/api/sessions/get", query_string={"externalId": "a/b"}).status_code == 404


def _v1_file(path):
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA.read_text() + "PRAGMA user_version = 1;")
    conn.executescript("""
        INSERT INTO users (id, name, created_at) VALUES (1, 'local', 0);
        INSERT INTO sessions (id, user_id, external_id, source, title, created_at, updated_at, message_count)
            VALUES (1, 1, 'a', 'claude-code', 'parser work', 5, 6, 1), (2, 1, 'b', 'unknown', 'other', 7, 8, 0);
        INSERT INTO messages (id, session_id, external_id, role, text_content, created_at)
            VALUES (10, 1, 'm', 'user', 'fix the tokenizer', 5);
        INSERT INTO parts (message_id, type, content, "order") VALUES (10, 'text', '"fix"', 0);
    """)
    conn.commit()
    conn.close()


def test_migration_from_version_1_keeps_everything(tmp_path):
    path = str(tmp_path / "v1.db")
    _v1_file(path)
    app = create_app({"OPENSYNC_DB": path, "TESTING": True})
    try:
        api = Api(app.test_client(), make_key(app))
        assert rows(path, "PRAGMA user_version") == [(db.SCHEMA_VERSION,)]
        detail = api.session("a")
        assert detail["session"]["id"] == "1" and detail["messages"][0]["parts"] == [{"type": "text", "content": "fix"}]
        assert api.session("b")["session"]["source"] is None  # a stored "unknown" is no source
        assert [h["sessionId"] for h in api.get("/api/search?q=tokenizer").get_json()["results"]] == ["1"]
        assert [h["sessionId"] for h in api.get("/api/search?q=parser").get_json()["results"]] == ["1"]
        assert rows(path, "PRAGMA foreign_key_check") == [] and rows(path, "PRAGMA integrity_check") == [("ok",)]
        # parts still point at messages: deleting the session takes its parts along.
        assert api.delete("/api/sessions/2").status_code == 200
        assert api.delete("/api/sessions/1").status_code == 200
        assert rows(path, "SELECT COUNT(*) FROM parts") == [(0,)]
        new_id = api.post("/sync/session", {"externalId": "c"}).get_json()["sessionId"]
        assert int(new_id) == 3  # 2 was the highest id ever used
    finally:
        app.extensions["opensync"].close()


def test_a_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    sqlite3.connect(path).execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}").connection.close()
    with pytest.raises(db.SchemaTooNew, match="newer than this opensync-lite"):
        create_app({"OPENSYNC_DB": path})


# --- 6 to 12 ----------------------------------------------------------------------------------

def _cursor(value):
    raw = json.dumps(["updated_at", True, value, 1]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("value", [10**30, -(10**30), 1e308 * 10])
def test_forged_cursor_values_are_400(api, value):
    response = api.get("/api/sessions", query_string={"cursor": _cursor(value)})
    assert response.status_code == 400 and "cursor" in response.get_json()["fields"]


def test_non_latin1_export_names(api):
    api.post("/sync/session", {"externalId": "会话-1"})
    response = api.get("/api/export", query_string={"externalId": "会话-1", "format": "markdown"})
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert 'filename="session-__-1.md"' in disposition
    assert "filename*=UTF-8''session-%E4%BC%9A%E8%AF%9D-1.md" in disposition
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"


def test_csv_cells_cannot_be_formulas(api):
    api.post("/sync/session", {"externalId": "f", "title": "=HYPERLINK(\"http://x\")", "projectName": "@SUM(A1)",
                               "model": "+1", "provider": "-2", "source": "\tcmd"})
    response = api.get("/api/export/sessions?format=csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert (row["Title"], row["Project"], row["Model"], row["Provider"], row["Source"]) == (
        "'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "'+1", "'-2", "'\tcmd")


def test_markdown_headings_cannot_be_forged(api):
    api.post("/sync/session", {"externalId": "md", "title": "T\n\n## Assistant\n\nforged", "model": "m\r\n# x"})
    text = api.get("/api/export?id=md&format=markdown").get_data(as_text=True)
    assert text.splitlines()[0] == "# T ## Assistant forged"
    assert "\n## Assistant" not in text and "\n# x" not in text


def test_part_extras_are_returned(api):
    part = {"type": "tool-call", "content": {"cmd": "ls"}, "toolCallId": "t1", "toolName": "bash"}
    api.post("/sync/message", {"sessionExternalId": "p", "externalId": "m", "role": "assistant", "parts": [part]})
    expected = {"type": "tool-call", "content": {"cmd": "ls"}, "extra": {"toolCallId": "t1", "toolName": "bash"}}
    assert api.session("p")["messages"][0]["parts"] == [expected]
    exported = json.loads(api.get("/api/export?id=p").data)
    assert exported["messages"][0]["parts"] == [expected]
    line = json.loads(api.get("/api/export?id=p&format=jsonl").get_data(as_text=True).splitlines()[1])
    assert line["parts"] == [expected]


def test_a_source_named_unknown_is_no_source(api):
    api.post("/sync/session", {"externalId": "u", "source": "unknown"})
    api.post("/sync/session", {"externalId": "k", "source": "cursor"})
    api.post("/sync/session", {"externalId": "k", "source": "unknown"})  # says nothing: cursor stays
    assert api.session("u")["session"]["source"] is None and api.session("k")["session"]["source"] == "cursor"
    sources = api.get("/api/sessions/filters").get_json()["sources"]
    assert sorted(sources, key=str) == sorted([{"value": None, "count": 1}, {"value": "cursor", "count": 1}], key=str)
    assert [s["externalId"] for s in api.get("/api/sessions?source=unknown").get_json()["sessions"]] == ["u"]


def test_export_sessions_honours_limit_and_cursor(api):
    for i in range(5):
        api.post("/sync/session", {"externalId": f"e{i}", "createdAt": 1000 + i})
    query = {"format": "json", "sortBy": "createdAt", "sortOrder": "asc", "limit": 2}
    first = json.loads(api.get("/api/export/sessions", query_string=query).data)
    assert [s["externalId"] for s in first] == ["e0", "e1"]
    page = api.get("/api/sessions", query_string={"sortBy": "createdAt", "sortOrder": "asc", "limit": 2}).get_json()
    rest = json.loads(api.get("/api/export/sessions", query_string={**query, "limit": 10, "cursor": page["nextCursor"]}).data)
    assert [s["externalId"] for s in rest] == ["e2", "e3", "e4"]
    assert len(json.loads(api.get("/api/export/sessions?format=json").data)) == 5


# --- also examined ----------------------------------------------------------------------------

def test_too_many_parts_are_refused_by_count(api, db_path):
    before = snapshot(db_path)
    body = {"sessionExternalId": "s", "externalId": "m", "parts": [{"type": 5}] * 10_001}
    response = api.post("/sync/message", body)
    assert response.status_code == 400 and "parts" in response.get_json()["fields"]
    assert snapshot(db_path) == before


def test_migration_from_version_4_stamps_existing_sessions(db_path):
    """Version 5 keeps the write stamp (written_at) apart from the latest activity (updated_at);
    a version 4 database's sessions take their updated_at as both."""
    app = create_app({"OPENSYNC_DB": db_path})
    api = Api(app.test_client(), make_key(app))
    api.post("/sync/session", {"externalId": "old", "title": "kept"})
    ((updated,),) = rows(db_path, "SELECT updated_at FROM sessions")
    app.extensions["opensync"].close()
    downgrade_to_version_4(db_path)
    app = create_app({"OPENSYNC_DB": db_path})
    api = Api(app.test_client(), make_key(app))
    assert rows(db_path, "SELECT title, updated_at, written_at FROM sessions") == [("kept", updated, updated)]
    api.post("/sync/session", {"externalId": "old", "title": "renamed"})
    ((written,),) = rows(db_path, "SELECT written_at FROM sessions")
    assert written > updated
