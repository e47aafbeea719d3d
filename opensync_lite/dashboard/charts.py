"""The overview's chart as numbers a template lays out with HTML and CSS (crisp at any width,
readable by screen readers): days, weeks or months as columns, one stacked segment per source
(or model, or project)."""

import math

from ..projects import last_component
from . import sources as src


def nice_ceiling(value):
    """The smallest 1, 2, 2.5, 4, 5, 6 or 8 x 10^n at or above ``value`` (axis tops people
    can read, halved for the middle tick)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 4, 5, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


TOP_VALUES = 6  # a chart stacked by model or project shows this many, the rest as "other"
OTHER = object()  # the key of the "other" values' series


def _top(series, stack):
    """``series`` with at most TOP_VALUES values, the others added up as one "other"."""
    if stack == "source" or len(series) <= TOP_VALUES + 1:
        return series
    items = list(series.items())
    kept, rest = dict(items[:TOP_VALUES]), [rows for _, rows in items[TOP_VALUES:]]
    other = [{key: sum(rows[i][key] or 0 for rows in rest) for key in ("sessions", "cost", "total_tokens")}
             for i in range(len(rest[0]))]
    return {**kept, OTHER: other}


def _running(series):
    """Each value's buckets as totals so far (the range's first bucket up to each)."""
    out = {}
    for value, rows in series.items():
        so_far = dict.fromkeys(("sessions", "cost", "total_tokens"), 0)
        out[value] = []
        for row in rows:
            so_far = {key: total + (row[key] or 0) for key, total in so_far.items()}
            out[value].append(so_far)
    return out


def _legend(values, stack):
    if stack == "source":
        return [{"value": v, "label": v or "unknown", "css": src.chart_class(i, v)} for i, v in enumerate(values)]
    name = last_component if stack == "project" else str  # a project's key is its folder's path
    return [{"value": v, "label": "other" if v is OTHER else name(v) if v else "(none)",
             "css": "stack-other" if v is OTHER else f"stack-{i}"} for i, v in enumerate(values)]


def _labelled(i, count, every):
    """Every ``every``-th column and the last, leaving out one that would crowd the last."""
    if i == count - 1:
        return True
    return i % every == 0 and count - 1 - i >= max(2, every)


def stacked(buckets, series, metric, stack, href, cumulative=False):
    """``buckets`` ([(first day, last day)]) and ``series`` ({value: [metrics per bucket]}) as
    a chart: columns (each a link, ``href(first, last)``, to those days' sessions) of segments
    (height in % of the axis), the axis top and its ticks, the legend. ``cumulative``: each
    column is the total from the first bucket up to it (and links to all those days)."""
    field = "cost" if metric == "cost" else "total_tokens"
    series = _top(series, stack)
    if cumulative:
        series = _running(series)
    legend = _legend(list(series), stack)
    totals = [sum(rows[i][field] for rows in series.values()) for i in range(len(buckets))]
    top = nice_ceiling(max(totals, default=0))
    label_every = max(1, math.ceil(len(buckets) / 6))
    monthly = len(buckets) > 1 and buckets[0][0][:7] != buckets[1][0][:7] and buckets[1][0].endswith("-01")
    columns = []
    for i, (first, last) in enumerate(buckets):
        segments = [
            {"label": item["label"], "css": item["css"], "value": rows[i][field], "pct": 100 * rows[i][field] / top,
             "sessions": rows[i]["sessions"]}
            for item, rows in zip(legend, series.values())
            if rows[i][field] or rows[i]["sessions"]
        ]
        columns.append({
            "first": first, "last": last, "total": totals[i], "segments": segments, "sessions": sum(s["sessions"] for s in segments), "href": href(buckets[0][0] if cumulative else first, last),
            "when": f"{buckets[0][0]} – {last}" if cumulative else first if first == last else f"{first} – {last}",
            "label": (first[:7] if monthly else first[5:]) if _labelled(i, len(buckets), label_every) else "",
            "end_side": i >= len(buckets) / 2,
        })
    return {"columns": columns, "top": top, "ticks": [top, top / 2, 0], "legend": legend, "metric": metric,
            "stack": stack, "cumulative": cumulative, "empty": not any(c["sessions"] or c["total"] for c in columns)}
