"""The overview page: today / this week / this month against the period before, the totals of
a chosen range (a preset or custom dates), the chart of that range per day, week or month, and
the top models and projects by cost."""

from datetime import datetime, timedelta, timezone

from flask import g, render_template, request, url_for

from .. import queries, schemas
from . import charts
from .commands import cli_command
from .views import FILTER_NAMES, _filter_options, _query, _remembered, _unfiltered, bp

DAY_MS = queries.DAY_MS
# preset → (its label, how many days up to today; None: since the first session)
RANGES = {"today": ("Today", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30),
          "90d": ("Last 90 days", 90), "all": ("All time", None)}
DEFAULT_RANGE = "30d"
# The filters the overview's chips name (query-string name, what a person calls it).
CHIPS = (("source", "Source"), ("model", "Model"), ("provider", "Provider"), ("project", "Project"),
         ("q", "Text"), ("tag", "Tag"), ("file", "File"), ("parent", "Subagents of"), ("starred", "Starred"),
         ("evalStatus", "Eval status"), ("from", "From"), ("to", "To"))


@bp.get("/")
def overview():
    args = {**_query(schemas.overview_query), "tests": False}  # a connection test is no work done
    page = _remembered("overview", args, lambda: _overview(args))
    return render_template("dashboard/overview.html", args=args, ranges=RANGES, **page)


def _ms(day):
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def _day(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date()


def _today():
    return datetime.now(timezone.utc).date()


def chosen_range(user_id, args):
    """(preset name or "custom", label, first day, last day) of the overview's range: custom
    dates when ``from`` or ``to`` is given, else the preset (30 days by default)."""
    today = _today()
    if args.get("date_from") is not None or args.get("date_to") is not None:
        last = _day(args["date_to"] - 1) if args.get("date_to") is not None else today
        first = _day(args["date_from"]) if args.get("date_from") is not None else last - timedelta(days=29)
        label = first.isoformat() if first == last else f"{first.isoformat()} – {last.isoformat()}"
        return "custom", label, first, last
    name = args.get("range") or DEFAULT_RANGE
    label, days = RANGES[name]
    if days is None:
        started = queries.first_activity(user_id, {**args, "date_from": None, "date_to": None})
        first = min(_day(started), today) if started is not None else today
    else:
        first = today - timedelta(days=days - 1)
    return name, label, first, today


def auto_bucket(first, last):
    """Days for up to three months, weeks up to a year and a bit, months beyond."""
    span = (last - first).days + 1
    return "day" if span <= 92 else "week" if span <= 400 else "month"


def _overview(args):
    user_id = g.user_id
    name, label, first, last = chosen_range(user_id, args)
    bounded = {**args, "date_from": max(_ms(first), args.get("date_from") or 0),
               "date_to": min(_ms(last) + DAY_MS, args.get("date_to") or _ms(last) + DAY_MS)}
    days = (last - first).days + 1
    bucket = args.get("bucket") or auto_bucket(first, last)
    totals = queries.summary(user_id, bounded)
    buckets, series = queries.daily_by(user_id, bounded, days, args["stack"], bucket)
    # Subagents folded under their parents, as the sessions list has them (unless one parent's are asked for).
    folded = bounded if args.get("parent") else {**bounded, "subagents": "fold"}
    recent, _, _, _ = queries.list_sessions(user_id, folded, limit=8)
    chart = charts.stacked(buckets, series, args["metric"], args["stack"],
                           lambda begin, end: _sessions_url(args, begin, end), cumulative=args["view"] == "cumulative")
    return {
        "range_name": name, "range_label": label, "first": first, "last": last, "bucket": bucket,
        "totals": totals,
        "by_source": _by_cost(totals["by"]["source"]),
        "models": _by_cost([row for row in totals["by"]["model"] if row["key"] is not None])[:8],
        "projects": _by_cost([row for row in totals["by"]["project"] if row["key"] is not None])[:8],
        "recent": recent,
        "chart": chart,
        "periods": periods(user_id, args),
        "chips": chips(args),
        "sessions_url": _sessions_url(args, first.isoformat(), last.isoformat()),
        "has_sessions": queries.first_activity(user_id, {"tests": False}) is not None,
        "import_command": cli_command("import", "claude-code"),
        # Unfiltered, the summary's own breakdown already holds the options' counts.
        "options": _filter_options() if not _unfiltered(args) or name != "all" else queries.filter_options(user_id, totals["by"]),
    }


def _by_cost(rows):
    """Most cost first, then most sessions: what people ask of a top list is where money goes."""
    return sorted(rows, key=lambda row: (-row["cost"], -row["sessions"]))


def _wire_filters(args):
    """The overview's session filters as the sessions list's query string takes them."""
    out = {}
    for field_name in FILTER_NAMES:
        value = args.get(field_name)
        if value is None or field_name in ("date_from", "date_to", "file_prefix"):
            continue
        key = {"eval_status": "evalStatus"}.get(field_name, field_name)
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    if args.get("file_prefix"):
        out["filePrefix"] = "true"
    return out


def _sessions_url(args, begin, end):
    """The sessions list of the days ``begin``..``end`` (ISO dates) under the overview's filters."""
    return url_for("dashboard.sessions", **_wire_filters(args), **{"from": begin, "to": end})


def _sum(rows, first, last):
    """Sessions, tokens and cost of the days first..last in ``rows`` (daily_stats' by date)."""
    out = {"sessions": 0, "total_tokens": 0, "cost": 0.0}
    day = first
    while day <= last:
        row = rows.get(day.isoformat())
        if row:
            for key in out:
                out[key] += row[key]
        day += timedelta(days=1)
    return out


def _change(now, before):
    """The change in percent, or None when there is nothing before to compare with."""
    return None if not before else 100 * (now - before) / before


def periods(user_id, args, today=None):
    """Today, this week (from Monday) and this month so far, each beside the same days of the
    period before (yesterday, last week, last month), under the overview's filters but not its
    range: one query over the UTC days since the start of last month."""
    today = today or _today()
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    last_month_end = month - timedelta(days=1)
    earliest = min(last_month, week - timedelta(days=7))
    filters = {**args, "date_from": _ms(earliest), "date_to": _ms(today) + DAY_MS}
    rows = {row["date"]: row for row in queries.daily_stats(user_id, filters, (today - earliest).days + 1)}
    spans = (
        ("today", "Today", "yesterday", (today, today), (today - timedelta(days=1),) * 2),
        ("week", "This week", "the same days last week", (week, today),
         (week - timedelta(days=7), today - timedelta(days=7))),
        ("month", "This month", "the same days last month", (month, today),
         (last_month, min(last_month + timedelta(days=today.day - 1), last_month_end))),
    )
    out = []
    for key, label, against, (first, last), (before_first, before_last) in spans:
        now, before = _sum(rows, first, last), _sum(rows, before_first, before_last)
        out.append({"key": key, "label": label, "against": against, "now": now, "before": before,
                    "url": _sessions_url(args, first.isoformat(), last.isoformat()),
                    "change": {metric: _change(now[metric], before[metric]) for metric in now}})
    return out


def chips(args):
    """Every active filter as (what it is, its value, the overview's URL without it)."""
    given = {key: value for key, value in request.args.items() if value.strip()}
    out = []
    for key, label in CHIPS:
        if key in given:
            value = given[key]
            if key == "starred":
                value = "yes" if args.get("starred") else "no"
            rest = {k: v for k, v in given.items() if k != key and k not in ("cursor", "before")}
            out.append({"label": label, "value": value, "url": url_for("dashboard.overview", **rest)})
    return out
