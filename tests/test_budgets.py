"""Budgets against a live `serve`: syncs that cross 80 % and then 100 % of a daily budget fire
each notification exactly once to a loopback receiver (a signed webhook, retried when the
receiver first fails, and an ntfy-style topic), the alerts are listed and reach the status
line's answer, and a restarted server does not fire them again. And the API's validation."""

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import LiveServer

from opensync_lite.pricing import price

MODEL = "claude-sonnet-4-20250514"
LOOPBACK_OK = {"OPENSYNC_WEBHOOK_ALLOW_PRIVATE": "1"}  # the receiver is on 127.0.0.1
TOKENS = {"inputTokens": 40_000, "outputTokens": 8_000}  # one message's usage


class Receiver(ThreadingHTTPServer):
    """Records every POST; the webhook path answers 500 to its first request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.got, self.webhook_failures_left = [], 1
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def of(self, path, ok=None):
        return [r for r in self.got if r["path"] == path and (ok is None or r["ok"] == ok)]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        fail = self.path == "/hook" and self.server.webhook_failures_left > 0
        if fail:
            self.server.webhook_failures_left -= 1
        self.server.got.append({"path": self.path, "body": body, "headers": dict(self.headers), "ok": not fail})
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def call(server, key, method, path, body=None, expect=200):
    request = urllib.request.Request(server.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        status, answer = err.code, json.loads(err.read())
    assert status == expect, answer
    return answer


def spend(server, key, tag, count):
    """``count`` messages of known usage, synced as OpenCode would (no cost: priced here)."""
    now = int(time.time() * 1000)
    call(server, key, "POST", "/sync/batch", {
        "sessions": [{"externalId": f"s-{tag}", "source": "opencode", "model": MODEL, "createdAt": now - 1000}],
        "messages": [{"sessionExternalId": f"s-{tag}", "externalId": f"s-{tag}-{i}", "role": "assistant", "model": MODEL,
                      "createdAt": now - 500 + i, **TOKENS} for i in range(count)]})


def wait_for(check, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    receiver = Receiver()
    path = str(tmp_path_factory.mktemp("budgets") / "opensync.db")
    server = LiveServer(path, env=LOOPBACK_OK)
    key = server.create_key()
    one = price(MODEL, TOKENS["inputTokens"], TOKENS["outputTokens"])
    state = {"receiver": receiver, "server": server, "key": key, "path": path, "one": one}
    yield state
    state["server"].stop()
    receiver.shutdown()


def test_crossing_80_then_100_fires_each_once_and_retries_the_failed_webhook(world):
    server, key, receiver, one = world["server"], world["key"], world["receiver"], world["one"]
    channels = call(server, key, "PUT", "/api/budgets/channels",
                    {"webhookUrl": receiver.url + "/hook", "ntfyUrl": receiver.url + "/topic"})["channels"]
    secret = channels["webhookSecret"]
    assert len(secret) >= 24
    budget = call(server, key, "POST", "/api/budgets", {"period": "day", "amount": 9.9 * one}, expect=201)["budget"]
    assert budget["spent"] == 0 and budget["period"] == "day"

    spend(server, key, "a", 8)  # 81 %
    wait_for(lambda: len(receiver.of("/hook", ok=True)) == 1 and len(receiver.of("/topic")) == 1)
    assert len(receiver.of("/hook", ok=False)) == 1  # the first try failed; the retry came after
    (hook,) = receiver.of("/hook", ok=True)
    assert hook["headers"]["X-Opensync-Signature"] == "sha256=" + hmac.new(secret.encode(), hook["body"], hashlib.sha256).hexdigest()
    body = json.loads(hook["body"])
    assert (body["threshold"], body["budgetId"], body["costBasis"]) == (80, budget["id"], "estimated")
    assert body["spent"] == pytest.approx(8 * one) and "estimated" in body["text"]
    assert "80%" in receiver.of("/topic")[0]["body"].decode()

    spend(server, key, "b", 1)  # 91 %: nothing new
    spend(server, key, "c", 2)  # 111 %
    wait_for(lambda: len(receiver.of("/hook", ok=True)) == 2 and len(receiver.of("/topic")) == 2)
    assert json.loads(receiver.of("/hook", ok=True)[1]["body"])["threshold"] == 100
    spend(server, key, "d", 3)  # further past: nothing new
    time.sleep(1.5)
    assert len(receiver.of("/hook")) == 3 and len(receiver.of("/topic")) == 2

    listed = call(server, key, "GET", "/api/budgets/alerts")["alerts"]
    assert [a["threshold"] for a in listed] == [100, 80]
    assert all(d["deliveredAt"] for a in listed for d in a["deliveries"])
    assert {d["channel"]: d["attempts"] for d in listed[1]["deliveries"]} == {"webhook": 2, "ntfy": 1}
    # The status line's answer carries the warnings of the current period.
    answer = call(server, key, "POST", "/api/limits/snapshots", {"session_id": "cc", "machine": "m"})
    assert any("100% of the daily budget" in a["text"] for a in answer["alerts"])
    assert call(server, key, "GET", f"/api/budgets/{budget['id']}")["budget"]["percent"] > 100


def test_a_restarted_server_does_not_fire_again(world):
    receiver = world["receiver"]
    before = len(receiver.got)
    world["server"].stop()
    world["server"] = server = LiveServer(world["path"], env=LOOPBACK_OK)
    spend(server, world["key"], "e", 1)  # wakes the new server's notifier: it checks at once
    time.sleep(2)
    assert len(receiver.got) == before
    assert len(call(server, world["key"], "GET", "/api/budgets/alerts")["alerts"]) == 2


@pytest.mark.parametrize("body, field", [
    ({"period": "year", "amount": 5}, "period"), ({"period": "day", "amount": -1}, "amount"),
    ({"period": "day", "amount": 0}, "amount"), ({"period": "day", "amount": 5e-324}, "amount"), ({"period": "day"}, "amount"),
    ({"period": "day", "amount": 5, "colour": "red"}, "colour"),
    ({"period": "week", "amount": 5, "project": ""}, "project"),
])
def test_bad_budgets_are_refused_naming_the_field(world, body, field):
    answer = call(world["server"], world["key"], "POST", "/api/budgets", body, expect=400)
    assert field in answer["fields"]


def test_budgets_are_listed_changed_and_deleted(world):
    server, key = world["server"], world["key"]
    made = call(server, key, "POST", "/api/budgets", {"period": "month", "amount": 100, "source": "claude-code"}, expect=201)["budget"]
    assert made["source"] == "claude-code" and made["periodEnd"] > made["periodStart"]
    changed = call(server, key, "PATCH", f"/api/budgets/{made['id']}", {"amount": 250})["budget"]
    assert changed["amount"] == 250 and changed["source"] == "claude-code"
    both = call(server, key, "PATCH", f"/api/budgets/{made['id']}", {"project": "p"})["budget"]
    assert (both["source"], both["project"]) == ("claude-code", "p")  # Claude Code's use in project p
    call(server, key, "PATCH", f"/api/budgets/{made['id']}", {"period": "year"}, expect=400)
    assert made["id"] in [b["id"] for b in call(server, key, "GET", "/api/budgets")["budgets"]]
    call(server, key, "DELETE", f"/api/budgets/{made['id']}")
    call(server, key, "GET", f"/api/budgets/{made['id']}", expect=404)
    assert call(server, key, "PUT", "/api/budgets/channels", {"webhookUrl": "not a url"}, expect=400)["fields"] == {
        "webhookUrl": ["Not a valid URL."]}
