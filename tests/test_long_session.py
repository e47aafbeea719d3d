"""One long session is bounded work: `GET /api/sessions/get` answers a page of its messages
(1 000 by default, `messagesLimit` up to 5 000, `messagesOffset` to go on, `moreMessages` when
some remain), and the session page shows it in parts of 1 000 messages with links between them,
its reader's outline made from the part shown."""

import re

import pytest

from conftest import Api, make_key
from factories import bulk_sessions
from opensync_lite import create_app
from test_dashboard import sign_in

MESSAGES = 2_500


@pytest.fixture(scope="module")
def long_session(tmp_path_factory):
    app = create_app({"OPENSYNC_DB": str(tmp_path_factory.mktemp("long") / "x.db"), "TESTING": True})
    key = make_key(app)
    bulk_sessions(app, "local", 1, MESSAGES, prefix="long")
    api = Api(app.test_client(), key)
    session_id = api.get("/api/sessions?limit=1").get_json()["sessions"][0]["id"]
    browser = app.test_client()
    sign_in(browser, key)
    yield api, browser, session_id
    app.extensions["opensync"].close()


def ids(answer):
    return [m["externalId"] for m in answer["messages"]]


def test_the_api_answers_a_page_of_messages_and_says_more_remain(long_session):
    api, _, session_id = long_session
    first = api.get(f"/api/sessions/get?id={session_id}").get_json()
    assert len(first["messages"]) == 1000 and first["moreMessages"] is True and first["nextMessagesOffset"] == 1000
    assert first["session"]["messageCount"] == MESSAGES and "files" in first and "subagents" in first
    assert ids(first)[:2] == ["long-0-0", "long-0-1"]
    rest = api.get(f"/api/sessions/get?id={session_id}&messagesOffset=1000&messagesLimit=5000").get_json()
    assert len(rest["messages"]) == MESSAGES - 1000 and rest["moreMessages"] is False and rest["nextMessagesOffset"] is None
    assert ids(first) + ids(rest) == [f"long-0-{j}" for j in range(MESSAGES)]  # in order, none twice


@pytest.mark.parametrize("query", ["messagesLimit=5001", "messagesLimit=0", "messagesOffset=-1", "messagesLimit=ten"])
def test_a_page_past_its_bounds_is_a_400_naming_the_parameter(long_session, query):
    api, _, session_id = long_session
    response = api.get(f"/api/sessions/get?id={session_id}&{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.get_json()["fields"]


def test_the_session_page_shows_a_part_and_links_to_the_next(long_session):
    _, browser, session_id = long_session
    page = browser.get(f"/sessions/{session_id}").get_data(as_text=True)
    assert "Messages 1–1,000 of 2,500" in page
    assert f'href="/sessions/{session_id}?part=2#conversation-head"' in page
    assert "Question 998 of session 0" in page and "Question 1000 of session 0" not in page
    outline = re.search(r'<details class="outline".*?</details>', page, re.S).group()
    assert outline.count("<li") == 500  # the prompts of this part, linked to its turns
    last = browser.get(f"/sessions/{session_id}?part=3").get_data(as_text=True)
    assert "Messages 2,001–2,500 of 2,500" in last and "Question 2498 of session 0" in last
    assert f'href="/sessions/{session_id}?part=2#conversation-head"' in last and "?part=4" not in last
    assert browser.get(f"/sessions/{session_id}?part=4").status_code == 404
    assert browser.get(f"/sessions/{session_id}?part=zero").status_code == 400
