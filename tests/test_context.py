"""/api/context as OpenSync answers it (convex/api.ts getContext: `{text, sessionCount}` or
`{messages:[{role, content, metadata:{sessionId, sessionTitle}}], sessionCount}`, the last 10
messages of each session found), with our filters, caps and redaction."""

import pytest

from factories import BASE, DAY

pytestmark = pytest.mark.both_databases

SECRET = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"


def _session(external_id, title, project, source, created_at, texts):
    session = {"externalId": external_id, "title": title, "projectPath": project, "model": "claude-sonnet-4",
               "createdAt": created_at}
    if source:
        session["source"] = source
    messages = [{"sessionExternalId": external_id, "externalId": f"{external_id}-{i}",
                 "role": "user" if i % 2 == 0 else "assistant", "textContent": text,
                 "parts": [{"type": "text", "content": text}], "createdAt": created_at + i}
                for i, text in enumerate(texts)]
    return session, messages


@pytest.fixture
def history(api):
    """Three sessions about a webhook (12 messages in the first), one that is not."""
    sessions, messages = [], []
    for body in (
        _session("hook", "Stripe webhook retries", "/w/shop", "claude-code", BASE,
                 [f"step {i}: the stripe webhook signature" for i in range(11)] + [f"token is {SECRET} here"]),
        _session("hook2", None, "/w/api", "opencode", BASE + 3 * DAY, ["webhook timeout in the api", "raised it"]),
        _session("hook3", "Webhook queue", "/w/shop", "claude-code", BASE + 6 * DAY, ["webhook queue depth"]),
        _session("other", "Parser bug", "/w/shop", "claude-code", BASE, ["a parser crash", "fixed the parser"]),
    ):
        sessions.append(body[0])
        messages += body[1]
    answer = api.post("/sync/batch", {"sessions": sessions, "messages": messages}).get_json()
    assert answer["errorCount"] == 0, answer
    return {row["externalId"]: row["id"] for row in api.get("/api/sessions?limit=50").get_json()["sessions"]}


