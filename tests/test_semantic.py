"""Semantic and hybrid search through the API, on a SQLite file and on PostgreSQL: vectors
made by the background job's code, per user only, kept in step with changed and deleted
sessions; the OpenAI-compatible endpoint (a loopback stand-in); a clear 503 without the extra."""

import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from opensync_lite import create_app, db
from opensync_lite.semantic import encoders, worker

from conftest import Api, make_key, rows

pytestmark = pytest.mark.both_databases

MINE = [
    ("auth", "Fix the sign-in page", [("user", "Users cannot sign in after they reset their password"),
                                      ("assistant", "The reset token was hashed twice; fixed reset_flow.py.")]),
    ("chart", "Brand colours", [("user", "Make the bar chart use the brand palette"),
                                ("assistant", "Updated charts.css with the new colours.")]),
    ("flaky", "Flaky tests", [("user", "pytest fails at random in CI with ECONNREFUSED"),
                              ("assistant", "The database was not up yet; CI waits for pg_isready now.")]),
]


def sync(api, sessions, source="claude-code"):
    for external_id, title, messages in sessions:
        assert api.post("/sync/session", {"externalId": external_id, "title": title, "source": source}).status_code == 200
        batch = [{"sessionExternalId": external_id, "externalId": f"{external_id}-{n}", "role": role,
                  "textContent": text, "createdAt": 1_700_000_000_000 + n} for n, (role, text) in enumerate(messages)]
        assert api.post("/sync/batch", {"messages": batch}).status_code == 200


def backfill(app):
    with app.app_context():
        db.connect()
        return worker.backfill(encoders.encoder_for(app.config))


def titles(api, q, kind, **params):
    response = api.get("/api/search", query_string={"q": q, "type": kind, **params})
    assert response.status_code == 200, response.get_json()
    return [hit["title"] for hit in response.get_json()["results"]]


def test_semantic_and_hybrid_find_by_meaning_only_the_users_own(app, api, other_api, db_path):
    sync(api, MINE)
    sync(other_api, [("theirs", "Login broken after password change",
                      [("user", "Nobody can log in once they changed their password")])])
    counts = backfill(app)
    assert counts.sessions == 4 and counts.messages == 7
    # A paraphrase shares no word with the session: full text finds nothing, meaning does.
    q = "people locked out of their account"
    assert titles(api, q, "fulltext") == []
    assert titles(api, q, "semantic")[0] == "Fix the sign-in page"
    assert titles(api, q, "hybrid")[0] == "Fix the sign-in page"
    # Never another user's session, though it is the nearest of all.
    assert "Login broken after password change" not in titles(api, "login broken password change", "semantic")
    assert titles(other_api, "login broken password change", "semantic") == ["Login broken after password change"]
    # An exact identifier stays first in hybrid.
    assert titles(api, "ECONNREFUSED", "hybrid")[0] == "Flaky tests"
    # The shape is full text's: a match per turn, the turn's text as the snippet.
    hit = api.get("/api/search", query_string={"q": q, "type": "semantic"}).get_json()["results"][0]
    assert hit["foundIn"] == "prompt" and "reset their password" in hit["snippet"] and 0 <= hit["rank"] < 1
    assert hit["matches"][0]["messageId"] == hit["messageId"]
    # Paging and filters work as for full text.
    first = api.get("/api/search", query_string={"q": "tests colours sign in", "type": "semantic", "limit": 1}).get_json()
    assert len(first["results"]) == 1 and first["nextOffset"] == 1
    assert titles(api, q, "semantic", source="codex") == []
    # The context API and its choice of search.
    context = api.get("/api/context", query_string={"q": "tests failing now and then", "type": "hybrid", "limit": 1})
    assert context.status_code == 200 and "ECONNREFUSED" in context.get_json()["text"]
    # `where` narrows the words (hybrid's too); meaning compares whole turns.
    assert titles(api, "pg_isready", "fulltext", where="prompts") == []
    assert titles(api, "pg_isready", "fulltext", where="answers") == ["Flaky tests"]

    def fused(where):
        found = api.get("/api/search", query_string={"q": "pg_isready", "type": "hybrid", "where": where}).get_json()
        return {hit["title"]: hit["rank"] for hit in found["results"]}
    in_answers, in_prompts = fused("answers"), fused("prompts")
    assert in_answers["Flaky tests"] < in_prompts.get("Flaky tests", 0)  # words found there count too
    assert titles(api, q, "semantic", where="prompts")[0] == "Fix the sign-in page"
    assert api.get("/api/search", query_string={"q": "x", "type": "vector"}).status_code == 400


def test_changed_and_deleted_sessions_are_followed(app, api, db_path):
    sync(api, MINE)
    backfill(app)
    assert titles(api, "bar chart palette", "semantic")[0] == "Brand colours"
    before = rows(db_path, "SELECT COUNT(*) FROM embeddings")[0][0]
    # The chart session's prompt is rewritten: only its turn is embedded again.
    sync(api, [("chart", "Brand colours", [("user", "Translate the checkout pages into German")])])
    assert backfill(app).texts == 1
    assert rows(db_path, "SELECT COUNT(*) FROM embeddings")[0][0] == before
    assert titles(api, "german translation of the payment pages", "semantic")[0] == "Brand colours"
    assert backfill(app).sessions == 0  # nothing left behind
    # A deleted session is never answered, though its vectors were in memory.
    assert api.delete("/api/sessions/chart").status_code == 200
    assert "Brand colours" not in titles(api, "german translation of the payment pages", "semantic")
    assert "Brand colours" not in titles(api, "german translation", "hybrid")


