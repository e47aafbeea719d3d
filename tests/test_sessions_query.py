import base64
import json

import pytest

from factories import make_sessions, post_all

pytestmark = pytest.mark.both_databases

SORT_KEYS = {"updatedAt": None, "createdAt": "createdAt", "totalTokens": None, "cost": "cost",
             "durationMs": "durationMs", "messageCount": None}


@pytest.fixture
def data(api):
    sessions = make_sessions(30)
    post_all(api, sessions, messages_per_session=1)
    return sessions


def fetch_all(api, **params):
    seen, cursor, pages = [], None, 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        body = api.get("/api/sessions", query_string=query).get_json()
        seen += body["sessions"]
        pages += 1
        cursor = body["nextCursor"]
        if not cursor:
            return seen, body["total"], pages


@pytest.mark.parametrize("sort_by", list(SORT_KEYS))
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_cover_every_row_once_in_order(api, data, sort_by, order):
    rows, total, pages = fetch_all(api, sortBy=sort_by, sortOrder=order, limit=7)
    assert total == 30 and pages == 5
    ids = [r["externalId"] for r in rows]
    assert len(ids) == len(set(ids)) == 30
    keys = [(r[sort_by], int(r["id"])) for r in rows]
    assert keys == sorted(keys, reverse=(order == "desc"))


def test_rows_inserted_between_pages_are_not_lost_or_repeated(api, data):
    first = api.get("/api/sessions", query_string={"sortBy": "createdAt", "sortOrder": "asc", "limit": 10}).get_json()
    # New sessions sort after the cursor (later createdAt) or before it (earlier): neither
    # shifts the rows still to come.
    api.post("/sync/session", {"externalId": "late", "createdAt": 1_900_000_000_000})
    api.post("/sync/session", {"externalId": "early", "createdAt": 1_000_000_000_000})
    rest, cursor = [], first["nextCursor"]
    while cursor:
        body = api.get("/api/sessions", query_string={"sortBy": "createdAt", "sortOrder": "asc", "limit": 10, "cursor": cursor}).get_json()
        rest += body["sessions"]
        cursor = body["nextCursor"]
    seen = [r["externalId"] for r in first["sessions"] + rest]
    assert len(seen) == len(set(seen))
    assert set(s["externalId"] for s in data) <= set(seen)
    assert "late" in seen and "early" not in seen


@pytest.mark.parametrize("params,predicate", [
    ({"source": "cursor"}, lambda s: s.get("source") == "cursor"),
    ({"source": "unknown"}, lambda s: "source" not in s),
    ({"model": "gpt-5"}, lambda s: s["model"] == "gpt-5"),
    ({"provider": "google"}, lambda s: s["provider"] == "google"),
    ({"project": "alpha"}, lambda s: s.get("projectName") == "alpha"),
    ({"project": "/w/gamma"}, lambda s: s["projectPath"] == "/w/gamma"),
    ({"from": "2026-01-03", "to": "2026-01-04"}, lambda s: 1_767_398_400_000 <= s["createdAt"] < 1_767_571_200_000),
    ({"q": "parsers"}, lambda s: "parsers" in s["title"]),
    ({"source": "claude-code", "model": "claude-sonnet-4", "q": "parsers"},
     lambda s: s.get("source") == "claude-code" and s["model"] == "claude-sonnet-4" and "parsers" in s["title"]),
])
def test_filters(api, data, params, predicate):
    rows, total, _ = fetch_all(api, limit=4, **params)
    wanted = {s["externalId"] for s in data if predicate(s)}
    assert wanted, "the filter should select something"
    assert {r["externalId"] for r in rows} == wanted and total == len(wanted)


def test_q_matches_message_text(api, data):
    api.post("/sync/message", {"sessionExternalId": "s004", "externalId": "x", "role": "user", "textContent": "zebra crossing"})
    rows, total, _ = fetch_all(api, q="zebra")
    assert [r["externalId"] for r in rows] == ["s004"] and total == 1


def test_default_limit_is_50(api):
    for i in range(55):
        api.post("/sync/session", {"externalId": f"x{i}"})
    body = api.get("/api/sessions").get_json()
    assert len(body["sessions"]) == 50 and body["total"] == 55 and body["nextCursor"]


def forged(payload):
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize("query,param", [
    ("sortBy=title", "sortBy"), ("sortOrder=up", "sortOrder"), ("limit=0", "limit"), ("limit=10000", "limit"),
    ("limit=abc", "limit"), ("from=31/12/2025", "from"), ("to=2026-02-30", "to"),
    ("cursor=!!!", "cursor"), ("cursor=" + forged(["cost", True, "1; DROP", 1]), "cursor"),
    ("cursor=" + forged({"a": 1}), "cursor"), ("sortBy=cost&cursor=" + forged(["updated_at", True, 1, 1]), "cursor"),
])
def test_bad_list_params(api, data, query, param):
    response = api.get(f"/api/sessions?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert param in body["fields"] and param in body["error"]


def test_filter_options(api, data):
    body = api.get("/api/sessions/filters").get_json()
    sources = {o["value"]: o["count"] for o in body["sources"]}
    assert sources == {"claude-code": 8, "opencode": 8, "cursor": 7, None: 7}
    assert {o["value"] for o in body["models"]} == {"claude-sonnet-4", "gpt-5", "gemini-2.5-pro"}
    assert {o["value"] for o in body["providers"]} == {"anthropic", "openai", "google"}
    assert {o["value"]: o["count"] for o in body["projects"]} == {"/w/alpha": 10, "/w/beta": 10, "/w/gamma": 10}
    assert {o["value"]: o["label"] for o in body["projects"]} == {"/w/alpha": "alpha", "/w/beta": "beta", "/w/gamma": "gamma"}


def test_lists_are_per_user(api, other_api, data):
    body = other_api.get("/api/sessions?q=parsers").get_json()
    assert body == {"sessions": [], "total": 0, "nextCursor": None, "previousCursor": None}
    assert all(v == [] for v in other_api.get("/api/sessions/filters").get_json().values())


def test_previous_pages_walk_back_to_the_first(api):
    for i in range(7):
        api.post("/sync/session", {"externalId": f"k{i}", "createdAt": 1000 + i})
    query = {"sortBy": "createdAt", "limit": 3}
    pages, answer = [], api.get("/api/sessions", query_string=query).get_json()
    assert answer["previousCursor"] is None
    while True:
        pages.append([s["externalId"] for s in answer["sessions"]])
        if not answer["nextCursor"]:
            break
        answer = api.get("/api/sessions", query_string={**query, "cursor": answer["nextCursor"]}).get_json()
    assert pages == [["k6", "k5", "k4"], ["k3", "k2", "k1"], ["k0"]]
    back = []
    while answer["previousCursor"]:
        answer = api.get("/api/sessions", query_string={**query, "before": answer["previousCursor"]}).get_json()
        back.append([s["externalId"] for s in answer["sessions"]])
    assert back == [["k3", "k2", "k1"], ["k6", "k5", "k4"]]
    assert answer["nextCursor"] and answer["total"] == 7
    both = api.get("/api/sessions", query_string={**query, "cursor": answer["nextCursor"], "before": answer["nextCursor"]})
    assert both.status_code == 400 and "before" in both.get_json()["fields"]
