"""The Limits page: the active 5-hour block as a meter with its reset time, the last blocks as
bars, the week so far; and, when Claude Code's status line reports it, the real quota used
over time beside the blocks' estimate (the page says which one a figure is). And budgets: their
section of Settings and the banner of this period's alerts on every page."""

from flask import abort, current_app, g, redirect, render_template, request, url_for

from .. import budgets, limits, limits_wire, schemas
from . import login
from .views import _given, _query, bp

BARS = 12  # the last blocks drawn


@bp.get("/limits")
def limits_page():
    args = _query(limits_wire.blocks_query)
    hours, days = args.pop("hours"), args.pop("days")
    data = limits.windows(g.user_id, args, hours, days)
    used = [b for b in data["blocks"] if not b["is_gap"]]
    # Without the real quota, the estimate measures the active block against the largest one
    # before it (ccusage's "max"): a guess, and said to be one.
    earlier = [b["total_tokens"] for b in used if not b["is_active"]]
    ceiling = max(earlier, default=0)
    quota = limits.quota_history(g.user_id, data["since"], data["until"])
    return render_template("dashboard/limits.html", data=data, bars=used[-BARS:], ceiling=ceiling,
                           widest=max((b["total_tokens"] for b in used[-BARS:]), default=0), quota=quota,
                           latest=quota[-1] if quota else None, now=data["now"],
                           chart=_chart(data, used, ceiling or max((b["total_tokens"] for b in used), default=0), quota))


class _Chart:
    """The quota chart's geometry: time across (the page's range), percent up (0 to 120)."""

    width, height, top = 600, 160, 120

    def __init__(self, since, until):
        self.since, self.span = since, max(1, until - since)

    def x(self, ms):
        return round((min(max(ms, self.since), self.since + self.span) - self.since) / self.span * self.width, 1)

    def y(self, pct):
        return round(self.height - min(pct, self.top) / self.top * self.height, 1)


def _chart(data, used, ceiling, quota):
    """The estimate as one rising step per block (0 at its start, its share of the largest
    block at its last activity, held to its end); the real 5-hour use as a line."""
    # From the first block (or snapshot) in the range: a week of nothing would squeeze the rest.
    first = min([b["start"] for b in used] + [q["created_at"] for q in quota] + [data["now"] - 5 * 3_600_000])
    chart = _Chart(max(data["since"], first - 3_600_000), data["now"])
    chart.estimate = []
    for b in used:
        pct = 100 * b["total_tokens"] / ceiling if ceiling else 0
        last, end = b["actual_end"], min(b["end"], data["now"])
        chart.estimate.append(" ".join(f"{chart.x(t)},{chart.y(v)}" for t, v in (
            (b["start"], 0), (last, pct), (max(last, end), pct), (max(last, end), 0))))
    chart.real = " ".join(f"{chart.x(q['created_at'])},{chart.y(q['five_hour_used'])}"
                          for q in quota if q["five_hour_used"] is not None)
    return chart


# --- budgets: the Settings section, the banner -----------------------------------------------------

@bp.app_context_processor
def _budget_globals():
    # Functions, so only the templates that show them pay for the reads.
    return {"budget_panel": _budget_panel, "budget_banner": _budget_banner}


def _budget_panel():
    return {"budgets": budgets.list_budgets(g.user_id), "channels": budgets.channels(g.user_id),
            "alerts": budgets.alerts(g.user_id, limit=20), "periods": limits_wire.PERIODS}


def _budget_banner():
    """This period's alerts (the highest threshold of each budget), for every page's banner."""
    if g.get("user_id") is None:
        return []
    shown, seen = [], set()
    for alert in budgets.alerts(g.user_id, limit=20, current_only=True):
        if alert["budget"] not in seen:
            seen.add(alert["budget"])
            shown.append(alert)
    return shown


@bp.post("/settings/budgets")
def create_budget():
    form = {k: v for k, v in _given(request.form, strip=True).items() if k != "csrf"}
    if "amount" in form:
        try:
            form["amount"] = float(form["amount"])
        except ValueError:
            pass  # the schema names the field
    scope = form.pop("scope", "")
    if scope.startswith("source:"):
        form["source"] = scope[len("source:"):]
    elif scope.startswith("project:"):
        form["project"] = scope[len("project:"):]
    budgets.create_budget(g.user_id, schemas.load(limits_wire.budget_in, form))
    budgets.notifier(current_app._get_current_object()).wake(g.user_id)  # already past a threshold?
    login.notify("Budget added: alerts at 80 % and 100 % of it.")
    return redirect(url_for("dashboard.settings") + "#budgets")


@bp.post("/settings/budgets/<int:budget_id>/delete")
def delete_budget(budget_id):
    if not budgets.delete_budget(g.user_id, budget_id):
        abort(404, "No such budget.")
    login.notify("Budget deleted.")
    return redirect(url_for("dashboard.settings") + "#budgets")


@bp.post("/settings/budgets/channels")
def set_budget_channels():
    form = _given(request.form, strip=True)
    data = {"webhook_url": form.get("webhookUrl"), "ntfy_url": form.get("ntfyUrl"), "desktop": form.get("desktop") == "on"}
    wire = {"webhookUrl": data["webhook_url"], "ntfyUrl": data["ntfy_url"], "desktop": data["desktop"]}
    budgets.set_channels(g.user_id, schemas.load(limits_wire.channels_in, wire))
    login.notify("Alert channels saved.")
    return redirect(url_for("dashboard.settings") + "#budgets")
