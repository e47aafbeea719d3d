"""The Limits page: the active 5-hour block as a meter with its reset time, the last blocks as
bars, the week so far; and, when Claude Code's status line reports it, the real quota used
over time beside the blocks' estimate (the page says which one a figure is)."""

from flask import g, render_template

from .. import limits, limits_wire
from .views import _query, bp

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
