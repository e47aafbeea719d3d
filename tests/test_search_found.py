"""Search finds what happened: tool inputs, tool outputs and thinking, narrowed by ``where``;
every word a prefix; one result per session, ties newest first, paged; a database made
before version 7 has its stored parts searched after start-up."""

import pytest

from conftest import Api, downgrade_to_version_6, make_key, rows
from opensync_lite import create_app
from opensync_lite.search import texts

pytestmark = pytest.mark.both_databases

FAILING_RUN = "collected 12 items\n" + "tests/test_tok.py ....\n" * 3000 + "E   AssertionError: expected 10 tokens, got 9\n"


@pytest.fixture
def worked(api):
    """A Claude Code-shaped session: a prompt, a thought, a Bash call and its failing output,
    an Edit, git's answer; and a second session that only talks."""
    api.post("/sync/session", {"externalId": "w1", "source": "claude-code", "title": "Fix the tokenizer",
                               "projectName": "tok", "projectPath": "/src/tok", "model": "claude-opus-4-1"})
    api.post("/sync/batch", {"messages": [
        {"sessionExternalId": "w1", "externalId": "p1", "role": "user", "createdAt": 1_000,
         "textContent": "The retraining job OOMs, see why"},
        {"sessionExternalId": "w1", "externalId": "a1", "role": "assistant", "createdAt": 2_000, "textContent": "",
         "parts": [{"type": "thinking", "content": "Probably the batch sampler keeps every shard resident"},
                   {"type": "tool-call", "content": {"id": "toolu_1", "name": "Bash", "input": {"command": "pytest -x tests"}}}]},
        {"sessionExternalId": "w1", "externalId": "r1", "role": "user", "createdAt": 3_000, "textContent": "",
         "parts": [{"type": "tool-result", "content": {"toolUseId": "toolu_1", "isError": True,
                                                       "content": [{"type": "text", "text": FAILING_RUN}]}}]},
        {"sessionExternalId": "w1", "externalId": "a2", "role": "assistant", "createdAt": 4_000, "textContent": "Fixed.",
         "parts": [{"type": "tool-call", "content": {"id": "toolu_2", "name": "Edit", "input": {
             "file_path": "/src/tok/split.py", "old_string": "return pieces", "new_string": "return merge_surrogates(pieces)"}}},
                   {"type": "tool-result", "content": {"toolUseId": "toolu_2", "content": "working tree clean"}}]},
    ]})
    api.post("/sync/session", {"externalId": "w2", "source": "codex", "title": "Chat about OOM killers"})
    api.post("/sync/message", {"sessionExternalId": "w2", "externalId": "q1", "role": "assistant", "createdAt": 5_000,
                               "textContent": "The kernel's OOM killer picks the largest process"})


