"""Secrets held in structured data (tool-call arguments, headers objects, plugin fields kept in
`extra`, arguments sent as JSON text) are masked in every real output: the session downloads,
the evals export and its preview, and an unauthenticated share page; and they are counted."""

import base64
import json
import re
import secrets

import pytest

from opensync_lite.redact import MASK
from test_share import make_link, share_client

PASSWORD = "Tr0ub4dorZ3xyz!"
API_KEY = secrets.token_hex(16)  # 32 hex characters, as many services' keys are
BASIC = base64.b64encode(f"admin:{secrets.token_hex(6)}".encode()).decode()  # "YWRtaW46…"
GATEWAY = f"Zebra-Piano-{secrets.randbelow(90) + 10}-Orbit"  # a plugin's field, kept in `extra`
AUTH_SECRET = f"Mango-Tango-{secrets.randbelow(9000) + 1000}"  # inside arguments sent as JSON text
SECRETS = [PASSWORD, API_KEY, BASIC, GATEWAY, AUTH_SECRET]
IN_EVERY_CASE = [PASSWORD, API_KEY, BASIC, AUTH_SECRET]  # evals carry tool calls, not `extra`


@pytest.fixture
def leaky(api):
    """One session whose secrets sit only in JSON values named by their keys."""
    call = {"type": "tool-call", "content": {"id": "call_1", "toolName": "http_request", "args": {
        "url": "https://api.example.com/v1/login", "password": PASSWORD,
        "headers": {"X-Api-Key": API_KEY, "Authorization": f"Basic {BASIC}", "Accept": "application/json"}}}}
    login = {"type": "tool-call", "content": {"id": "call_2", "toolName": "oauth",
                                              "input": json.dumps({"client_id": "shop-web", "auth": AUTH_SECRET})}}
    body = {"sessions": [{"externalId": "s1", "source": "opencode", "title": "Log in to the API", "gatewayToken": GATEWAY}],
            "messages": [
                {"sessionExternalId": "s1", "externalId": "m1", "role": "user", "textContent": "Log in to the API",
                 "createdAt": 1_767_225_600_000},
                {"sessionExternalId": "s1", "externalId": "m2", "role": "assistant", "textContent": "",
                 "createdAt": 1_767_225_601_000,
                 "parts": [call, {"type": "tool-result", "content": {"toolUseId": "call_1", "content": "200 OK"}}, login]},
                {"sessionExternalId": "s1", "externalId": "m3", "role": "assistant", "textContent": "Logged in.",
                 "createdAt": 1_767_225_602_000}]}
    assert api.post("/sync/batch", body).status_code == 200
    stored = api.get("/api/export?externalId=s1&redact=false")
    assert all(s in stored.get_data(as_text=True) for s in SECRETS)  # all there to leak
    return api


