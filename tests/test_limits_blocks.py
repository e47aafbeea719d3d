"""5-hour billing blocks and weekly windows (`GET /api/stats/blocks`) equal ccusage 20's
`blocks --json` on the same Claude Code transcripts, imported with `opensync-lite import
claude-code`: a gap, a session spanning two blocks, and a block still active now."""

import json
import random
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from claude_cli import ccusage20
from claude_history import Writer
from conftest import CLI, LiveServer

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SONNET, OPUS = "claude-sonnet-4-20250514", "claude-opus-4-1-20250805"
KINDS = {"inputTokens": "inputTokens", "outputTokens": "outputTokens",
         "cacheCreationInputTokens": "cacheWriteTokens", "cacheReadInputTokens": "cacheReadTokens"}


def _ms(t):
    return int(t.timestamp() * 1000)


def _iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_transcripts(home, now):
    """Four sessions timed to make, from 30 hours ago: a block, a session that runs past that
    block's end into the next, a pause of 5.5 hours (a gap), and a block active now."""
    w = Writer(random.Random(21))
    t0 = now.replace(minute=0, second=0, microsecond=0) - 30 * HOUR + 20 * MINUTE
    plan = {
        "alpha-1": ("alpha", [t0, t0 + HOUR, t0 + 3 * HOUR]),
        "beta-1": ("beta", [t0 + 4.5 * HOUR, t0 + 5 * HOUR + 40 * MINUTE, t0 + 6 * HOUR + 10 * MINUTE]),  # two blocks
        "gamma-1": ("gamma", [t0 + 11 * HOUR + 41 * MINUTE, t0 + 12 * HOUR]),  # after a 5.5 h pause
        "alpha-2": ("alpha", [now - 2 * HOUR - 10 * MINUTE, now - HOUR, now - 5 * MINUTE]),  # active
    }
    for k, (session, (project, times)) in enumerate(plan.items()):
        cwd = f"/home/dev/{project}"
        lines = w.user(session, times[0] - MINUTE, f"Work on {project}, part {k}", cwd)
        for i, t in enumerate(times):
            model = OPUS if (k + i) % 3 == 0 else SONNET
            blocks = [{"type": "text", "text": f"Step {i}"}, {"type": "text", "text": "and more"}][: 1 + i % 2]
            cost = 0.4321 if (session, i) == ("gamma-1", 1) else None  # an old line's recorded costUSD
            lines += w.response(session, t, cwd, model, blocks, cost=cost)
        path = home / ".claude" / "projects" / f"-home-dev-{project}" / f"{session}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Compact, as Claude Code writes it: ccusage 20 reads lines with `"type":"assistant"` only.
        path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("blocks")
    home, db_path = base / "home", str(base / "opensync.db")
    make_transcripts(home, datetime.now(timezone.utc).replace(microsecond=0))  # (ccusage reads up to milliseconds)
    subprocess.run(CLI + ["import", "claude-code", str(home / ".claude" / "projects"), "--db", db_path],
                   check=True, capture_output=True, text=True, timeout=120)
    theirs = json.loads(subprocess.run([*ccusage20(), "blocks", "--json", "--offline"],
                                       env={"HOME": str(home), "PATH": "/usr/bin:/bin", "TZ": "UTC"},
                                       capture_output=True, text=True, timeout=60, check=True).stdout)["blocks"]
    server = LiveServer(db_path)
    key = server.create_key()
    yield {"server": server, "key": key, "theirs": theirs, "asked_at": int(time.time() * 1000)}
    server.stop()


