"""What blocks and budgets count is what the session totals count, on every path: telemetry
alone (the real Claude Code 2.1 capture under tests/data), a client that sends only session
totals, and a transcript's messages; and when a read is capped, the newest usage is kept."""

import json
import time
from pathlib import Path

import pytest

from opensync_lite import budgets, limits

pytestmark = pytest.mark.both_databases

CAPTURE = Path(__file__).parent / "data" / "claude-code-2.1" / "a-tool-call" / "otlp"
SONNET = "claude-sonnet-4-20250514"
DAY_MS = 86_400_000


def _times(payload):
    """Every timeUnixNano in an OTLP JSON export, in ms."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "timeUnixNano":
                    found.append(int(v) // 1_000_000)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    walk(payload)
    return found


def _user_id(app):
    from opensync_lite.models import User
    with app.app_context():
        return User.get(User.name == "local").id


def _blocks(api, since, until):
    body = api.get("/api/stats/blocks", query_string={"from": since, "to": until}).get_json()
    return [b for b in body["blocks"] if not b["isGap"]]


def _session(api, external_id):
    (found,) = [s for s in api.get("/api/sessions").get_json()["sessions"] if s["externalId"] == external_id]
    return found


def test_telemetry_alone_is_spent(api, app):
    stamps = []
    for path in sorted(CAPTURE.iterdir()):
        stamps += _times(json.loads(path.read_text()))
        kind = "logs" if "logs" in path.name else "metrics"
        assert api.client.post(f"/v1/{kind}", data=path.read_bytes(),
                               headers={**api.headers, "Content-Type": "application/json"}).status_code == 200
    (session,) = api.get("/api/sessions").get_json()["sessions"]
    assert session["totalTokens"] > 0 and session["cost"] > 0
    blocks = _blocks(api, min(stamps) - DAY_MS, max(stamps) + DAY_MS)
    assert sum(b["totalTokens"] for b in blocks) == session["totalTokens"]
    assert sum(b["cost"] for b in blocks) == pytest.approx(session["cost"])
    with app.app_context():  # a budget over the capture's day spends the same
        budgets.create_budget(_user_id(app), {"period": "day", "amount": 0.01})
        (budget,) = budgets.list_budgets(_user_id(app), max(stamps))
        spent = budget["spent"]
    assert spent == pytest.approx(session["cost"])


def test_a_clients_session_totals_are_spent_once(api, app):
    assert api.post("/sync/session", {"externalId": "a", "source": "opencode", "model": SONNET,
                                      "promptTokens": 100_000, "completionTokens": 20_000, "cost": 1.5}).status_code == 200
    # a message with per-message counts the session totals do not count
    assert api.post("/sync/message", {"sessionExternalId": "b", "externalId": "b-1", "role": "assistant",
                                      "model": SONNET, "promptTokens": 100_000, "completionTokens": 20_000}).status_code == 200
    a, b = _session(api, "a"), _session(api, "b")
    now = a["updatedAt"]
    blocks = _blocks(api, now - DAY_MS, now + DAY_MS)
    assert sum(x["totalTokens"] for x in blocks) == a["totalTokens"] + b["totalTokens"] == 120_000
    assert sum(x["cost"] for x in blocks) == pytest.approx(a["cost"] + b["cost"]) and a["cost"] == 1.5
    with app.app_context():
        budgets.create_budget(_user_id(app), {"period": "day", "amount": 1})
        (budget,) = budgets.list_budgets(_user_id(app), now)
        assert budget["spent"] == pytest.approx(1.5)


def test_a_capped_read_keeps_the_newest(api, app, monkeypatch):
    now = 1_800_000_000_000
    messages = [{"sessionExternalId": "old", "externalId": f"o{i}", "role": "assistant", "model": SONNET,
                 "createdAt": now - 30 * DAY_MS + i, "inputTokens": 1000, "outputTokens": 100} for i in range(10)]
    messages += [{"sessionExternalId": "new", "externalId": f"n{i}", "role": "assistant", "model": SONNET,
                  "createdAt": now - 60_000 + i, "inputTokens": 1000, "outputTokens": 100} for i in range(3)]
    assert api.post("/sync/batch", {"sessions": [{"externalId": "old"}, {"externalId": "new"}],
                                    "messages": messages}).status_code == 200
    monkeypatch.setattr(limits, "MAX_ENTRIES", 5)
    with app.app_context():
        found = limits.entries(_user_id(app), {}, now - 60 * DAY_MS, now)
    assert [e["at"] for e in found] == sorted(m["createdAt"] for m in messages)[-5:]


@pytest.mark.parametrize("prefix", ["", "/opensync"])
def test_a_sync_on_either_api_wakes_the_budgets(api, prefix):
    assert api.post("/api/budgets", {"period": "day", "amount": 0.01}).status_code == 201
    now = int(time.time() * 1000)
    assert api.post(prefix + "/sync/batch", {
        "sessions": [{"externalId": "s", "source": "opencode", "model": SONNET, "createdAt": now - 1000}],
        "messages": [{"sessionExternalId": "s", "externalId": "s-1", "role": "assistant", "model": SONNET,
                      "createdAt": now - 500, "inputTokens": 40_000, "outputTokens": 8_000}]}).status_code == 200
    deadline = time.time() + 15
    while time.time() < deadline and len(api.get("/api/budgets/alerts").get_json()["alerts"]) < 2:
        time.sleep(0.1)
    assert sorted(a["threshold"] for a in api.get("/api/budgets/alerts").get_json()["alerts"]) == [80, 100]
