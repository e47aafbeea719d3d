"""The one-pass load of sync bodies (schemas._Body.load) gives exactly what marshmallow's own
Schema.load gives: the same data for a valid body, the same errors for an invalid one."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from opensync_lite import schemas
from test_properties import message_bodies, session_bodies

SCHEMAS = {"session": schemas.session_in, "message": schemas.message_in, "message from a file": schemas.message_from_file}


def both(schema, body):
    """(the one-pass result, marshmallow's), each the loaded data or ("error", messages)."""
    def run(load):
        try:
            return load(body)
        except ValidationError as err:
            return "error", err.normalized_messages()
    return run(schema.load), run(lambda b: Schema.load(schema, b))


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_one_pass_load_is_marshmallows(name, data):
    body = data.draw(session_bodies if name == "session" else message_bodies)
    quick, marshmallow = both(SCHEMAS[name], body)
    assert quick == marshmallow


def test_a_valid_body_takes_the_one_pass_and_an_invalid_one_marshmallows_errors():
    body = {"sessionExternalId": "s", "externalId": "m", "role": "user", "textContent": "hi\ud800",
            "createdAt": "2026-03-02T09:00:00Z", "parts": [{"type": "text", "content": "hi", "colour": 1}], "new": 2}
    quick, marshmallow = both(schemas.message_in, body)
    assert quick == marshmallow and quick["text_content"] == "hi\ufffd" and quick["extra"] == {"new": 2}
    assert quick["parts"] == [{"type": "text", "content": "hi", "extra": {"colour": 1}}]
    bad = {**body, "createdAt": "yesterday", "promptTokens": -1, "parts": [{"content": 1}]}
    quick, marshmallow = both(schemas.message_in, bad)
    assert quick == marshmallow and quick[0] == "error"
    assert set(quick[1]) == {"createdAt", "promptTokens", "parts"}  # every field's error at once
