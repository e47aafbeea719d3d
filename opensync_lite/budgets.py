"""Budgets: an amount per UTC day, ISO week or month, in total or for one source or project.

Spend is what ``limits.spend`` counts (every counted response in the period, its recorded
cost or the price of its tokens). When a sync takes a user's spend past 80 % or 100 % of a
budget, that crossing is one alert row (UNIQUE per budget, period and threshold: it fires
once, whatever restarts); the alert shows as the dashboard's banner and the status line's
warning, and becomes one delivery per channel the user set (a webhook, an ntfy-style topic,
the desktop). The ``Notifier`` thread does all of it off the request path: requests only
wake it; deliveries are rows, retried with back-off until they succeed (or give up), and
resumed after a restart.
"""

import hashlib
import hmac
import json
import logging
import queue
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from flask import current_app

from . import limits, outbound
from .db import write_transaction
from .models import Budget, BudgetAlert, BudgetChannels, BudgetDelivery

log = logging.getLogger("opensync_lite.budgets")
THRESHOLDS = (80, 100)
PERIODS = ("day", "week", "month")
RETRY_S = (1, 2, 4, 8, 30, 120, 600)  # the wait after each failed attempt; then it gives up
TIMEOUT_S = 5
CLAIM_S = 60  # how long a claimed delivery stays another process's (longer than one send can take)
SIGNATURE_HEADER = "X-OpenSync-Signature"  # sha256=<hex HMAC of the body with the user's secret>


def period_bounds(period, now):
    """(start, end) in epoch ms of the UTC day, ISO week (from Monday) or month holding ``now``."""
    at = datetime.fromtimestamp(now / 1000, timezone.utc)
    day = datetime(at.year, at.month, at.day, tzinfo=timezone.utc)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _filters(budget):
    return {k: v for k, v in (("source", budget["source"]), ("project", budget["project"])) if v}


def status(user_id, budget, now):
    """A budget row with what was spent in its current period."""
    start, end = period_bounds(budget["period"], now)
    spent = limits.spend(user_id, start, min(end, now + 1), _filters(budget))
    return {**budget, "period_start": start, "period_end": end, "spent": spent["cost"],
            "cost_basis": spent["cost_status"], "percent": 100 * spent["cost"] / budget["amount"] if budget["amount"] else 0}


def list_budgets(user_id, now=None):
    now = int(time.time() * 1000) if now is None else now
    rows = Budget.select().where(Budget.user == user_id).order_by(Budget.id).dicts()
    return [status(user_id, {**r, "user_id": r.pop("user")}, now) for r in rows]


def get_budget(user_id, budget_id):
    return Budget.select().where(Budget.user == user_id, Budget.id == budget_id).dicts().first()


def create_budget(user_id, data):
    with write_transaction(user_id):
        return Budget.insert(user=user_id, created_at=int(time.time() * 1000), **data).execute()


def update_budget(user_id, budget_id, data):
    with write_transaction(user_id):
        return Budget.update(**data).where(Budget.user == user_id, Budget.id == budget_id).execute()


def delete_budget(user_id, budget_id):
    with write_transaction(user_id):
        return Budget.delete().where(Budget.user == user_id, Budget.id == budget_id).execute()


def channels(user_id):
    """The user's notification settings, made (with a new signing secret) on first use."""
    row = BudgetChannels.select().where(BudgetChannels.user == user_id).dicts().first()
    if row is None:
        with write_transaction(user_id):
            BudgetChannels.insert(user=user_id, webhook_secret=secrets.token_urlsafe(24)).on_conflict_ignore().execute()
        row = BudgetChannels.select().where(BudgetChannels.user == user_id).dicts().first()
    return row


def set_channels(user_id, data):
    channels(user_id)
    if data:
        with write_transaction(user_id):
            BudgetChannels.update(**data).where(BudgetChannels.user == user_id).execute()
    return channels(user_id)


def alerts(user_id, limit=100, current_only=False, now=None):
    """The user's alerts, newest first, each with its budget and its deliveries."""
    now = int(time.time() * 1000) if now is None else now
    rows = list(BudgetAlert.select(BudgetAlert, Budget.period, Budget.source, Budget.project).join(Budget)
                .where(BudgetAlert.user == user_id).order_by(BudgetAlert.created_at.desc(), BudgetAlert.id.desc())
                .limit(limit).dicts())
    if current_only:
        rows = [r for r in rows if period_bounds(r["period"], now)[0] == r["period_start"]]
    deliveries = {}
    for d in BudgetDelivery.select().where(BudgetDelivery.alert.in_([r["id"] for r in rows])).dicts():
        deliveries.setdefault(d["alert"], []).append(d)
    return [{**r, "text": alert_text(r), "deliveries": deliveries.get(r["id"], [])} for r in rows]


