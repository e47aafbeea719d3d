"""Budget alert delivery on a shared server: with several worker processes on one database
each alert is sent once; webhook/ntfy URLs must be public addresses unless the operator
allows private ones (checked when saved and again when sent), redirects are not followed,
the stored error never carries the receiver's text, and desktop alerts need the operator."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import make_key

from opensync_lite import budgets, create_app, outbound

MODEL = "claude-sonnet-4-20250514"


class Receiver(ThreadingHTTPServer):
    """Records each POST's path and alert id; answers slowly (a send in flight while another
    worker polls), or redirects when asked."""

    def __init__(self, delay=0.0, redirect=False):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.got, self.delay, self.redirect = [], delay, redirect
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.got.append((self.path, json.loads(body)["alertId"] if self.path == "/hook" else None))
        time.sleep(self.server.delay)
        if self.server.redirect and self.path == "/hook":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def overspend(client, headers):
    """$0.24 of Sonnet against a $0.01 daily budget: the 80 % and the 100 % alerts at once."""
    assert client.post("/api/budgets", json={"period": "day", "amount": 0.01}, headers=headers).status_code == 201
    now = int(time.time() * 1000)
    assert client.post("/sync/batch", headers=headers, json={
        "sessions": [{"externalId": "s", "model": MODEL}],
        "messages": [{"sessionExternalId": "s", "externalId": "s-1", "role": "assistant", "model": MODEL,
                      "createdAt": now - 500, "inputTokens": 40000, "outputTokens": 8000}]}).status_code == 200


def deliveries(client, headers):
    return [d for a in client.get("/api/budgets/alerts", headers=headers).get_json()["alerts"] for d in a["deliveries"]]


def wait_for(check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def private_ok(app):
    app.config["OPENSYNC_WEBHOOK_ALLOW_PRIVATE"] = True
    return app


def test_two_workers_on_one_database_send_each_alert_once(tmp_path):
    receiver = Receiver(delay=1.5)
    path = str(tmp_path / "opensync.db")
    one, two = (create_app({"OPENSYNC_DB": path, "TESTING": True, "OPENSYNC_WEBHOOK_ALLOW_PRIVATE": True}) for _ in range(2))
    try:
        a, b = one.test_client(), two.test_client()
        headers = {"Authorization": f"Bearer {make_key(one)}"}
        assert a.put("/api/budgets/channels", json={"webhookUrl": receiver.url + "/hook"}, headers=headers).status_code == 200
        overspend(b, headers)  # worker two wakes on the sync
        budgets.notifier(one).wake(1)  # and worker one polls the same rows meanwhile
        assert b.post("/api/limits/snapshots", json={"session_id": "x"}, headers=headers).status_code in (200, 201)
        wait_for(lambda: len(deliveries(a, headers)) == 2 and all(d["deliveredAt"] for d in deliveries(a, headers)))
        time.sleep(2.5)  # room for a second send of either alert
        ids = [alert for _, alert in receiver.got]
        assert len(ids) == 2 and len(set(ids)) == 2, ids
        assert [d["attempts"] for d in deliveries(a, headers)] == [1, 1]
    finally:
        receiver.shutdown()
        for app in (one, two):
            app.extensions["opensync"].close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost:8080/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://172.16.5.5/", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:22/", "http://224.0.0.1/",
    "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "https://no-such-host.invalid/",
])
def test_internal_addresses_are_refused_when_saved(api, url):
    for field in ("webhookUrl", "ntfyUrl"):
        answer = api.client.put("/api/budgets/channels", json={field: url}, headers=api.headers)
        assert answer.status_code == 400 and field in answer.get_json()["fields"], (url, answer.get_json())
    assert api.get("/api/budgets/channels").get_json()["channels"]["webhookUrl"] is None


def test_public_addresses_pass_the_check():
    assert outbound.resolve("https://93.184.215.14/hook") == "93.184.215.14"
    assert outbound.resolve("http://[2606:4700::1111]:8443/x") == "2606:4700::1111"


def test_a_saved_address_is_checked_again_when_sent(app, api):
    receiver = Receiver()
    try:
        app.config["OPENSYNC_WEBHOOK_ALLOW_PRIVATE"] = True
        assert api.client.put("/api/budgets/channels", json={"webhookUrl": receiver.url + "/hook"}, headers=api.headers).status_code == 200
        app.config["OPENSYNC_WEBHOOK_ALLOW_PRIVATE"] = False  # as if the name now resolved to an internal address
        overspend(api.client, api.headers)
        wait_for(lambda: len(deliveries(api.client, api.headers)) == 2 and all(d["lastError"] for d in deliveries(api.client, api.headers)))
        assert receiver.got == []
        assert all(d["lastError"].startswith("refused: ") for d in deliveries(api.client, api.headers))
    finally:
        receiver.shutdown()


def test_redirects_are_not_followed_and_errors_say_nothing_of_the_receiver(private_ok, api):
    receiver = Receiver(redirect=True)
    try:
        assert api.client.put("/api/budgets/channels", headers=api.headers, json={
            "webhookUrl": receiver.url + "/hook", "ntfyUrl": "http://127.0.0.1:1/closed"}).status_code == 200
        overspend(api.client, api.headers)
        wait_for(lambda: len(deliveries(api.client, api.headers)) == 4 and all(d["lastError"] for d in deliveries(api.client, api.headers)))
        assert {p for p, _ in receiver.got} == {"/hook"}  # never /elsewhere
        errors = {d["channel"]: d["lastError"] for d in deliveries(api.client, api.headers)}
        assert errors == {"webhook": "the receiver answered HTTP 307", "ntfy": "could not connect or send"}
    finally:
        receiver.shutdown()


def test_desktop_alerts_need_the_operator(app, api):
    answer = api.client.put("/api/budgets/channels", json={"desktop": True}, headers=api.headers)
    assert answer.status_code == 400 and "desktop" in answer.get_json()["fields"]
    app.config["OPENSYNC_DESKTOP_ALERTS"] = True
    assert api.client.put("/api/budgets/channels", json={"desktop": True}, headers=api.headers).status_code == 200


def test_a_failing_round_backs_off_and_logs_one_line(tmp_path, monkeypatch, caplog):
    """A database gone for good (an embedding app closed it) must not make the notifier log a
    traceback every second for the rest of the process."""
    app = create_app({"OPENSYNC_DB": str(tmp_path / "gone.db"), "TESTING": True})

    def broken(now=None):
        raise RuntimeError("the connection is closed")
    monkeypatch.setattr(budgets, "deliver_due", broken)
    with caplog.at_level("WARNING", logger=budgets.log.name):
        notifier = budgets.notifier(app)
        notifier.wake(1)
        time.sleep(3.5)
        notifier.stopping.set()
        notifier.wake(1)
    # (this notifier's lines: earlier tests' notifiers may be failing beside it)
    failed = [r for r in caplog.records if "budget round failed" in r.getMessage() and r.thread == notifier.thread.ident]
    assert 1 <= len(failed) <= 2  # pauses of 2 s, then 4 s: not one a second
    assert all(r.exc_info is None for r in failed) and "the connection is closed" in failed[0].getMessage()
    app.extensions["opensync"].close()