def get(world, path, expect=200):
    request = urllib.request.Request(world["server"].url + path, headers={"Authorization": f"Bearer {world['key']}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        status, body = err.code, json.loads(err.read())
    assert status == expect, body
    return body


def post(world, path, body):
    request = urllib.request.Request(world["server"].url + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {world['key']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_cases_are_there(world):
    theirs = world["theirs"]
    assert [b["isGap"] for b in theirs].count(True) >= 2  # the 5.5 h pause, and the night before now
    assert theirs[-1]["isActive"] and not any(b["isActive"] for b in theirs[:-1])
    # alpha-1's three responses and beta-1's first in one block; beta-1's other two in the next
    assert [b["entries"] for b in theirs[:2]] == [4, 2] and not theirs[1]["isGap"]
    assert theirs[1]["startTime"] > theirs[0]["endTime"]


def test_blocks_equal_ccusage_20(world):
    ours = get(world, "/api/stats/blocks?days=3")
    theirs = world["theirs"]
    assert [b["id"] for b in ours["blocks"]] == [b["id"] for b in theirs]
    for mine, their in zip(ours["blocks"], theirs):
        assert (_iso(mine["start"]), _iso(mine["end"])) == (their["startTime"], their["endTime"])
        assert (mine["isGap"], mine["isActive"], mine["entries"]) == (their["isGap"], their["isActive"], their["entries"])
        assert (_iso(mine["actualEnd"]) if mine["actualEnd"] else None) == their["actualEndTime"]
        assert {ours_name: mine[ours_name] for ours_name in KINDS.values()} == {
            KINDS[k]: v for k, v in their["tokenCounts"].items()}
        assert mine["totalTokens"] == their["totalTokens"]
        assert mine["cost"] == pytest.approx(their["costUSD"], rel=0.005, abs=1e-9)
        assert sorted(mine["models"]) == sorted(their["models"])
    assert sum(b["cost"] for b in ours["blocks"]) > 0


def test_the_active_block_burn_rate_and_projection(world):
    ours = get(world, "/api/stats/blocks?days=3")
    mine, their = ours["active"], world["theirs"][-1]
    assert mine["id"] == their["id"] and mine["isActive"]
    rate, their_rate = mine["burnRate"], their["burnRate"]
    assert rate["tokensPerMinute"] == pytest.approx(their_rate["tokensPerMinute"], rel=1e-9)
    assert rate["tokensPerMinuteForIndicator"] == pytest.approx(their_rate["tokensPerMinuteForIndicator"], rel=1e-9)
    assert rate["costPerHour"] == pytest.approx(their_rate["costPerHour"], rel=0.005)
    assert rate["costPerMinute"] * 60 == pytest.approx(rate["costPerHour"])
    # ccusage projected when it ran, the server a moment later: a minute or two of difference.
    assert abs(mine["projection"]["remainingMinutes"] - their["projection"]["remainingMinutes"]) <= 2
    assert mine["projection"]["totalTokens"] == pytest.approx(their["projection"]["totalTokens"], rel=0.02)
    assert mine["projection"]["totalTokens"] > mine["totalTokens"]
    assert mine["end"] - ours["now"] == pytest.approx(mine["projection"]["remainingMinutes"] * 60_000, abs=60_000)


def test_weekly_window_holds_every_block(world):
    ours = get(world, "/api/stats/blocks?days=3")
    (week,) = ours["weeks"]
    assert ours["activeWeek"]["id"] == week["id"] == ours["blocks"][0]["id"]
    assert week["end"] - week["start"] == 168 * 3_600_000
    assert week["totalTokens"] == sum(b["totalTokens"] for b in world["theirs"])
    assert week["cost"] == pytest.approx(sum(b["costUSD"] for b in world["theirs"]), rel=0.005)


def test_other_sources_join_the_block_and_the_source_filter_leaves_them_out(world):
    at = world["asked_at"] - 30 * 60_000
    post(world, "/sync/session", {"externalId": "oc-1", "source": "opencode", "model": SONNET})
    post(world, "/sync/message", {"sessionExternalId": "oc-1", "externalId": "oc-1-m1", "source": "opencode",
                                  "role": "assistant", "model": SONNET, "inputTokens": 1000, "outputTokens": 500,
                                  "createdAt": at})
    both = get(world, "/api/stats/blocks?days=3")["active"]
    claude = get(world, "/api/stats/blocks?days=3&source=claude-code")["active"]
    theirs = world["theirs"][-1]
    assert claude["totalTokens"] == theirs["totalTokens"]
    assert both["totalTokens"] == theirs["totalTokens"] + 1500
    by_source = {s["source"]: s for s in both["sources"]}
    assert set(by_source) == {"claude-code", "opencode"}
    assert by_source["opencode"]["totalTokens"] == 1500 and by_source["opencode"]["costBasis"] == "estimated"
    assert both["costBasis"] == "estimated"


@pytest.mark.parametrize("query, field", [("hours=0", "hours"), ("days=x", "days"), ("from=yesterday", "from"),
                                          ("colour=red", "colour"), ("hours=5&hours=6", "hours")])
def test_bad_parameters_are_refused_naming_them(world, query, field):
    body = get(world, f"/api/stats/blocks?{query}", expect=400)
    assert field in body["fields"]
