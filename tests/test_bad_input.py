"""Bad input gets a 4xx JSON error naming the field, never a 500, and writes nothing."""

import json

import pytest

from conftest import snapshot

pytestmark = pytest.mark.both_databases

S = {"externalId": "s"}
M = {"sessionExternalId": "s", "externalId": "m", "role": "user"}

BAD_SESSIONS = [
    ({**S, "promptTokens": -1}, "promptTokens"),
    ({**S, "completionTokens": "12"}, "completionTokens"),
    ({**S, "promptTokens": 1.5}, "promptTokens"),
    ({**S, "promptTokens": True}, "promptTokens"),
    ({**S, "promptTokens": 2**63}, "promptTokens"),
    ({**S, "promptTokens": 10**12 + 1}, "promptTokens"),
    ({**S, "cost": 1e10}, "cost"),
    ({**S, "cost": -0.01}, "cost"),
    ({**S, "cost": "free"}, "cost"),
    ({**S, "durationMs": [1]}, "durationMs"),
    ({**S, "title": 5}, "title"),
    ({**S, "title": "x" * 5000}, "title"),
    ({**S, "externalId": ""}, "externalId"),
    ({**S, "externalId": "x" * 300}, "externalId"),
    ({**S, "externalId": 12}, "externalId"),
    ({**S, "source": {"name": "cursor"}}, "source"),
    ({**S, "model": "a\x00b"}, "model"),
    ({**S, "createdAt": "yesterday"}, "createdAt"),
    ({**S, "createdAt": -5}, "createdAt"),
]

BAD_MESSAGES = [
    ({**M, "role": "wizard"}, "role"),
    ({k: v for k, v in M.items() if k != "sessionExternalId"}, "sessionExternalId"),
    ({k: v for k, v in M.items() if k != "externalId"}, "externalId"),
    ({**M, "textContent": ["a"]}, "textContent"),
    ({**M, "promptTokens": -3}, "promptTokens"),
    ({**M, "parts": "text"}, "parts"),
    ({**M, "parts": [{"content": "no type"}]}, "parts"),
]


@pytest.fixture
def seeded(api, db_path):
    api.post("/sync/session", {**S, "title": "kept", "promptTokens": 5})
    api.post("/sync/message", {**M, "textContent": "kept"})
    return snapshot(db_path)


@pytest.mark.parametrize("body,field", BAD_SESSIONS)
def test_bad_session_fields(api, db_path, seeded, body, field):
    response = api.post("/sync/session", body)
    assert response.status_code == 400
    answer = response.get_json()
    assert field in answer["fields"] and field in answer["error"]
    assert snapshot(db_path) == seeded


@pytest.mark.parametrize("body,field", BAD_MESSAGES)
def test_bad_message_fields(api, db_path, seeded, body, field):
    response = api.post("/sync/message", body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert snapshot(db_path) == seeded


@pytest.mark.parametrize("path", ["/sync/session", "/sync/message", "/sync/batch"])
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"externalId": "s",',
        b"\xff\xfe\xfa",
        b'{"externalId": "s", "cost": NaN}',
        b'{"externalId": "s", "cost": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_unparseable_bodies_are_400(api, db_path, seeded, path, raw):
    response = api.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]
    assert snapshot(db_path) == seeded


@pytest.mark.parametrize("path", ["/sync/session", "/sync/message"])
@pytest.mark.parametrize("body", [[], [S], "s", 1, None])
def test_non_object_bodies_are_400(api, db_path, seeded, path, body):
    response = api.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert snapshot(db_path) == seeded


def test_deeply_nested_extra_is_refused_not_crashed(api, db_path, seeded):
    deep = "[" * 5000 + "]" * 5000
    response = api.post("/sync/session", data='{"externalId": "s2", "x": %s}' % deep, content_type="application/json")
    assert response.status_code == 400
    assert snapshot(db_path) == seeded


def test_body_over_the_limit_is_413(app, api, db_path, seeded):
    app.config["OPENSYNC_MAX_BODY"] = 1024
    response = api.post("/sync/message", {**M, "textContent": "x" * 2048})
    assert response.status_code == 413
    answer = response.get_json()
    # It names the limit and the setting that moves it.
    assert "1024 bytes" in answer["error"] and "OPENSYNC_MAX_BODY" in answer["error"] and "--max-body" in answer["error"]
    assert answer["limit"] == 1024 and answer["setting"] == "OPENSYNC_MAX_BODY"
    assert snapshot(db_path) == seeded


def test_the_default_body_limit_is_named_in_mib(api, db_path, seeded):
    response = api.post("/sync/batch", data=b"{" + b" " * (17 * 2**20) + b"}", content_type="application/json")
    assert response.status_code == 413
    assert "16 MiB (16777216 bytes)" in response.get_json()["error"]
    assert snapshot(db_path) == seeded


def test_a_message_of_ten_thousand_invalid_parts_answers_a_bounded_400(api, db_path, seeded):
    from opensync_lite.schemas import MAX_FIELD_ERRORS
    request = json.dumps({**M, "parts": [{}] * 10_000})
    response = api.post("/sync/message", data=request, content_type="application/json")
    assert response.status_code == 400
    answer = response.get_json()
    assert len(answer["fields"]["parts"]) == MAX_FIELD_ERRORS and answer["fieldErrorCount"] == 10_000
    assert answer["fields"]["parts"]["0"] == {"type": ["Missing data for required field."]}
    assert len(response.data) < 4096
    assert snapshot(db_path) == seeded


def test_more_parts_than_a_message_may_have_are_refused_naming_the_limit(api, db_path, seeded):
    from opensync_lite.schemas import MAX_PARTS
    response = api.post("/sync/message", {**M, "parts": [{"type": "text", "content": "x"}] * (MAX_PARTS + 1)})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"parts": [f"Longer than maximum length {MAX_PARTS}."]}
    assert snapshot(db_path) == seeded


def test_default_body_limit_is_16_mib(app):
    assert app.config["OPENSYNC_MAX_BODY"] == 16 * 1024 * 1024


def test_errors_carry_no_internals(api):
    body = api.post("/sync/session", {"externalId": 1}).get_data(as_text=True)
    for leak in ("Traceback", "sqlite", "SELECT", "peewee"):
        assert leak not in body
