"""Budgets blueprint (/api/budgets): the budgets, where their alerts go, and the alerts."""

from flask import Blueprint, current_app, g, request

from . import budgets, limits_wire, schemas
from .errors import ApiError

bp = Blueprint("budgets", __name__, url_prefix="/budgets")
SPENDING = {"opensync.sync_sessions.sync_session", "opensync.sync_messages.sync_message",
            "opensync.sync_messages.sync_batch", "opensync.otlp.logs", "opensync.otlp.metrics",
            "opensync.otlp.traces", "opensync.api.limits.store_snapshot", "opensync.opensync_compat.sync_session",
            "opensync.opensync_compat.sync_message", "opensync.opensync_compat.sync_batch"}  # (and the watcher's imports)


@bp.after_app_request
def _wake(response):
    """After a write that can change what was spent: wake the notifier (it checks the budgets
    in its own thread; the request does not wait for it)."""
    if request.endpoint in SPENDING and response.status_code < 300 and g.get("user_id") is not None:
        budgets.notifier(current_app._get_current_object()).wake(g.user_id)
    return response


def _own(budget_id):
    row = budgets.get_budget(g.user_id, budget_id)
    if row is None:
        raise ApiError(404, "Budget not found.")
    return row


def _one(budget_id):
    row = _own(budget_id)
    return {"budget": limits_wire.budget_out.dump(budgets.status(g.user_id, row, _now()))}


def _now():
    import time

    return int(time.time() * 1000)


@bp.get("")
def list_budgets():
    return {"budgets": limits_wire.budget_out.dump(budgets.list_budgets(g.user_id), many=True)}


@bp.post("")
def create_budget():
    data = schemas.read(limits_wire.budget_in)
    budget_id = budgets.create_budget(g.user_id, data)
    budgets.notifier(current_app._get_current_object()).wake(g.user_id)  # already past a threshold?
    return _one(budget_id), 201


@bp.get("/<int:budget_id>")
def get_budget(budget_id):
    return _one(budget_id)


@bp.patch("/<int:budget_id>")
def update_budget(budget_id):
    _own(budget_id)
    data = schemas.read(limits_wire.budget_patch)
    if not data:
        raise ApiError(400, "Invalid request: nothing to change.", fields={"_schema": ["Send at least one field."]})
    budgets.update_budget(g.user_id, budget_id, data)
    return _one(budget_id)


@bp.delete("/<int:budget_id>")
def delete_budget(budget_id):
    _own(budget_id)
    budgets.delete_budget(g.user_id, budget_id)
    return {"ok": True, "deleted": str(budget_id)}


@bp.get("/channels")
def get_channels():
    return {"channels": limits_wire.channels_out.dump(budgets.channels(g.user_id))}


@bp.put("/channels")
def set_channels():
    data = schemas.read(limits_wire.channels_in)
    return {"channels": limits_wire.channels_out.dump(budgets.set_channels(g.user_id, data))}


@bp.get("/alerts")
def list_alerts():
    return {"alerts": limits_wire.alert_out.dump(budgets.alerts(g.user_id), many=True)}
