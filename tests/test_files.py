"""Sessions by file: the index made from tool-call arguments at ingest, kept in step with
resends, project changes and deletes, and asked by path (exact, folder or prefix)."""

import pytest

from conftest import rows
from opensync_lite import files

pytestmark = pytest.mark.both_databases

PROJECT = "/home/dev/app"


def call(name, args, shape="plugin"):
    """A tool-call part as the claude-code plugin sends it, or as the importers store it."""
    content = {"toolName": name, "args": args} if shape == "plugin" else {"id": "t", "name": name, "input": args}
    return {"type": "tool-call", "content": content}


def message(api, session, external_id, *parts, created_at=None):
    body = {"sessionExternalId": session, "externalId": external_id, "role": "assistant", "textContent": "",
            "parts": list(parts)}
    if created_at:
        body["createdAt"] = created_at
    response = api.post("/sync/message", body)
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def touched(api):
    api.post("/sync/session", {"externalId": "a", "source": "claude-code", "projectPath": PROJECT, "createdAt": 1_000})
    api.post("/sync/session", {"externalId": "b", "source": "opencode", "projectPath": PROJECT, "createdAt": 2_000})
    api.post("/sync/session", {"externalId": "c", "source": "claude-code", "projectPath": "/home/dev/other"})
    message(api, "a", "a1", call("Read", {"file_path": f"{PROJECT}/src/parser.py"}))
    message(api, "a", "a2", call("Edit", {"file_path": f"{PROJECT}/src/lexer.py", "old_string": "x", "new_string": "y"}))
    message(api, "b", "b1", call("edit", {"filePath": f"{PROJECT}/src/parser.py"}, shape="importer"))
    message(api, "c", "c1", call("Bash", {"command": "cat src/parser.py"}), call("Grep", {"pattern": "x", "path": "/home/dev/other/src"}))
    return api


def sessions_at(api, query):
    response = api.get(f"/api/files?{query}")
    assert response.status_code == 200, response.get_json()
    return [s["externalId"] for s in response.get_json()["sessions"]]


def test_sessions_that_read_or_changed_a_file_newest_first(touched):
    body = touched.get("/api/files?path=src/parser.py").get_json()
    assert [s["externalId"] for s in body["sessions"]] == ["b", "a"]  # b was active last
    assert body["total"] == 2
    assert body["files"] == [{"path": f"{PROJECT}/src/parser.py", "relPath": "src/parser.py", "sessions": 2,
                              "changedSessions": 1, "lastActive": body["files"][0]["lastActive"], "project": PROJECT}]
    by_session = {s["externalId"]: s["files"] for s in body["sessions"]}
    assert by_session["a"] == [{"path": f"{PROJECT}/src/parser.py", "relPath": "src/parser.py", "changed": False, "messages": 1}]
    assert by_session["b"][0]["changed"] is True
    # The absolute path finds the same sessions; Bash and Grep name no file they touched.
    assert sessions_at(touched, f"path={PROJECT}/src/parser.py") == ["b", "a"]


def test_a_file_name_or_any_end_of_its_path_finds_it(touched):
    """"parser.py" and "src/parser.py" find /…/src/parser.py; a part of a name does not, nor
    another case."""
    for query in ("parser.py", "src/parser.py", "app/src/parser.py", "./parser.py"):
        assert sessions_at(touched, f"path={query}") == ["b", "a"], query
    for query in ("arser.py", "Parser.py", "rc/parser.py", "parser"):
        assert sessions_at(touched, f"path={query}") == [], query
    files = touched.get("/api/files?path=lexer.py").get_json()["files"]
    assert [(f["path"], f["project"]) for f in files] == [(f"{PROJECT}/src/lexer.py", PROJECT)]


def test_folders_and_prefixes(touched):
    assert sorted(sessions_at(touched, "path=src/")) == ["a", "b"]
    assert sorted(sessions_at(touched, f"path={PROJECT}/src/")) == ["a", "b"]
    assert sessions_at(touched, "path=src/lex&prefix=true") == ["a"]
    assert sessions_at(touched, "path=src/lex") == []  # not a file: exact by default
    listing = touched.get("/api/files").get_json()
    assert "sessions" not in listing
    assert [(f["relPath"], f["sessions"], f["changedSessions"]) for f in listing["files"]] == [
        ("src/parser.py", 2, 1), ("src/lexer.py", 1, 1)]


def test_the_file_filter_works_on_lists_stats_and_exports(touched):
    listed = touched.get("/api/sessions?file=src/parser.py&source=opencode").get_json()["sessions"]
    assert [s["externalId"] for s in listed] == ["b"]
    assert touched.get("/api/stats?file=src/parser.py").get_json()["sessionCount"] == 2
    exported = touched.get("/api/export/sessions?format=json&file=src/lexer.py").get_json()
    assert [s["externalId"] for s in exported] == ["a"]


def test_the_session_lists_its_files(touched):
    detail = touched.get("/api/sessions/get?externalId=a").get_json()
    assert [(f["relPath"], f["changed"]) for f in detail["files"]] == [("src/lexer.py", True), ("src/parser.py", False)]