def alert_text(alert):
    scope = " in ".join(v for v in (alert.get("source"), alert.get("project")) if v) or "all agents"
    text = (f"{alert['threshold']}% of the {alert['period']}ly budget ({scope}): "
            f"${alert['spent']:,.2f} of ${alert['amount']:,.2f}")
    if alert.get("cost_basis") == "estimated":
        text += " (partly estimated from tokens)"
    elif alert.get("cost_basis") == "unpriced":
        text += " (some usage has no known price and is not counted)"
    return text.replace("dayly", "daily")


def check(user_id, now=None):
    """Record the crossings of the user's budgets (each once); returns the new alerts' ids."""
    now = int(time.time() * 1000) if now is None else now
    wanted = channels(user_id)
    targets = [c for c, on in (("webhook", wanted["webhook_url"]), ("ntfy", wanted["ntfy_url"]),
                               ("desktop", wanted["desktop"])) if on]
    new = []
    for budget in list_budgets(user_id, now):
        for threshold in THRESHOLDS:
            if budget["amount"] <= 0 or budget["spent"] < budget["amount"] * threshold / 100:
                continue
            with write_transaction(user_id):  # writers of one user queue: the look and the insert are one
                if BudgetAlert.select().where(BudgetAlert.budget == budget["id"], BudgetAlert.threshold == threshold,
                                              BudgetAlert.period_start == budget["period_start"]).exists():
                    continue
                alert_id = BudgetAlert.insert(
                    user=user_id, budget=budget["id"], period_start=budget["period_start"], threshold=threshold,
                    spent=budget["spent"], amount=budget["amount"], cost_basis=budget["cost_basis"], created_at=now,
                ).execute()
                for channel in targets:
                    BudgetDelivery.insert(alert=alert_id, channel=channel, next_at=now).execute()
                new.append(alert_id)
    return new


# --- delivery ---------------------------------------------------------------------------------------

def payload(alert):
    return {"type": "budget.alert", "alertId": str(alert["id"]), "budgetId": str(alert["budget"]), "period": alert["period"],
            "periodStart": alert["period_start"], "threshold": alert["threshold"], "spent": round(alert["spent"], 6),
            "amount": alert["amount"], "costBasis": alert["cost_basis"] or "recorded",
            "source": alert["source"], "project": alert["project"], "text": alert_text(alert),
            "createdAt": alert["created_at"]}


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send(channel, alert, settings):
    body = json.dumps(payload(alert), separators=(",", ":")).encode()
    if channel == "webhook":
        request = urllib.request.Request(settings["webhook_url"], data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(settings["webhook_secret"], body),
            "User-Agent": "opensync-lite"})
    elif channel == "ntfy":  # ntfy's own shape: the message as the body, a title and tags as headers
        request = urllib.request.Request(settings["ntfy_url"], data=alert_text(alert).encode(), method="POST", headers={
            "Title": "opensync-lite budget", "Tags": "warning" if alert["threshold"] < 100 else "rotating_light",
            "Priority": "default" if alert["threshold"] < 100 else "high"})
    else:
        if not current_app.config.get("OPENSYNC_DESKTOP_ALERTS"):
            raise outbound.Refused("the server does not allow desktop alerts")
        return _desktop(alert_text(alert))
    outbound.post(request, TIMEOUT_S, allow_private=current_app.config.get("OPENSYNC_WEBHOOK_ALLOW_PRIVATE", False))


def _desktop(text):
    """notify-send (Linux) or osascript (macOS) when the server runs where there is one."""
    if shutil.which("notify-send"):
        subprocess.run(["notify-send", "opensync-lite budget", text], timeout=TIMEOUT_S, check=True, capture_output=True)
    elif sys.platform == "darwin" and shutil.which("osascript"):
        script = f"display notification {json.dumps(text)} with title \"opensync-lite budget\""
        subprocess.run(["osascript", "-e", script], timeout=TIMEOUT_S, check=True, capture_output=True)
    else:
        raise RuntimeError("no notify-send or osascript on the server's machine")


