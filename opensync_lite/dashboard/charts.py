"""The overview's chart as numbers a template lays out with HTML and CSS (crisp at any width,
readable by screen readers): days as columns, one stacked segment per source."""

import math

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


def stacked_days(dates, series, metric):
    """``dates`` and ``series`` ({source: [day metrics]}) as a chart: columns with segments
    (height in % of the axis), the axis top and its ticks, the legend."""
    field = "cost" if metric == "cost" else "total_tokens"
    legend = [{"source": source, "css": src.chart_class(i, source)} for i, source in enumerate(series)]
    totals = [sum(days[i][field] for days in series.values()) for i in range(len(dates))]
    top = nice_ceiling(max(totals, default=0))
    label_every = max(1, math.ceil(len(dates) / 6))
    columns = []
    for i, date in enumerate(dates):
        segments = [
            {"source": item["source"], "css": item["css"], "value": days[i][field], "pct": 100 * days[i][field] / top}
            for item, days in zip(legend, series.values())
            if days[i][field]
        ]
        columns.append({"date": date, "total": totals[i], "segments": segments,
                        "label": date[5:] if i % label_every == 0 or i == len(dates) - 1 else ""})
    return {"columns": columns, "top": top, "ticks": [top, top / 2, 0], "legend": legend, "metric": metric,
            "empty": not any(totals)}
