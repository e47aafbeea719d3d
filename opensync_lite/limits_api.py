"""Limits blueprint (/api/limits): the snapshots `opensync-lite statusline` forwards from
Claude Code's status line, and what the line shows back (today's spend, budget warnings)."""

import time

from flask import Blueprint, g

from . import budgets, limits, limits_wire, schemas

bp = Blueprint("limits", __name__, url_prefix="/limits")


@bp.post("/snapshots")
def store_snapshot():
    snapshot = schemas.read(limits_wire.snapshot_in)
    now = int(time.time() * 1000)
    stored = limits.record_snapshot(g.user_id, snapshot, now)
    today = limits.spend(g.user_id, limits.day_start(now), now + 1)
    # The current periods' alerts, for the status line's warning.
    warnings = [{"text": a["text"], "threshold": a["threshold"]} for a in budgets.alerts(g.user_id, 20, current_only=True, now=now)]
    return limits_wire.snapshot_stored.dump({"stored": stored, "today": today, "alerts": warnings[:3]})


@bp.get("/snapshots")
def list_snapshots():
    args = schemas.read_query(limits_wire.snapshots_query)
    now = int(time.time() * 1000)
    rows = limits.quota_history(g.user_id, now - args["days"] * 86_400_000, now + 1)
    return limits_wire.snapshot_list.dump({"snapshots": rows})