def test_without_the_extra_semantic_search_answers_503_naming_it(app, api, monkeypatch):
    sync(api, MINE[:1])
    monkeypatch.setattr(encoders, "_cache", {})
    monkeypatch.setitem(__import__("sys").modules, "wordllama", None)  # as if not installed
    for kind in ("semantic", "hybrid"):
        response = api.get("/api/search", query_string={"q": "sign in", "type": kind})
        assert response.status_code == 503
        assert "pip install 'opensync-lite[semantic]'" in response.get_json()["error"]
        assert "type" in response.get_json()["fields"]
    context = api.get("/api/context", query_string={"q": "sign in", "type": "semantic"})
    assert context.status_code == 503 and "semantic" in context.get_json()["error"]
    assert titles(api, "sign in", "fulltext") == ["Fix the sign-in page"]


class _Embeddings(BaseHTTPRequestHandler):
    """A loopback stand-in for an OpenAI-compatible /v1/embeddings: hashed bag of words, 64
    dimensions (so texts sharing words are near), and the key checked."""

    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers.get("Authorization"), body["model"], len(body["input"])))
        if self.headers.get("Authorization") != "Bearer sk-test":
            self.send_response(401)
            self.end_headers()
            return
        data = []
        for index, text in enumerate(body["input"]):
            vector = [0.0] * 64
            for word in text.lower().split():
                vector[zlib.crc32(word.strip(".,;:'").encode()) % 64] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        out = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode()  # any order
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_an_openai_compatible_endpoint_by_setting(db_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    app = create_app({"OPENSYNC_DB": db_path, "OPENSYNC_EMBED_URL": url, "OPENSYNC_EMBED_MODEL": "nomic-embed-text",
                      "OPENSYNC_EMBED_KEY": "sk-test", "OPENSYNC_EMBED_TIMEOUT": 5})
    try:
        api = Api(app.test_client(), make_key(app))
        sync(api, MINE)
        assert backfill(app).texts == 6
        assert _Embeddings.seen[0][:3] == ("/v1/embeddings", "Bearer sk-test", "nomic-embed-text")
        assert rows(db_path, "SELECT DISTINCT model FROM embeddings") == [("api:nomic-embed-text",)]
        assert titles(api, "bar chart palette", "semantic")[0] == "Brand colours"
        server.shutdown()  # the endpoint gone: a clear 503, never a 500
        server.server_close()
        response = api.get("/api/search", query_string={"q": "bar chart", "type": "hybrid"})
        assert response.status_code == 503 and "embeddings endpoint" in response.get_json()["error"]
    finally:
        server.server_close()
        app.extensions["opensync"].close()


def test_migration_from_version_7_adds_the_vector_tables(db_path):
    app = create_app({"OPENSYNC_DB": db_path})
    api = Api(app.test_client(), make_key(app))
    sync(api, MINE[:1])
    app.extensions["opensync"].close()
    rows(db_path, "DROP TABLE embedded_sessions")
    rows(db_path, "DROP TABLE embeddings")
    if "://" in db_path:
        rows(db_path, "UPDATE settings SET value = '7' WHERE name = 'schema_version'")
    else:
        rows(db_path, "PRAGMA user_version = 7")
    app = create_app({"OPENSYNC_DB": db_path})
    try:
        assert backfill(app).sessions == 1
        assert rows(db_path, "SELECT COUNT(*) FROM embeddings")[0][0] == 2
        version = (rows(db_path, "SELECT value FROM settings WHERE name = 'schema_version'") if "://" in db_path
                   else rows(db_path, "PRAGMA user_version"))
        assert str(version[0][0]) == str(db.SCHEMA_VERSION) and db.SCHEMA_VERSION >= 9  # the vector tables came in 9
    finally:
        app.extensions["opensync"].close()


def test_the_dashboard_search_page_offers_the_choice(app, api, monkeypatch):
    import re

    sync(api, MINE)
    backfill(app)
    browser = app.test_client()
    page = browser.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    key = api.headers["Authorization"].removeprefix("Bearer ")
    assert browser.post("/signin", data={"csrf": csrf, "key": key, "next": "/"}).status_code == 302
    words = browser.get("/search", query_string={"q": "people locked out of their account"}).get_data(as_text=True)
    assert "Nothing matches" in words and '<option value="hybrid">Words and meaning</option>' in words
    meaning = browser.get("/search", query_string={"q": "people locked out of their account", "type": "semantic",
                                                   "where": "prompts"})
    body = meaning.get_data(as_text=True)
    assert meaning.status_code == 200 and "Fix the sign-in page" in body.split('class="hits"')[1]
    assert '<option value="semantic" selected>Meaning</option>' in body and "by meaning" in body
    monkeypatch.setattr(encoders, "_cache", {})
    monkeypatch.setitem(__import__("sys").modules, "wordllama", None)
    missing = browser.get("/search", query_string={"q": "sign in", "type": "hybrid"})
    assert missing.status_code == 200 and "pip install &#39;opensync-lite[semantic]&#39;" in missing.get_data(as_text=True)