def search(api, q, **params):
    response = api.get("/api/search", query_string={"q": q, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def found(api, q, **params):
    return [(r["externalId"], [m["foundIn"] for m in r["matches"]]) for r in search(api, q, **params)["results"]]


def test_tool_inputs_outputs_and_thinking_are_found(api, worked):
    assert found(api, "expected 10 tokens") == [("w1", ["tool"])]  # at the end of a 70 kB output
    assert found(api, "working tree clean") == [("w1", ["tool"])]
    assert found(api, "merge_surrogates") == [("w1", ["tool"])]  # an Edit's new text
    assert found(api, "shard resident") == [("w1", ["thinking"])]
    hit = search(api, "expected 10 tokens")["results"][0]
    assert "<mark>expected</mark> <mark>10</mark> <mark>tokens</mark>" in hit["snippet"]


def test_where_narrows_to_one_kind_of_text(api, worked):
    assert found(api, "pytest", where="tools") == [("w1", ["tool"])]
    assert found(api, "pytest", where="thinking") == []
    assert found(api, "sampler", where="thinking") == [("w1", ["thinking"])]
    assert found(api, "OOM", where="prompts") == [("w1", ["prompt"])]
    assert found(api, "OOM", where="answers") == [("w2", ["answer"])]
    assert found(api, "tokenizer", where="prompts") == []  # the title is no prompt
    # Everywhere: titles too (each engine ranks title and answer its own way).
    assert sorted((ext, sorted(where)) for ext, where in found(api, "OOM")) == [
        ("w1", ["prompt"]), ("w2", ["answer", "title"])]


def test_every_word_is_a_prefix(api, worked):
    """ "OOM retrain" finds "OOMs" and "retraining"; a quoted word is matched whole."""
    assert found(api, "OOM retrain") == [("w1", ["prompt"])]
    assert found(api, '"OOM" retrain') == []
    assert found(api, "work tre cle") == [("w1", ["tool"])]


def test_results_carry_date_project_model_source(api, worked):
    (hit,) = search(api, "sampler")["results"]
    assert (hit["source"], hit["projectName"], hit["projectPath"], hit["model"]) == (
        "claude-code", "tok", "/src/tok", "claude-opus-4-1")
    assert hit["createdAt"] <= hit["updatedAt"] and hit["updatedAt"] > 1_700_000_000_000


def test_ties_newest_first_and_pages_cover_all_once(api):
    """Equal ranks: the session active last first. Pages of 2 give every session once."""
    for i in range(5):
        api.post("/sync/session", {"externalId": f"t{i}", "title": f"quota check {i}"})
    order = [r["externalId"] for r in search(api, "quota")["results"]]
    assert order == ["t4", "t3", "t2", "t1", "t0"]
    api.post("/sync/session", {"externalId": "t1", "title": "quota check again"})  # t1 is now the newest
    assert [r["externalId"] for r in search(api, "quota")["results"]][0] == "t1"
    seen, offset = [], 0
    while offset is not None:
        page = search(api, "quota", limit=2, offset=offset)
        seen += [r["externalId"] for r in page["results"]]
        offset = page["nextOffset"]
    assert sorted(seen) == ["t0", "t1", "t2", "t3", "t4"] and len(seen) == 5


def test_a_session_shows_its_best_three_matches(api):
    api.post("/sync/batch", {"messages": [
        {"sessionExternalId": "many", "externalId": f"m{i}", "role": "assistant", "createdAt": i,
         "textContent": "flaky " * (i + 1)} for i in range(6)]})
    (hit,) = search(api, "flaky")["results"]
    ranks = [m["rank"] for m in hit["matches"]]
    assert len(ranks) == 3 and ranks == sorted(ranks) and hit["rank"] == ranks[0]
    assert [m["snippet"].count("<mark>") for m in hit["matches"]] == [6, 5, 4]


def test_tool_text_is_capped_head_and_tail():
    huge = "start " + "x" * 1_000_000 + " the end"
    text = texts.part_texts([{"type": "tool-result", "content": huge}])["tool_text"]
    assert len(text) <= texts.PART_CAP + 3 and text.startswith("start ") and text.endswith(" the end")
    many = [{"type": "tool-result", "content": "y" * 20_000}] * 10
    assert len(texts.part_texts(many)["tool_text"]) == texts.MESSAGE_CAP
    stored = texts.part_texts([{"type": "tool-call", "content": {"name": "Bash", "input": {"command": "a\x00b\ud800"}}}])
    assert stored["tool_text"] == "Bash\na\ufffdb\ufffd"


def test_a_version_6_database_searches_its_stored_parts_after_start_up(db_path):
    app = create_app({"OPENSYNC_DB": db_path})
    api = Api(app.test_client(), make_key(app))
    api.post("/sync/message", {"sessionExternalId": "old", "externalId": "m", "role": "assistant", "textContent": "ran it",
                               "parts": [{"type": "tool-result", "content": "segfault in libtorch"}]})
    app.extensions["opensync"].close()
    downgrade_to_version_6(db_path)
    assert rows(db_path, "SELECT COUNT(*) FROM parts") == [(1,)]
    app = create_app({"OPENSYNC_DB": db_path})
    try:
        api = Api(app.test_client(), make_key(app))
        assert found(api, "segfault") == [("old", ["tool"])]
        assert found(api, "ran") == [("old", ["answer"])]
        assert rows(db_path, "SELECT value FROM settings WHERE name = 'part_texts'") == [("done",)]
    finally:
        app.extensions["opensync"].close()
