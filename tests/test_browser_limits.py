"""The Limits page in Chromium against a live `serve`: the active block as a meter with its
reset time, the last blocks as bars, the week so far, and the real quota from status-line
snapshots beside the blocks' estimate; light, dark and 390 px wide. Screenshots go to
tests/artifacts/ (limits-*)."""

import re
import time

import pytest

from conftest import LiveServer
from test_dashboard_browser import axe_serious, new_page, post, shoot, signed_in_state  # noqa: F401

from playwright.sync_api import expect  # noqa: E402  (test_dashboard_browser skips or fails first)

from test_dashboard_browser import browser  # noqa: F401  (the fixture, shared)

HOUR = 3_600_000
SONNET = "claude-sonnet-4-20250514"


def seed(server, key, now):
    """Claude Code and OpenCode work over two days: four earlier blocks and one active now."""
    sessions, messages = [], []
    starts = [now - 44 * HOUR, now - 30 * HOUR, now - 20 * HOUR, now - 9 * HOUR, now - 2 * HOUR]
    for i, start in enumerate(starts):
        source = "opencode" if i % 2 else "claude-code"
        sessions.append({"externalId": f"s{i}", "source": source, "model": SONNET, "title": f"Work {i}",
                         "createdAt": start})
        for k in range(4 + i):
            messages.append({"sessionExternalId": f"s{i}", "externalId": f"s{i}-m{k}", "role": "assistant",
                             "model": SONNET, "createdAt": start + k * 20 * 60_000, "inputTokens": 200 * (k + 1),
                             "outputTokens": 900 * (i + 1), "cacheReadTokens": 20_000 * (i + 1)})
    post(server, key, "/sync/batch", {"sessions": sessions, "messages": messages})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(str(tmp_path_factory.mktemp("limits") / "limits.db"))
    server.key = server.create_key()
    now = int(time.time() * 1000)
    seed(server, server.key, now)
    yield server
    server.stop()


def test_the_estimate_alone_then_the_real_quota(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/")
    page.get_by_role("link", name="Limits").click()
    expect(page.get_by_role("heading", name="Limits", level=1)).to_be_visible()
    meter = page.get_by_role("meter", name="5-hour block against your largest block (estimate)")
    expect(meter).to_be_visible()
    assert 0 < int(meter.get_attribute("aria-valuenow")) <= 100
    expect(page.locator("#block-head + p .basis")).to_have_text("estimate")
    expect(page.get_by_text("no status-line snapshot yet", exact=False)).to_be_visible()
    assert page.locator(".block-bars li").count() == 5
    expect(page.locator(".block-bars li.active")).to_have_count(1)
    expect(page.locator(".panel", has=page.locator("#block-head"))).to_contain_text("Resets")
    shoot(page, "limits-estimate-light")
    # Claude Code's status line reports the plan's real use: the page shows it, and says so.
    now = int(time.time())
    for used in (12.0, 31.5):
        post(server, server.key, "/api/limits/snapshots", {
            "session_id": f"cc-{used}", "model": {"id": "claude-opus-4-1", "display_name": "Opus"}, "machine": "laptop",
            "cost": {"total_cost_usd": 0.8},
            "rate_limits": {"five_hour": {"used_percentage": used, "resets_at": now + 2 * 3600},
                            "seven_day": {"used_percentage": 44.0, "resets_at": now + 3 * 86400}}})
    page.reload()
    real = page.get_by_role("meter", name="5-hour quota used")
    expect(real).to_have_attribute("aria-valuenow", "32")
    expect(page.get_by_role("meter", name="Weekly quota used")).to_have_attribute("aria-valuenow", "44")
    expect(page.locator("#block-head + p")).to_contain_text("32% of the 5-hour quota used")
    expect(page.locator(".quota-chart polyline.real")).to_have_count(1)
    expect(page.get_by_text("is the real 5-hour quota used", exact=False)).to_be_visible()
    shoot(page, "limits-real-light")
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation(server, browser, signed_in_state, scheme):  # noqa: F811
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    page.goto(server.url + "/limits")
    assert axe_serious(page) == []
    shoot(page, f"limits-{scheme}")
    context.close()


def test_phone_width_has_no_sideways_scroll(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(server.url + "/limits")
    expect(page.locator(".block-bars li").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "limits-phone")
    context.close()


def test_a_budget_set_in_settings_warns_on_every_page(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/settings")
    section = page.locator("section", has=page.locator("#budgets"))
    section.get_by_label("Amount (USD)").fill("0.05")
    section.get_by_label("Per").select_option("week")
    section.get_by_role("button", name="Add a budget").click()
    expect(page.locator("#budgets")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Budget added")).to_be_visible()
    expect(section.locator("table.data tbody tr")).to_have_count(1)
    expect(page.locator("#webhook-secret")).to_have_text(re.compile(r"\S{24,}"))
    # The notifier records the crossing in its own thread: it shows from the next page on.
    for _ in range(50):
        page.goto(server.url + "/limits")
        if page.locator(".budget-alert").count():
            break
        time.sleep(0.2)
    banner = page.locator(".budget-alert")
    expect(banner).to_have_count(1)  # 80 % and 100 % both crossed: the higher one shows
    expect(banner).to_contain_text("Budget reached: 100% of the weekly budget (all agents)")
    expect(banner).to_contain_text("partly estimated")
    shoot(page, "limits-budget-banner")
    page.goto(server.url + "/settings#budgets")
    expect(page.locator(".budget-alerts li")).to_have_count(2)
    shoot(page, "settings-budgets")
    context.close()
