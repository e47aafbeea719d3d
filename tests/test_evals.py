"""Evals export: each format read back by the consuming tool's own code where Python has it
(DeepEval's dataset loader and test-case models; the openai package's chat message types),
and Promptfoo's documented test-case shape; options, filters, selection, preview, redaction."""

import json
import os

import pytest

from conftest import rows  # noqa: F401  (fixtures)

pytestmark = pytest.mark.both_databases
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PROJECT = "/home/alice/shop"


def msg(session, n, role, text, parts=None, created=0):
    body = {"sessionExternalId": session, "externalId": f"{session}-{n}", "role": role, "textContent": text,
            "createdAt": 1_767_225_600_000 + created * 1000 + n}
    if parts is not None:
        body["parts"] = parts
    return body


@pytest.fixture
def graded(api):
    """Three sessions: a golden one with two turns and a tool call, an incorrect one, and one
    that never got an answer."""
    sessions = [{"externalId": "gold", "source": "claude-code", "title": "Fix the parser", "projectPath": PROJECT,
                 "createdAt": 1_767_225_600_000},
                {"externalId": "bad", "source": "opencode", "title": "Rename the cart", "createdAt": 1_767_225_700_000},
                {"externalId": "mute", "source": "cursor", "title": "Silent", "createdAt": 1_767_225_800_000}]
    messages = [
        msg("gold", 0, "system", "You are a careful engineer."),
        msg("gold", 1, "user", f"Why does {PROJECT}/src/parser.py fail? My token is {SECRET}"),
        msg("gold", 2, "assistant", "", [
            {"type": "tool-call", "content": {"id": "t1", "name": "Read", "input": {"file_path": f"{PROJECT}/src/parser.py"}}},
            {"type": "tool-result", "content": {"toolUseId": "t1", "content": "def parse(): ..."}}]),
        msg("gold", 3, "assistant", "The loop stops one short."),
        msg("gold", 4, "user", "Fix it"),
        msg("gold", 5, "assistant", "", [{"type": "tool-call", "content": {"toolName": "Edit", "args": {"file_path": "src/parser.py"}}},
                                          {"type": "tool-result", "content": "ok"}]),
        msg("gold", 6, "assistant", "Fixed: the loop now runs to len(text)."),
        msg("bad", 1, "user", "Rename Cart to Basket"),
        msg("bad", 2, "assistant", "Done, I renamed everything to Bucket."),
        msg("mute", 1, "user", "Hello?"),
    ]
    assert api.post("/sync/batch", {"sessions": sessions, "messages": messages}).status_code == 200
    for ext, status in (("gold", "golden"), ("bad", "incorrect")):
        api.client.patch(f"/api/sessions/{ext}", json={"evalStatus": status, "tags": ["evals"]}, headers=api.headers)
    return api


def download(api, query):
    response = api.get(f"/api/export/evals?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_deepeval_json_loads_with_deepevals_own_loader(graded, tmp_path):
    from deepeval.dataset import EvaluationDataset
    from deepeval.test_case import LLMTestCase, ToolCall

    response = download(graded, "format=deepeval&evalStatus=golden")
    assert response.mimetype == "application/json"
    assert "evals-deepeval-turn.json" in response.headers["Content-Disposition"]
    path = tmp_path / "golden.json"
    path.write_bytes(response.data)
    dataset = EvaluationDataset()
    dataset.add_test_cases_from_json_file(
        str(path), input_key_name="input", actual_output_key_name="actual_output",
        expected_output_key_name="expected_output", context_key_name="context", tools_called_key_name="tools_called")
    cases = dataset.test_cases
    assert [c.input for c in cases] == [f"Why does {PROJECT}/src/parser.py fail? My token is [REDACTED]", "Fix it"]
    assert [c.actual_output for c in cases] == ["The loop stops one short.", "Fixed: the loop now runs to len(text)."]
    assert cases[0].expected_output == cases[0].actual_output  # golden: its answer is what is expected
    assert [t.name for t in cases[0].tools_called] == ["Read"] and cases[0].tools_called[0].output == "def parse(): ..."
    assert cases[1].context == [f"User: Why does {PROJECT}/src/parser.py fail? My token is [REDACTED]",
                                "Assistant: The loop stops one short."]
    # Every field of ours is an LLMTestCase field, so the whole record builds one too.
    for record in json.loads(response.data):
        case = LLMTestCase(**{**record, "tools_called": [ToolCall(**t) for t in record["tools_called"]]})
        assert case.metadata["externalId"] == "gold" and case.tags == ["evals"]
    assert SECRET not in response.get_data(as_text=True)


def test_openai_evals_jsonl_is_valid_chat_for_the_openai_types(graded):
    from openai.types.chat import ChatCompletionMessageParam
    from pydantic import TypeAdapter

    chat = TypeAdapter(list[ChatCompletionMessageParam])
    text = download(graded, "format=openai&granularity=session&system=true").get_data(as_text=True)
    samples = [json.loads(line) for line in text.splitlines()]
    assert [s["metadata"]["externalId"] for s in samples] == ["gold", "bad"]  # "mute" has no answer
    for sample in samples:
        chat.validate_python(sample["input"], strict=True)
        assert isinstance(sample["ideal"], str) and sample["ideal"]
    gold = samples[0]["input"]
    assert [m["role"] for m in gold] == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert gold[4]["tool_calls"][0]["function"] == {"name": "Edit", "arguments": '{"file_path": "src/parser.py"}'}
    assert gold[5] == {"role": "tool", "tool_call_id": gold[4]["tool_calls"][0]["id"], "content": "ok"}
    assert samples[0]["ideal"] == "Fixed: the loop now runs to len(text)."


PROMPTFOO_TEST = {
    # promptfoo's documented test case (promptfoo.dev/docs/configuration/test-cases and its
    # configuration reference): description, vars, assert [{type, value, threshold}], metadata.
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "vars": {"type": "object", "additionalProperties": True},
        "assert": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "pattern": "^(not-)?(equals|contains|icontains|regex|similar|llm-rubric|javascript|python)$"},
            "value": {}, "threshold": {"type": "number"}}}},
        "metadata": {"type": "object"},
        "options": {"type": "object"},
    },
    "additionalProperties": False,
}