def test_a_resend_replaces_the_files_and_a_delete_removes_them(touched, db_path):
    message(touched, "a", "a1", call("Write", {"file_path": f"{PROJECT}/src/new.py", "content": "x"}))
    assert sessions_at(touched, "path=src/parser.py") == ["b"]
    assert sessions_at(touched, "path=src/new.py") == ["a"]
    # A resend without parts keeps the message's parts, and so its files.
    touched.post("/sync/message", {"sessionExternalId": "a", "externalId": "a1", "textContent": "edited"})
    assert sessions_at(touched, "path=src/new.py") == ["a"]
    session_id = touched.session("a")["session"]["id"]
    assert touched.delete(f"/api/sessions/{session_id}").status_code == 200
    assert sessions_at(touched, "path=src/") == ["b"]
    assert rows(db_path, "SELECT COUNT(*) FROM file_touches WHERE session_id = ?", (int(session_id),)) == [(0,)]


def test_relative_paths_follow_the_project_sent_later(api):
    # Codex's apply_patch names paths relative to the working folder, and the message may
    # come before the session tells its folder.
    patch = "*** Begin Patch\n*** Update File: src/parser.py\n@@\n-a\n+b\n*** Add File: docs/new.md\n+hi\n*** End Patch"
    message(api, "x", "x1", call("apply_patch", {"input": patch}))
    assert sessions_at(api, "path=src/parser.py") == ["x"]
    api.post("/sync/session", {"externalId": "x", "projectPath": "/srv/repo"})
    assert sessions_at(api, "path=/srv/repo/src/parser.py") == ["x"]
    assert sessions_at(api, "path=docs/new.md") == ["x"]
    assert [f["changed"] for f in api.get("/api/sessions/get?externalId=x").get_json()["files"]] == [True, True]


def test_files_are_private_to_their_user(touched, other_api):
    other_api.post("/sync/session", {"externalId": "z", "projectPath": PROJECT})
    message(other_api, "z", "z1", call("Read", {"file_path": f"{PROJECT}/src/secret.py"}))
    assert sessions_at(other_api, "path=src/parser.py") == []
    assert sessions_at(touched, "path=src/secret.py") == []
    assert [f["relPath"] for f in other_api.get("/api/files").get_json()["files"]] == ["src/secret.py"]


@pytest.mark.parametrize("query, field", [
    ("path=", "path"), ("prefix=maybe&path=a", "prefix"), ("path=" + "a" * 5000, "path"), ("filesLimit=0", "filesLimit"),
    ("nope=1", "nope"),
])
def test_bad_queries_name_the_field(api, query, field):
    response = api.get(f"/api/files?{query}")
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_the_index_of_a_database_made_before_it_is_built_at_start(app, api, db_path):
    from opensync_lite import create_app

    message(api, "old", "o1", call("MultiEdit", {"file_path": "/w/src/parser.py", "edits": []}))
    api.post("/sync/session", {"externalId": "old", "projectPath": "/w"})
    # As if the index had never been made: the next start builds it from the stored parts.
    rows(db_path, "DELETE FROM file_touches")
    rows(db_path, "DELETE FROM settings WHERE name = 'file_index'")
    fresh = create_app({"OPENSYNC_DB": str(db_path), "TESTING": True}).test_client()
    found = fresh.get("/api/files?path=src/parser.py", headers=api.headers).get_json()
    assert [s["externalId"] for s in found["sessions"]] == ["old"]


# --- what counts as a file (no database) ---------------------------------------------------------

@pytest.mark.parametrize("part, expected", [
    (call("Read", {"file_path": "/a/b.py"}), {"/a/b.py": False}),
    (call("NotebookEdit", {"notebook_path": "/a/n.ipynb"}), {"/a/n.ipynb": True}),
    (call("write", {"filePath": "/a/w.ts", "content": "x"}, "importer"), {"/a/w.ts": True}),
    (call("str_replace_based_edit_tool", {"command": "view", "path": "/a/v.py"}), {"/a/v.py": False}),
    (call("str_replace_based_edit_tool", {"command": "str_replace", "path": "/a/v.py"}), {"/a/v.py": True}),
    (call("edit_file", {"target_file": "src/x.go"}), {"src/x.go": True}),
    (call("Grep", {"pattern": "x", "path": "/a"}), {}),
    (call("Glob", {"pattern": "**/*.py"}), {}),
    (call("Read", '{"file_path": "/a/json-string.py"}'), {"/a/json-string.py": False}),
    (call("patch", {"patchText": "--- a/x.c\n+++ b/x.c\n@@\n"}), {"x.c": True}),
    (call("apply_patch", "*** Begin Patch\n*** Delete File: old.txt\n*** End Patch"), {"old.txt": True}),
    ({"type": "tool_use", "content": {"toolName": "Edit", "args": {"file_path": "/d/e.py"}, "result": "ok"}}, {"/d/e.py": True}),
    ({"type": "tool-result", "content": {"file_path": "/not/a/call.py"}}, {}),
    ({"type": "tool-call", "content": "not an object"}, {}),
])
def test_what_a_tool_call_touched(part, expected):
    assert files.touched([part]) == expected


def test_paths_are_placed_in_the_project():
    assert files.located("src/a.py", "/p") == ("/p/src/a.py", "src/a.py")
    assert files.located("/p/src/../src/a.py", "/p/") == ("/p/src/a.py", "src/a.py")
    assert files.located("/elsewhere/a.py", "/p") == ("/elsewhere/a.py", None)
    assert files.located("/pp/a.py", "/p") == ("/pp/a.py", None)
    assert files.located("C:\\work\\src\\a.py", "C:\\work") == ("C:/work/src/a.py", "src/a.py")
    assert files.located("  ", "/p") is None
