import csv
import io
import json

import pytest

from conftest import rows, snapshot

pytestmark = pytest.mark.both_databases


@pytest.fixture
def convo(api):
    api.post("/sync/session", {"externalId": "c1", "source": "claude-code", "title": "Parser refactor",
                               "projectName": "demo", "model": "claude-sonnet-4", "promptTokens": 10,
                               "completionTokens": 5, "cost": 0.25, "createdAt": 1_767_225_600_000})
    api.post("/sync/message", {"sessionExternalId": "c1", "externalId": "u1", "role": "user",
                               "textContent": "Why does the <tokenizer> crash on emoji?", "createdAt": 1})
    api.post("/sync/message", {"sessionExternalId": "c1", "externalId": "a1", "role": "assistant",
                               "textContent": "The tokenizer splits surrogate pairs.", "createdAt": 2,
                               "parts": [{"type": "tool-call", "content": {"toolName": "Read", "args": {"path": "tok.py"}}},
                                         {"type": "tool-result", "content": "def split(): ..."}]})
    api.post("/sync/session", {"externalId": "o1", "source": "opencode", "title": "Tokenizer docs"})
    api.post("/sync/session", {"externalId": "l1", "title": "legacy tokenizer notes"})


def test_search_ranks_hits_with_source_and_safe_snippet(api, convo):
    """One result per session (c1 matches in two messages: one result, both matches in it)."""
    results = api.get("/api/search?q=tokenizer").get_json()["results"]
    assert sorted(r["externalId"] for r in results) == ["c1", "l1", "o1"]
    ranks = [r["rank"] for r in results]
    assert ranks == sorted(ranks)
    by_ext = {r["externalId"]: r for r in results}
    assert by_ext["o1"]["source"] == "opencode" and by_ext["l1"]["source"] is None
    assert by_ext["o1"]["kind"] == "session" and by_ext["o1"]["foundIn"] == "title"
    c1 = by_ext["c1"]
    assert (c1["source"], c1["projectName"], c1["model"]) == ("claude-code", "demo", "claude-sonnet-4")
    assert c1["createdAt"] == 1_767_225_600_000 and c1["updatedAt"] >= c1["createdAt"]
    assert [m["kind"] for m in c1["matches"]] == ["message", "message"] and all(m["messageId"] for m in c1["matches"])
    assert [m["rank"] for m in c1["matches"]] == sorted(m["rank"] for m in c1["matches"])
    assert (c1["messageId"], c1["snippet"]) == (c1["matches"][0]["messageId"], c1["matches"][0]["snippet"])
    user_hit = next(m for m in c1["matches"] if "emoji" in m["snippet"])
    assert "&lt;<mark>tokenizer</mark>&gt;" in user_hit["snippet"]  # escaped text, marked hit
    assert {m["foundIn"] for m in c1["matches"]} == {"prompt", "answer"}


def test_search_prefix_source_filter_and_limit(api, convo):
    assert len(api.get("/api/search?q=tokeni").get_json()["results"]) == 3
    only = api.get("/api/search?q=tokenizer&source=opencode").get_json()["results"]
    assert [r["externalId"] for r in only] == ["o1"]
    legacy = api.get("/api/search?q=tokenizer&source=unknown").get_json()["results"]
    assert [r["externalId"] for r in legacy] == ["l1"]
    first = api.get("/api/search?q=tokenizer&limit=2").get_json()
    assert len(first["results"]) == 2 and first["nextOffset"] == 2
    rest = api.get("/api/search?q=tokenizer&limit=2&offset=2").get_json()
    assert rest["nextOffset"] is None and len(rest["results"]) == 1
    everything = [r["externalId"] for r in api.get("/api/search?q=tokenizer").get_json()["results"]]
    assert [r["externalId"] for r in first["results"] + rest["results"]] == everything


def test_search_follows_updates(api, convo):
    api.post("/sync/message", {"sessionExternalId": "c1", "externalId": "u1", "role": "user", "textContent": "rewritten"})
    api.post("/sync/session", {"externalId": "o1", "title": "Renamed"})
    hits = api.get("/api/search?q=tokenizer").get_json()["results"]
    assert {(r["kind"], r["externalId"]) for r in hits} == {("message", "c1"), ("session", "l1")}
    assert len(hits) == 2 and len(next(r for r in hits if r["externalId"] == "c1")["matches"]) == 1
    assert [r["externalId"] for r in api.get("/api/search?q=rewritten").get_json()["results"]] == ["c1"]


@pytest.mark.parametrize("q", ['"unbalanced', "AND OR NOT", "col:value", "*", "(((", "NEAR(a b"])
def test_search_syntax_never_errors(api, convo, q):
    response = api.get("/api/search", query_string={"q": q})
    assert response.status_code in (200, 400)
    assert "results" in response.get_json() or "q" in response.get_json()["fields"]


def test_search_bad_params_and_isolation(api, other_api, convo):
    for query, param in (("", "q"), ("q=", "q"), ("q=x&limit=0", "limit"), ("q=x&limit=1000", "limit"),
                         ("q=x&where=everywhere", "where"), ("q=x&offset=-1", "offset"), ("q=x&offset=a", "offset")):
        response = api.get(f"/api/search?{query}")
        assert response.status_code == 400 and param in response.get_json()["fields"]
    assert other_api.get("/api/search?q=tokenizer").get_json() == {"results": [], "nextOffset": None}