def deliver_due(now=None):
    """Attempt every delivery that is due; returns how many were attempted."""
    now = int(time.time() * 1000) if now is None else now
    due = list(BudgetDelivery.select().where(BudgetDelivery.delivered_at.is_null(), BudgetDelivery.next_at <= now,
                                              BudgetDelivery.attempts < len(RETRY_S) + 1).dicts())
    for d in due:
        alert = BudgetAlert.select(BudgetAlert, Budget.period, Budget.source, Budget.project).join(Budget).where(
            BudgetAlert.id == d["alert"]).dicts().first()
        if alert is None:
            continue
        # Claim the row (every worker process runs a notifier): only the process whose conditional
        # update moved next_at sends it; a sender that dies leaves it due again after the lease.
        with write_transaction(alert["user"]):
            claimed = BudgetDelivery.update(next_at=now + 1000 * CLAIM_S).where(
                BudgetDelivery.id == d["id"], BudgetDelivery.delivered_at.is_null(),
                BudgetDelivery.next_at == d["next_at"], BudgetDelivery.attempts == d["attempts"]).execute()
        if claimed != 1:
            continue
        settings = channels(alert["user"])
        error = None
        try:
            if (d["channel"] == "webhook" and not settings["webhook_url"]) or (d["channel"] == "ntfy" and not settings["ntfy_url"]):
                raise outbound.Refused("the channel was turned off")
            _send(d["channel"], alert, settings)
        except Exception as err:  # noqa: BLE001 - a receiver's failure is recorded and retried
            log.info("budget alert %s by %s: %s: %s", d["alert"], d["channel"], type(err).__name__, err)  # the operator's detail
            error = outbound.describe(err)
        attempts = d["attempts"] + 1
        fields = {"attempts": attempts, "last_error": error}
        if error is None:
            fields["delivered_at"] = int(time.time() * 1000)
        else:
            fields["next_at"] = int(time.time() * 1000) + 1000 * RETRY_S[min(attempts - 1, len(RETRY_S) - 1)]
            log.warning("budget alert %s by %s failed (attempt %s): %s", d["alert"], d["channel"], attempts, error)
        with write_transaction(alert["user"]):
            BudgetDelivery.update(**fields).where(BudgetDelivery.id == d["id"]).execute()
    return len(due)


MAX_BACKOFF_S = 300


class Notifier:
    """The background thread: checks the users a request woke it for, delivers what is due."""

    POLL_S = 1.0

    def __init__(self, app):
        self.app, self.users, self.stopping = app, queue.SimpleQueue(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="opensync-budgets", daemon=True)
        self.thread.start()

    def wake(self, user_id):
        self.users.put(user_id)

    def _run(self):
        pending, failures = True, 0  # at start: deliveries a restart interrupted
        while not self.stopping.is_set():
            users = set()
            try:
                # Idle (nothing to retry) it sleeps until a request wakes it.
                users.add(self.users.get(timeout=self.POLL_S) if pending else self.users.get())
                while True:
                    users.add(self.users.get_nowait())
            except queue.Empty:
                pass
            try:
                with self.app.app_context():  # a fresh context each round: g holds per-round caches
                    for user_id in users:
                        if Budget.select().where(Budget.user == user_id).exists():
                            check(user_id)
                    deliver_due()
                    pending = BudgetDelivery.select().where(BudgetDelivery.delivered_at.is_null(),
                                                            BudgetDelivery.attempts <= len(RETRY_S)).exists()
            except Exception as err:  # noqa: BLE001 - a bad round is logged; a later one tries again
                # One line and a growing pause: the database may be gone for good (an embedding
                # app closed it), and Python 3.11 formats a traceback's carets with ast.parse,
                # whose state other threads share (a SystemError in whichever parses beside it).
                failures += 1
                log.warning("budget round failed (%d in a row): %s: %s", failures, type(err).__name__, err)
                self.stopping.wait(min(MAX_BACKOFF_S, 2 ** failures))
                continue
            failures = 0


def notifier(app):
    """The app's notifier, started on first use (so a restart resumes pending deliveries at
    its first request)."""
    found = app.extensions.get("opensync.budgets")
    if found is None:
        with _starting:
            found = app.extensions.get("opensync.budgets")
            if found is None:
                found = app.extensions["opensync.budgets"] = Notifier(app)
    return found


_starting = threading.Lock()
