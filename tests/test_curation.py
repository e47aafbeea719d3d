"""Stars, notes, eval statuses and tags: set over PATCH, kept apart from what plugins sync,
filtered on everywhere the other filters work, and private to their user."""

import pytest

from conftest import rows

pytestmark = pytest.mark.both_databases


@pytest.fixture
def three(api):
    for n, source in enumerate(["claude-code", "opencode", "claude-code"]):
        api.post("/sync/session", {"externalId": f"s{n}", "source": source, "title": f"session {n}",
                                   "promptTokens": 10 * (n + 1), "completionTokens": 1})
    return api


def patch(api, ident, body):
    return api.client.patch(f"/api/sessions/{ident}", json=body, headers=api.headers)


def test_star_tag_note_and_grade_a_session(three):
    response = patch(three, "s1", {"starred": True, "tags": ["parser", "flaky", "parser", " "], "note": "good one",
                                   "evalStatus": "golden"})
    assert response.status_code == 200, response.get_json()
    session = response.get_json()["session"]
    assert (session["starred"], session["tags"], session["note"], session["evalStatus"]) == (
        True, ["flaky", "parser"], "good one", "golden")
    # A second PATCH changes only what it sends; tags are replaced as a set.
    session = patch(three, "s1", {"tags": ["parser"], "evalStatus": None}).get_json()["session"]
    assert (session["starred"], session["tags"], session["note"], session["evalStatus"]) == (True, ["parser"], "good one", None)
    assert three.session("s1")["session"]["tags"] == ["parser"]
    listed = {s["externalId"]: s for s in three.get("/api/sessions").get_json()["sessions"]}
    assert listed["s1"]["starred"] is True and listed["s0"]["starred"] is False and listed["s0"]["tags"] == []


def test_a_re_sync_never_touches_them(three, db_path):
    patch(three, "s0", {"starred": True, "tags": ["keep"], "note": "n"})
    three.post("/sync/session", {"externalId": "s0", "title": "renamed by the plugin", "promptTokens": 99})
    three.post("/sync/batch", {"sessions": [{"externalId": "s0", "source": "cursor"}], "messages": []})
    session = three.session("s0")["session"]
    assert (session["title"], session["starred"], session["tags"], session["note"]) == ("renamed by the plugin", True, ["keep"], "n")
    assert rows(db_path, "SELECT COUNT(*) FROM session_tags") == [(1,)]


def test_filters_in_lists_stats_and_exports(three):
    patch(three, "s0", {"starred": True, "tags": ["a"], "evalStatus": "correct"})
    patch(three, "s2", {"starred": True, "tags": ["a", "b"], "evalStatus": "golden"})
    ids = lambda q: sorted(s["externalId"] for s in three.get(f"/api/sessions?{q}").get_json()["sessions"])  # noqa: E731
    assert ids("starred=true") == ["s0", "s2"] and ids("starred=false") == ["s1"]
    assert ids("tag=a") == ["s0", "s2"] and ids("tag=b") == ["s2"] and ids("tag=zzz") == []
    assert ids("evalStatus=golden") == ["s2"] and ids("starred=true&tag=b&source=claude-code") == ["s2"]
    stats = three.get("/api/stats?starred=true").get_json()
    assert stats["sessionCount"] == 2 and stats["promptTokens"] == 10 + 30
    by_source = three.get("/api/stats/sources?tag=a").get_json()["sources"]
    assert [(r["source"], r["sessions"]) for r in by_source] == [("claude-code", 2)]
    exported = three.get("/api/export/sessions?format=json&evalStatus=correct").get_json()
    assert [s["externalId"] for s in exported] == ["s0"]


@pytest.mark.parametrize("body, field", [
    ({}, "starred"),
    ({"starred": "yes"}, "starred"),
    ({"evalStatus": "great"}, "evalStatus"),
    ({"tags": "a"}, "tags"),
    ({"tags": ["x" * 65]}, "tags"),
    ({"tags": [f"t{n}" for n in range(51)]}, "tags"),
    ({"tags": [None]}, "tags"),
    ({"tags": ["ok", 7]}, "tags"),
    ({"note": "x" * 10_001}, "note"),
    ({"stared": True}, "stared"),
])
def test_bad_values_are_a_400_naming_the_field_and_change_nothing(three, db_path, body, field):
    patch(three, "s0", {"starred": True, "tags": ["before"]})
    response = patch(three, "s0", body)
    assert response.status_code == 400 and field in response.get_json()["fields"], response.get_json()
    session = three.session("s0")["session"]
    assert session["starred"] is True and session["tags"] == ["before"]


def test_bad_filter_values_are_a_400(three):
    for query, field in (("starred=maybe", "starred"), ("evalStatus=great", "evalStatus")):
        response = three.get(f"/api/sessions?{query}")
        assert response.status_code == 400 and field in response.get_json()["fields"]


def test_another_user_can_neither_curate_nor_see_nor_filter_by_them(three, other_api, db_path):
    patch(three, "s0", {"tags": ["secret-tag"], "starred": True})
    assert patch(other_api, "s0", {"starred": False}).status_code == 404
    assert other_api.client.patch("/api/sessions?externalId=s0", json={"starred": False},
                                  headers=other_api.headers).status_code == 404
    other_api.post("/sync/session", {"externalId": "mine"})
    assert other_api.get("/api/sessions?tag=secret-tag").get_json()["sessions"] == []
    assert three.session("s0")["session"]["starred"] is True
    # Tag names are per user: the same name elsewhere is another tag.
    patch(other_api, "mine", {"tags": ["secret-tag"]})
    assert rows(db_path, "SELECT COUNT(*) FROM tags WHERE name = 'secret-tag'") == [(2,)]
    assert [s["externalId"] for s in three.get("/api/sessions?tag=secret-tag").get_json()["sessions"]] == ["s0"]


def test_they_go_with_the_session(three, db_path):
    patch(three, "s0", {"tags": ["x"], "starred": True})
    assert three.delete("/api/sessions/s0").status_code == 200
    assert rows(db_path, "SELECT COUNT(*) FROM curations") == [(0,)]
    assert rows(db_path, "SELECT COUNT(*) FROM session_tags") == [(0,)]
    assert patch(three, "s0", {"starred": True}).status_code == 404


def test_patch_by_external_id_with_a_slash(three):
    three.post("/sync/session", {"externalId": "a/b"})
    response = three.client.patch("/api/sessions?externalId=a/b", json={"starred": True}, headers=three.headers)
    assert response.status_code == 200 and response.get_json()["session"]["starred"] is True