def test_export_json_and_jsonl(api, convo):
    response = api.get("/api/export?id=c1&format=json")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    body = json.loads(response.data)
    assert body["session"]["source"] == "claude-code" and len(body["messages"]) == 2
    lines = [json.loads(line) for line in api.get("/api/export?id=c1&format=jsonl").get_data(as_text=True).splitlines()]
    assert [line["type"] for line in lines] == ["session", "message", "message"]
    assert lines[2]["parts"][0]["content"]["toolName"] == "Read"


def test_export_markdown(api, convo):
    text = api.get("/api/export?id=c1&format=markdown").get_data(as_text=True)
    assert text.startswith("# Parser refactor\n")
    assert "| Source | claude-code |" in text and "| Project | demo |" in text
    assert "| Model | claude-sonnet-4 |" in text and "15 (10 prompt, 5 completion)" in text
    assert "| Cost | $0.2500 |" in text and "| Date | 2026-01-01T00:00:00Z |" in text
    assert text.index("## User") < text.index("## Assistant")
    assert '```json\n{\n  "toolName": "Read"' in text


def test_export_sessions_csv_and_json_with_filters(api, convo):
    response = api.get("/api/export/sessions?format=csv&source=claude-code")
    assert response.is_streamed
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0][:4] == ["ID", "External ID", "Source", "Title"]
    assert [row[1:3] for row in table[1:]] == [["c1", "claude-code"]]
    everything = json.loads(api.get("/api/export/sessions?format=json&sortBy=createdAt&sortOrder=asc").data)
    assert {s["externalId"] for s in everything} == {"c1", "o1", "l1"}
    assert api.get("/api/export/sessions?format=xml").status_code == 400


def test_export_unknown_or_foreign_is_404(api, other_api, convo):
    assert api.get("/api/export?id=nope").status_code == 404
    assert other_api.get("/api/export?id=c1").status_code == 404
    assert other_api.get("/api/export/sessions?format=json").get_data(as_text=True) == "[]"
    response = api.get("/api/export?id=c1&format=pdf")
    assert response.status_code == 400 and "format" in response.get_json()["fields"]


def test_delete_removes_session_messages_parts_and_search_rows(api, convo, db_path, database_kind):
    assert api.delete("/api/sessions/c1").get_json()["ok"] is True
    assert api.get("/api/sessions/get?id=c1").status_code == 404
    assert rows(db_path, "SELECT COUNT(*) FROM messages") == [(0,)]
    assert rows(db_path, "SELECT COUNT(*) FROM parts") == [(0,)]
    assert {r["externalId"] for r in api.get("/api/search?q=tokenizer").get_json()["results"]} == {"o1", "l1"}
    assert api.get("/api/search?q=parser").get_json()["results"] == []
    if database_kind == "sqlite":  # FTS5 keeps its own rows (PostgreSQL indexes the tables themselves)
        assert rows(db_path, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'tokenizer'") == [(0,)]
        assert rows(db_path, "SELECT COUNT(*) FROM sessions_fts WHERE sessions_fts MATCH 'parser'") == [(0,)]
        assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert api.delete("/api/sessions/c1").status_code == 404


def test_another_user_cannot_delete(api, other_api, convo, db_path):
    before = snapshot(db_path)
    session_id = api.session("c1")["session"]["id"]
    for ident in ("c1", session_id):
        assert other_api.delete(f"/api/sessions/{ident}").status_code == 404
    assert snapshot(db_path) == before


def test_markdown_date_of_epoch_zero(api):
    api.post("/sync/session", {"externalId": "z", "title": "Zero", "createdAt": 0})
    text = api.get("/api/export?id=z&format=markdown").get_data(as_text=True)
    assert "| Date | 1970-01-01T00:00:00Z |" in text


@pytest.fixture
def phrases(api):
    texts = {"p1": "the login page is broken", "p2": "page for login with OAuth", "p3": "oauth login page redirect",
             "p4": "signup form"}
    for ident, text in texts.items():
        api.post("/sync/message", {"sessionExternalId": ident, "externalId": "m", "role": "user", "textContent": text})


@pytest.mark.parametrize("q, expected", [
    ('"login page"', {"p1", "p3"}),
    ("login page", {"p1", "p2", "p3"}),
    ("login NOT OAuth", {"p1"}),
    ("login -oauth", {"p1"}),
    ('page -"page redirect"', {"p1", "p2"}),
    ("signup OR redirect", {"p3", "p4"}),
    ("form OR broken login", {"p1"}),  # (form OR broken) AND login
])
def test_search_box_syntax(api, phrases, q, expected):
    found = {hit["externalId"] for hit in api.get("/api/search", query_string={"q": q}).get_json()["results"]}
    assert found == expected
    listed = {s["externalId"] for s in api.get("/api/sessions", query_string={"q": q}).get_json()["sessions"]}
    assert listed == expected


def test_exclusions_alone_find_nothing_and_filter_nothing(api, phrases):
    assert api.get("/api/search?q=-login").get_json()["results"] == []
    assert api.get("/api/sessions?q=-login").get_json()["total"] == 4