def context(api, **params):
    response = api.get("/api/context", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_text_is_opensyncs_prompt_with_the_last_ten_messages_of_each_session(api, history):
    answer = context(api, q="webhook")
    assert set(answer) == {"text", "sessionCount"} and answer["sessionCount"] == 3
    text = answer["text"]
    assert text.startswith('Relevant coding sessions for: "webhook"\n\n')
    assert "--- Session: Stripe webhook retries ---\nProject: /w/shop\nModel: claude-sonnet-4\n\n" in text
    assert "--- Session: Untitled ---\nProject: /w/api\n" in text  # a session without a title
    # The last ten of the first session's twelve messages: not steps 0 and 1.
    assert "[USER]\nstep 2: the stripe webhook signature\n\n" in text
    assert "step 1:" not in text and "step 0:" not in text
    assert "[ASSISTANT]\nraised it\n\n" in text
    assert "Parser bug" not in text


def test_messages_carry_their_session_as_opensyncs_metadata(api, history):
    answer = context(api, q="webhook", format="messages")
    assert set(answer) == {"messages", "sessionCount"} and answer["sessionCount"] == 3
    messages = answer["messages"]
    assert all(set(m) == {"role", "content", "metadata"} for m in messages)
    by_session = {}
    for m in messages:
        by_session.setdefault(m["metadata"]["sessionId"], []).append(m)
    assert set(by_session) == {history["hook"], history["hook2"], history["hook3"]}
    hook = by_session[history["hook"]]
    assert len(hook) == 10 and hook[0]["content"] == "step 2: the stripe webhook signature"
    assert hook[0]["metadata"] == {"sessionId": history["hook"], "sessionTitle": "Stripe webhook retries"}
    assert [m["role"] for m in hook[:2]] == ["user", "assistant"]
    assert "sessionTitle" not in by_session[history["hook2"]][0]["metadata"]  # none, as OpenSync leaves it out


def test_secrets_are_masked_as_in_exports(api, history):
    for fmt in ("text", "messages"):
        response = api.get("/api/context", query_string={"q": "webhook", "format": fmt})
        body = response.get_data(as_text=True)
        assert SECRET not in body and "[REDACTED]" in body and "token is" in body
    assert api.get("/api/export", query_string={"id": history["hook"], "redact": "false"}).get_data(
        as_text=True).count(SECRET) >= 1  # it was there to leak


def test_filters_narrow_the_sessions_found(api, history):
    def found(**params):
        return {m["metadata"]["sessionId"] for m in context(api, q="webhook", format="messages", **params)["messages"]}

    assert found(source="opencode") == {history["hook2"]}
    assert found(project="/w/shop") == {history["hook"], history["hook3"]}
    assert found(**{"from": "2026-01-02"}) == {history["hook2"], history["hook3"]}
    assert found(**{"to": "2026-01-05"}) == {history["hook"], history["hook2"]}
    assert len(found(limit=1)) == 1 and len(found(limit=2)) == 2
    assert context(api, q="webhook", source="cursor") == {"text": 'Relevant coding sessions for: "webhook"\n\n',
                                                          "sessionCount": 0}


def test_the_answer_stops_at_max_chars_with_a_note(api):
    long_text = "webhook " + "x" * 9000
    sessions = [{"externalId": f"long{i}", "title": f"Long {i}"} for i in range(6)]
    messages = [{"sessionExternalId": f"long{i}", "externalId": f"long{i}-{j}", "role": "assistant",
                 "textContent": long_text, "createdAt": j} for i in range(6) for j in range(10)]
    assert api.post("/sync/batch", {"sessions": sessions, "messages": messages}).get_json()["errorCount"] == 0
    answer = context(api, q="webhook", limit=6, maxChars=5000)
    assert answer["sessionCount"] == 6
    assert 5000 <= len(answer["text"]) < 5000 + 1500
    assert "more characters: GET /api/sessions/get?id=" in answer["text"]
    assert "stops at maxChars=5000" in answer["text"]
    whole = context(api, q="webhook", limit=4, maxChars=200_000)["text"]
    assert whole.count("[ASSISTANT]") == 40  # every message, each cut to 4 000 characters with a note
    assert whole.count("[… 5008 more characters") == 40 and "stops at maxChars" not in whole


@pytest.mark.parametrize("params, field", [
    ({}, "q"),
    ({"q": ""}, "q"),
    ({"q": "x", "limit": "21"}, "limit"),
    ({"q": "x", "limit": "0"}, "limit"),
    ({"q": "x", "limit": "five"}, "limit"),
    ({"q": "x", "format": "markdown"}, "format"),
    ({"q": "x", "type": "vector"}, "type"),
    ({"q": "x", "maxChars": "999"}, "maxChars"),
    ({"q": "x", "maxChars": "200001"}, "maxChars"),
    ({"q": "x", "from": "yesterday"}, "from"),
    ({"q": "x", "from": "2026-02-01", "to": "2026-01-01"}, "to"),
    ({"q": "x", "model": "gpt-5"}, "model"),
])
def test_bad_parameters_are_400s_naming_the_field(api, params, field):
    response = api.get("/api/context", query_string=params)
    assert response.status_code == 400
    body = response.get_json()
    assert field in body["fields"] and field in body["error"]


def test_every_search_type_is_taken(api):
    """Semantic and hybrid context (tests/test_semantic.py checks what they find)."""
    for kind in ("fulltext", "semantic", "hybrid"):
        assert context(api, q="x", type=kind)["sessionCount"] == 0


def test_another_users_sessions_are_never_given(api, other_api, history):
    assert context(other_api, q="webhook") == {"text": 'Relevant coding sessions for: "webhook"\n\n',
                                               "sessionCount": 0}


def test_a_key_is_required(client):
    response = client.get("/api/context?q=webhook")
    assert response.status_code == 401 and "error" in response.get_json()


def test_documented_in_openapi(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/context"]["get"]
    assert set(operation["responses"]) >= {"200", "400", "401"}
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "limit", "format", "type", "source", "project", "from", "to", "maxChars"} <= names