def test_promptfoo_jsonl_has_promptfoos_test_case_shape(graded):
    import jsonschema

    text = download(graded, "format=promptfoo&granularity=final&tag=evals").get_data(as_text=True)
    tests = [json.loads(line) for line in text.splitlines()]
    for test in tests:
        jsonschema.validate(test, PROMPTFOO_TEST)
    by_id = {t["metadata"]["externalId"]: t for t in tests}
    assert by_id["gold"]["vars"]["prompt"] == "Fix it"
    assert by_id["gold"]["assert"] == [{"type": "similar", "value": "Fixed: the loop now runs to len(text).", "threshold": 0.75}]
    assert by_id["bad"]["assert"][0]["type"] == "not-similar"  # an incorrect answer must not come back


def test_plain_text_and_the_options(graded):
    text = download(graded, "format=text&granularity=final&ids={}&tools=false&anonymize=true".format(
        graded.session("gold")["session"]["id"])).get_data(as_text=True)
    assert text.startswith("=== Fix the parser (claude-code, gold)\nUSER: Fix it\nASSISTANT: Fixed")
    assert "TOOL" not in text and "SYSTEM" not in text
    full = download(graded, "format=text&granularity=turn&anonymize=true&evalStatus=golden").get_data(as_text=True)
    assert "Why does <project>/src/parser.py fail?" in full and "/home/alice" not in full
    assert "TOOL Read:" in full and "RESULT: def parse(): ..." in full


def test_preview_counts_warnings_and_secrets(graded):
    body = graded.get("/api/export/evals/preview?format=openai").get_json()
    assert (body["sessions"], body["cases"]) == (3, 3)  # gold: 2 turns, bad: 1
    assert body["skipped"] == {"no assistant answer": 1}
    assert body["warnings"] == ["Silent: no assistant answer"]
    assert body["redacted"] == {"total": 2, "byKind": {"GitHub Token": 2}}  # the prompt, and the history of turn 2
    assert body["samples"][0]["metadata"]["externalId"] == "gold"
    raw = graded.get("/api/export/evals/preview?format=openai&redact=false").get_json()
    assert raw["redacted"]["total"] == 0 and SECRET in json.dumps(raw["samples"])


def test_preview_warnings_mask_secrets_in_titles(api):
    """A session left out is named by its title in `warnings`: masked like everything else the
    preview shows, and counted."""
    ours, anthropic = "osk_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2", "sk-ant-api03-" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    sessions = [{"externalId": "t1", "title": f"deploy with {ours}", "createdAt": 1_767_225_600_000},
                {"externalId": "t2", "title": f"call {anthropic} directly", "createdAt": 1_767_225_700_000}]
    messages = [msg("t1", 1, "user", "Deploy it"), msg("t2", 1, "assistant", "Hello")]
    assert api.post("/sync/batch", {"sessions": sessions, "messages": messages}).status_code == 200
    body = api.get("/api/export/evals/preview").get_json()
    assert body["warnings"] == ["deploy with [REDACTED]: no assistant answer", "call [REDACTED] directly: no user prompt"]
    assert ours not in json.dumps(body) and anthropic not in json.dumps(body)
    assert body["redacted"]["total"] == 2
    raw = api.get("/api/export/evals/preview?redact=false").get_json()
    assert raw["warnings"][0] == f"deploy with {ours}: no assistant answer" and raw["redacted"]["total"] == 0


@pytest.mark.parametrize("query, field", [
    ("format=csv", "format"), ("granularity=day", "granularity"), ("ids=1,x", "ids"), ("ids=", "ids"),
    ("tools=maybe", "tools"), ("evalStatus=great", "evalStatus"), ("sort=cost", "sort"),
])
def test_bad_options_name_the_field(api, query, field):
    response = api.get(f"/api/export/evals?{query}")
    assert response.status_code == 400 and field in response.get_json()["fields"]


def test_another_users_sessions_never_appear(graded, other_api):
    ids = graded.session("gold")["session"]["id"]
    body = other_api.get(f"/api/export/evals/preview?ids={ids}").get_json()
    assert (body["sessions"], body["cases"]) == (0, 0)


def test_every_other_download_masks_secrets_too(graded):
    graded.post("/sync/session", {"externalId": "gold", "title": f"Rotate {SECRET}"})
    for query in ("format=json", "format=jsonl", "format=markdown"):
        response = graded.get(f"/api/export?externalId=gold&{query}")
        assert response.status_code == 200
        assert SECRET not in response.get_data(as_text=True) and "[REDACTED]" in response.get_data(as_text=True)
        assert response.headers["X-Redacted-Secrets"] == "2"  # the title and the first prompt
    for fmt in ("csv", "json"):
        text = graded.get(f"/api/export/sessions?format={fmt}").get_data(as_text=True)
        assert SECRET not in text and "Rotate [REDACTED]" in text
    raw = graded.get("/api/export?externalId=gold&redact=false")
    assert SECRET in raw.get_data(as_text=True) and raw.headers["X-Redacted-Secrets"] == "0"
