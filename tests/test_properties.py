"""Property tests: whatever a client sends, the answer is 200 with exactly that data stored, or
a 4xx JSON error with the database unchanged; never a 5xx."""

import pytest
import itertools
import json
import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import snapshot

pytestmark = pytest.mark.both_databases

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large, HealthCheck.too_slow],
)

# Text that stresses storage: NULs, lone surrogates, emoji, RTL, long runs.
nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None), max_size=40),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "😀" * 3, "\u202e", "'; DROP TABLE sessions; --", "%s%n"]),
    st.integers(4000, 6000).map(lambda n: "é" * n),  # past the length limits, cheaply
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), nasty_text,
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4), max_leaves=20)
counts = st.one_of(st.integers(min_value=0, max_value=10**12), st.integers(), json_values)
ids = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: f"{u}\x00"), json_values)
optional = st.one_of(st.just(None), json_values)


def near_misses(name):
    """Keys a client may send by mistake for the field ``name``: its snake_case twin (the
    schema's own attribute name), and other casings. None of them is that field."""
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
    return {snake, name.lower(), name.upper(), name[0].upper() + name[1:]} - {name}


def body_strategy(required, fields):
    misses = {miss: json_values for name in [*required, *fields] for miss in near_misses(name)}
    return st.fixed_dictionaries(required, optional={**fields, **misses, "extraField": json_values, "nested": json_values})


def extra_keys(body, known):
    return {k: v for k, v in body.items() if k not in known and k != "sessionId"}


session_bodies = body_strategy(
    {"externalId": ids},
    {
        "source": st.one_of(st.sampled_from(["claude-code", "opencode", "cursor"]), nasty_text, optional),
        "title": st.one_of(nasty_text, optional), "projectPath": nasty_text, "projectName": nasty_text,
        "model": nasty_text, "provider": nasty_text, "promptTokens": counts, "completionTokens": counts,
        "cost": st.one_of(st.floats(), counts), "durationMs": counts, "messageCount": counts,
        "toolCallCount": counts, "endReason": nasty_text,
        "createdAt": st.one_of(st.integers(), st.datetimes().map(lambda d: d.isoformat()), nasty_text),
    },
)
part = st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["text", "tool-call"]), nasty_text)},
                             optional={"content": json_values, "Type": json_values, "CONTENT": json_values})
message_bodies = body_strategy(
    {"sessionExternalId": ids, "externalId": ids},
    {
        "role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool", "unknown"]), nasty_text),
        "textContent": st.one_of(nasty_text, optional), "model": nasty_text, "promptTokens": counts,
        "completionTokens": counts, "durationMs": counts, "source": st.one_of(nasty_text, optional),
        "createdAt": st.one_of(st.integers(), nasty_text),
        "parts": st.one_of(st.lists(part, max_size=5), json_values),
    },
)

SESSION_KEYS = ["source", "title", "projectPath", "projectName", "model", "provider", "promptTokens",
                "completionTokens", "cost", "durationMs", "toolCallCount", "endReason"]
MESSAGE_KEYS = ["role", "textContent", "model", "promptTokens", "completionTokens", "durationMs"]


_fresh = itertools.count()


def fresh(body, *keys):
    """Make the body's ids new to the database (when they are strings): examples share one
    database, and hypothesis replays examples, which must then behave the same."""
    if isinstance(body, dict):
        tag = f"x{next(_fresh)}-"
        for key in keys:
            if isinstance(body.get(key), str):
                body[key] = tag + body[key]
    return body


def check_error(response, before, db_path):
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])
    assert isinstance(response.get_json()["error"], str)
    assert snapshot(db_path) == before