def leaked(text):
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "markdown", "html"])
def test_structured_secrets_are_masked_and_counted_in_session_downloads(leaky, fmt):
    response = leaky.get(f"/api/export?externalId=s1&format={fmt}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert leaked(body) == [] and MASK in body
    assert response.headers["X-Redacted-Secrets"] == str(len(SECRETS))
    if fmt == "json":
        parts = json.loads(body)["messages"][1]["parts"]
        args = parts[0]["content"]["args"]
        assert args["password"] == MASK and args["headers"]["X-Api-Key"] == MASK
        assert args["headers"]["Authorization"] == MASK and args["headers"]["Accept"] == "application/json"
        assert args["url"] == "https://api.example.com/v1/login"  # what is no secret stays
        assert json.loads(parts[2]["content"]["input"]) == {"client_id": "shop-web", "auth": MASK}
        assert json.loads(body)["session"]["extra"]["gatewayToken"] == MASK


def test_structured_secrets_are_masked_in_the_sessions_list_download(leaky):
    body = leaky.get("/api/export/sessions?format=json").get_data(as_text=True)
    assert GATEWAY not in body and json.loads(body)[0]["extra"]["gatewayToken"] == MASK


@pytest.mark.parametrize("fmt", ["openai", "deepeval", "promptfoo", "text"])
def test_structured_secrets_are_masked_in_evals_exports(leaky, fmt):
    query = f"format={fmt}&granularity=final&tools=true"
    body = leaky.get(f"/api/export/evals?{query}").get_data(as_text=True)
    assert body and leaked(body) == []
    preview = leaky.get(f"/api/export/evals/preview?{query}").get_json()
    assert preview["cases"] == 1 and preview["redacted"]["total"] == len(IN_EVERY_CASE)
    if fmt == "openai":  # arguments are JSON text there: masked before they were written
        calls = json.loads(body)["input"][-3]["tool_calls"]
        first, second = (json.loads(c["function"]["arguments"]) for c in calls)
        assert first["password"] == MASK and first["headers"] == {
            "X-Api-Key": MASK, "Authorization": MASK, "Accept": "application/json"}
        assert json.loads(second["input"]) == {"client_id": "shop-web", "auth": MASK}


def test_structured_secrets_are_masked_on_an_unauthenticated_share_page(db_path, leaky):
    app, browser = share_client(db_path, leaky, host="0.0.0.0")
    story = leaky.session("s1")["session"]["id"]
    slug = re.search(r"/s/([\w-]{22})", make_link(browser, story)).group(1)
    shown = app.test_client().get(f"/s/{slug}")  # no cookie, no key
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert leaked(page) == [] and MASK in page
    assert shown.headers["X-Redacted-Secrets"] == str(len(SECRETS))
    assert f"{len(SECRETS)} secrets masked as [REDACTED]" in page


# Secrets inside objects and lists under secret-named keys, a `pass` key, a numeric password and
# an argument list: each masked in every output, and each counted.
NESTED_SECRETS = [f"Nested-{name}-{secrets.token_hex(4)}" for name in ("prod", "value", "basic", "pass", "argv", "curl")]
NUMBER = str(10 ** 11 + secrets.randbelow(10 ** 11))  # a twelve-digit numeric password


@pytest.fixture
def nested(api):
    prod, value, basic, password, argv, curl = NESTED_SECRETS
    args = {"api_key": {"prod": prod}, "token": {"value": value}, "authorization": {"basic": basic},
            "credentials": {"user": "admin", "pass": password}, "password": int(NUMBER),
            "argv": ["mysql", "--password", argv, "shop"], "fetch": ["curl", "-u", f"deploy:{curl}", "https://x.example"]}
    body = {"sessions": [{"externalId": "s1", "source": "opencode", "title": "Write the config"}],
            "messages": [
                {"sessionExternalId": "s1", "externalId": "m1", "role": "user", "textContent": "Write the config",
                 "createdAt": 1_767_225_600_000},
                {"sessionExternalId": "s1", "externalId": "m2", "role": "assistant", "textContent": "",
                 "createdAt": 1_767_225_601_000,
                 "parts": [{"type": "tool-call", "content": {"id": "call_1", "toolName": "write_config", "args": args}}]},
                {"sessionExternalId": "s1", "externalId": "m3", "role": "assistant", "textContent": "Written.",
                 "createdAt": 1_767_225_602_000}]}
    assert api.post("/sync/batch", body).status_code == 200
    stored = api.get("/api/export?externalId=s1&redact=false").get_data(as_text=True)
    assert all(s in stored for s in NESTED_SECRETS + [NUMBER])  # all there to leak
    return api


def nested_leaks(text):
    return [s for s in NESTED_SECRETS + [NUMBER] if s in text]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "markdown", "html"])
def test_secrets_nested_under_secret_keys_and_in_argument_lists_are_masked_in_downloads(nested, fmt):
    response = nested.get(f"/api/export?externalId=s1&format={fmt}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert nested_leaks(body) == [] and MASK in body
    assert response.headers["X-Redacted-Secrets"] == str(len(NESTED_SECRETS) + 1)
    if fmt == "json":
        args = json.loads(body)["messages"][1]["parts"][0]["content"]["args"]
        assert args["credentials"] == {"user": "admin", "pass": MASK} and args["password"] == MASK
        assert args["argv"] == ["mysql", "--password", MASK, "shop"] and args["api_key"] == {"prod": MASK}


@pytest.mark.parametrize("fmt", ["openai", "deepeval", "promptfoo", "text"])
def test_secrets_nested_under_secret_keys_are_masked_in_evals_exports(nested, fmt):
    query = f"format={fmt}&granularity=final&tools=true"
    body = nested.get(f"/api/export/evals?{query}").get_data(as_text=True)
    assert body and nested_leaks(body) == []
    preview = nested.get(f"/api/export/evals/preview?{query}").get_json()
    assert preview["cases"] == 1 and preview["redacted"]["total"] == len(NESTED_SECRETS) + 1


def test_secrets_nested_under_secret_keys_are_masked_on_a_share_page(db_path, nested):
    app, browser = share_client(db_path, nested, host="0.0.0.0")
    story = nested.session("s1")["session"]["id"]
    slug = re.search(r"/s/([\w-]{22})", make_link(browser, story)).group(1)
    shown = app.test_client().get(f"/s/{slug}")
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert nested_leaks(page) == [] and MASK in page
    assert shown.headers["X-Redacted-Secrets"] == str(len(NESTED_SECRETS) + 1)
