from collections import defaultdict
from datetime import datetime, timezone

import pytest

from factories import BASE, DAY, make_sessions, post_all

pytestmark = pytest.mark.both_databases

MESSAGES = 2


@pytest.fixture
def data(api):
    sessions = make_sessions()
    post_all(api, sessions, MESSAGES)
    return sessions


def expected_groups(sessions, key):
    groups = defaultdict(lambda: {"sessions": 0, "promptTokens": 0, "completionTokens": 0, "cost": 0.0, "durationMs": 0})
    for s in sessions:
        g = groups[key(s)]
        g["sessions"] += 1
        g["promptTokens"] += s["promptTokens"]
        g["completionTokens"] += s["completionTokens"]
        g["cost"] += s["cost"]
        g["durationMs"] += s["durationMs"]
    return groups


def check_rows(rows, name, expected):
    assert len(rows) == len(expected)
    counts = [r["sessions"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    for row in rows:
        want = expected[row[name]]
        assert row["sessions"] == want["sessions"]
        assert row["messages"] == want["sessions"] * MESSAGES
        assert row["promptTokens"] == want["promptTokens"]
        assert row["completionTokens"] == want["completionTokens"]
        assert row["totalTokens"] == want["promptTokens"] + want["completionTokens"]
        assert row["cost"] == pytest.approx(want["cost"])
        assert row["durationMs"] == want["durationMs"]
        assert isinstance(row["lastActive"], int)


def test_sources_one_row_per_source_with_null_for_legacy(api, data):
    rows = api.get("/api/stats/sources").get_json()["sources"]
    check_rows(rows, "source", expected_groups(data, lambda s: s.get("source")))
    assert None in [r["source"] for r in rows]


@pytest.mark.parametrize(
    "group,name,key",
    [
        ("models", "model", lambda s: s["model"]),
        ("providers", "provider", lambda s: s["provider"]),
        ("projects", "project", lambda s: s["projectPath"]),  # a folder's path is its project's key
    ],
)
def test_grouped_stats(api, data, group, name, key):
    rows = api.get(f"/api/stats/{group}").get_json()[group]
    check_rows(rows, name, expected_groups(data, key))


@pytest.mark.parametrize("group", ["sources", "models", "providers", "projects"])
@pytest.mark.parametrize("source", ["claude-code", "unknown"])
def test_every_group_takes_the_source_filter(api, data, group, source):
    wanted = [s for s in data if s.get("source") == (None if source == "unknown" else source)]
    rows = api.get(f"/api/stats/{group}", query_string={"source": source}).get_json()[group]
    assert sum(r["sessions"] for r in rows) == len(wanted)
    assert sum(r["promptTokens"] for r in rows) == sum(s["promptTokens"] for s in wanted)


def test_date_range_filter(api, data):
    rows = api.get("/api/stats/sources", query_string={"from": "2026-01-02", "to": "2026-01-03"}).get_json()["sources"]
    wanted = [s for s in data if BASE + DAY <= s["createdAt"] < BASE + 3 * DAY]
    assert sum(r["sessions"] for r in rows) == len(wanted) > 0


def test_summary(api, data):
    body = api.get("/api/stats").get_json()
    n = len(data)
    prompt = sum(s["promptTokens"] for s in data)
    completion = sum(s["completionTokens"] for s in data)
    assert body["sessionCount"] == n and body["messageCount"] == n * MESSAGES
    assert (body["promptTokens"], body["completionTokens"], body["totalTokens"]) == (prompt, completion, prompt + completion)
    assert body["totalCost"] == pytest.approx(sum(s["cost"] for s in data))
    assert body["totalDurationMs"] == sum(s["durationMs"] for s in data)
    assert body["uniqueModels"] == 3 and body["uniqueProjects"] == 3
    assert body["avgTokensPerSession"] == pytest.approx((prompt + completion) / n)
    assert body["avgCostPerSession"] == pytest.approx(sum(s["cost"] for s in data) / n)
    usage = body["modelUsage"]
    assert set(usage) == {"claude-sonnet-4", "gpt-5", "gemini-2.5-pro"}
    for model, entry in usage.items():
        mine = [s for s in data if s["model"] == model]
        assert entry["sessions"] == len(mine)
        assert entry["tokens"] == sum(s["promptTokens"] + s["completionTokens"] for s in mine)
        assert entry["cost"] == pytest.approx(sum(s["cost"] for s in mine))


def test_summary_with_source_filter(api, data):
    body = api.get("/api/stats?source=opencode").get_json()
    assert body["sessionCount"] == len([s for s in data if s.get("source") == "opencode"])


def test_daily_is_ascending_utc_days_with_gaps_filled(api, data):
    days = api.get("/api/stats/daily", query_string={"from": "2025-12-31", "to": "2026-01-08"}).get_json()["days"]
    assert [d["date"] for d in days] == ["2025-12-31"] + [f"2026-01-0{i}" for i in range(1, 9)]
    per_day = defaultdict(int)
    for s in data:
        per_day[datetime.fromtimestamp(s["createdAt"] / 1000, timezone.utc).date().isoformat()] += 1
    assert {d["date"]: d["sessions"] for d in days if d["sessions"]} == dict(per_day)
    assert days[0]["sessions"] == 0 and days[0]["lastActive"] is None


def test_daily_default_is_the_last_n_days(api):
    api.post("/sync/session", {"externalId": "today", "promptTokens": 5})
    days = api.get("/api/stats/daily?days=7").get_json()["days"]
    assert len(days) == 7
    assert days[-1]["date"] == datetime.now(timezone.utc).date().isoformat()
    assert days[-1]["sessions"] == 1 and days[-1]["promptTokens"] == 5


@pytest.mark.parametrize("bucket", ["week", "month"])
def test_daily_buckets_add_up_the_days_they_hold(api, data, bucket):
    # 2025-12-29 is a Monday; the range cuts December's and that week's first days off.
    query = {"from": "2025-12-30", "to": "2026-02-03"}
    days = api.get("/api/stats/daily", query_string=query).get_json()["days"]
    buckets = api.get("/api/stats/daily", query_string={**query, "bucket": bucket}).get_json()["days"]
    if bucket == "week":
        assert [b["date"] for b in buckets] == ["2025-12-30", "2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02"]
        assert [b["until"] for b in buckets][:2] == ["2026-01-04", "2026-01-11"] and buckets[-1]["until"] == "2026-02-03"
    else:
        assert [(b["date"], b["until"]) for b in buckets] == [("2025-12-30", "2025-12-31"), ("2026-01-01", "2026-01-31"),
                                                               ("2026-02-01", "2026-02-03")]
    for b in buckets:
        inside = [d for d in days if b["date"] <= d["date"] <= b["until"]]
        for metric in ("sessions", "promptTokens", "totalTokens", "messages"):
            assert b[metric] == sum(d[metric] for d in inside), (b["date"], metric)
        assert b["cost"] == pytest.approx(sum(d["cost"] for d in inside))
    assert sum(b["sessions"] for b in buckets) == len(data)


def test_empty_stats(api):
    assert api.get("/api/stats/sources").get_json() == {"sources": []}
    body = api.get("/api/stats").get_json()
    assert body["sessionCount"] == 0 and body["totalCost"] == 0 and body["modelUsage"] == {}


@pytest.mark.parametrize("path", ["/api/stats", "/api/stats/sources", "/api/stats/daily"])
@pytest.mark.parametrize("query,param", [
    ("from=yesterday", "from"), ("to=2026-13-01", "to"), ("from=2026-02-01&to=2026-01-01", "to"),
    ("days=0", "days"), ("days=x", "days"), ("source=", "source"), ("bucket=year", "bucket"),
])
def test_bad_stats_params(api, path, query, param):
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400
    assert param in response.get_json()["fields"]


def test_stats_are_per_user(api, other_api, data):
    assert other_api.get("/api/stats/sources").get_json() == {"sources": []}
    assert other_api.get("/api/stats").get_json()["sessionCount"] == 0
    assert all(d["sessions"] == 0 for d in other_api.get("/api/stats/daily?from=2026-01-01&to=2026-01-07").get_json()["days"])


@pytest.mark.parametrize("filters", [{}, {"source": "cursor"}, {"source": "unknown", "date_from": BASE + DAY}])
def test_the_one_scan_breakdown_agrees_with_each_group_by(app, api, data, filters):
    """The dashboard's breakdown (one GROUP BY over all four dimensions, added up in Python)
    gives the same rows, in the same order, as the API's one GROUP BY per dimension."""
    from opensync_lite import queries

    with app.app_context():
        totals, by = queries.breakdown(1, filters)
        for dimension in ("source", "model", "provider", "project"):
            expected = queries.grouped_stats(1, filters, dimension)
            got = by[dimension]
            assert [r["key"] for r in got] == [r["key"] for r in expected], dimension
            for mine, theirs in zip(got, expected):
                for name, value in theirs.items():
                    assert mine[name] == pytest.approx(value), (dimension, name)
        assert totals["sessions"] == sum(r["sessions"] for r in by["source"])
        counts = queries.filter_options(1)
        assert counts["model"] == [{"value": r["key"], "count": r["sessions"]} for r in queries.grouped_stats(1, {}, "model")]