def same(stored, sent):
    if isinstance(sent, float):
        return math.isclose(stored, sent, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(sent, str):  # a lone surrogate in text is repaired, not refused
        return stored == re.sub("[\ud800-\udfff]", "\ufffd", sent)
    return stored == sent


@SETTINGS
@given(body=session_bodies)
def test_session_bodies(api, db_path, body):
    fresh(body, "externalId")
    before = snapshot(db_path)
    response = api.post("/sync/session", body)
    if response.status_code != 200:
        return check_error(response, before, db_path)
    session = api.session(body["externalId"])["session"]
    for key in SESSION_KEYS:
        if body.get(key) is not None and not (key == "source" and body[key] == "unknown"):
            assert same(session[key], body[key]), key
        else:  # a near-miss key never stands in for the field
            assert session[key] in (None, 0), key
    extra = extra_keys(body, {"externalId", *SESSION_KEYS, "messageCount", "createdAt"})
    assert {k: session["extra"][k] for k in extra} == extra


@SETTINGS
@given(body=message_bodies)
def test_message_bodies(api, db_path, body):
    fresh(body, "sessionExternalId", "externalId")
    before = snapshot(db_path)
    response = api.post("/sync/message", body)
    if response.status_code != 200:
        return check_error(response, before, db_path)
    messages = api.session(body["sessionExternalId"])["messages"]
    (message,) = [m for m in messages if m["externalId"] == body["externalId"]]
    for key in MESSAGE_KEYS:
        if body.get(key) is not None:
            assert same(message[key], body[key]), key
        else:
            assert message[key] in (None, 0, "", "unknown"), key
    extra = extra_keys(body, {"sessionExternalId", "externalId", "source", "createdAt", "parts", *MESSAGE_KEYS})
    assert {k: message["extra"][k] for k in extra} == extra
    if body.get("parts") is not None:
        assert message["parts"] == [
            {"type": p["type"], "content": p.get("content"), **({"extra": extra_keys(p, {"type", "content"})}
                                                               if extra_keys(p, {"type", "content"}) else {})}
            for p in body["parts"]]


@SETTINGS
@given(sessions=st.lists(session_bodies, max_size=4), messages=st.lists(message_bodies, max_size=4))
def test_batch_bodies(api, db_path, sessions, messages):
    for body in sessions:
        fresh(body, "externalId")
    for body in messages:
        fresh(body, "sessionExternalId", "externalId")
    before = snapshot(db_path)
    response = api.post("/sync/batch", {"sessions": sessions, "messages": messages})
    if response.status_code != 200:
        return check_error(response, before, db_path)
    answer = response.get_json()
    rejected = {(e["kind"], e["index"]) for e in answer["errors"]}
    assert answer["sessions"] + answer["messages"] + len(rejected) == len(sessions) + len(messages)
    for index, body in enumerate(sessions):
        if ("session", index) not in rejected:
            assert api.session(body["externalId"])["session"]["externalId"] == body["externalId"]
    for index, body in enumerate(messages):
        if ("message", index) not in rejected:
            stored = api.session(body["sessionExternalId"])["messages"]
            assert body["externalId"] in {m["externalId"] for m in stored}


@SETTINGS
@given(raw=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bytes_never_crash(api, db_path, raw):
    before = snapshot(db_path)
    for path in ("/sync/session", "/sync/message", "/sync/batch"):
        response = api.post(path, data=raw, content_type="application/json")
        if response.status_code != 200:
            check_error(response, before, db_path)
            continue
        before = snapshot(db_path)


def test_json_and_sqlite_edge_cases(api, db_path):
    """Things Python's json module and SQLite accept that the schema must refuse."""
    before = snapshot(db_path)
    cases = [
        b'{"externalId": "a", "cost": NaN}', b'{"externalId": "a", "cost": -Infinity}',
        b'{"externalId": "a", "promptTokens": 18446744073709551616}',
        b'{"externalId": "a", "promptTokens": ' + b"9" * 5000 + b"}",
        b'{"externalId": "a", "cost": 1e999}',
        b'{"externalId": "a\\u0000b"}', b'{"externalId": "\\ud800"}', b'{"externalId": "a", "title": "a\\u0000"}',
        b'{"externalId": "a", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"externalId": "a", "x": ' + b"[" * 900 + b"]" * 900 + b"}",
        b'{"externalId": "a", "x": ' + b'{"k":' * 65 + b"1" + b"}" * 65 + b"}",
        '{"externalId": "caf\u00e9"}'.encode("latin-1"),
        b'{"externalId": "a", "externalId": {"dup": 1}}',
    ]
    for raw in cases:
        response = api.post("/sync/session", data=raw, content_type="application/json")
        check_error(response, before, db_path)
    # 64 levels is fine, and reads back.
    deep = {"externalId": "deep", "x": json.loads("[" * 63 + "]" * 63)}
    assert api.post("/sync/session", deep).status_code == 200
    assert api.session("deep")["session"]["extra"]["x"] == deep["x"]
