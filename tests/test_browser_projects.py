"""In Chromium against a live `serve`: one project per folder on the overview and in the list's
filter, synctest's connection test marked and left out, a parent's total with its subagents, the
cumulative chart (with and without JavaScript); axe-core clean in light and dark, nothing wider
than 390 px. Screenshots go to tests/artifacts/ (dash2-*)."""

import re
import time

import pytest

from test_dashboard_browser import axe_serious, new_page, post, shoot, signed_in_state  # noqa: F401
from conftest import LiveServer

from playwright.sync_api import expect  # noqa: E402  (test_dashboard_browser skips or fails first)

from test_dashboard_browser import browser  # noqa: F401  (the fixture, shared)

DAY = 86_400_000
API = "/home/dev/src/api"


def seed(server, key):
    """One folder sent three ways, another folder, a day-by-day history, a parent with two
    subagents (one of them with its own), and what `claude-code-sync synctest` posts."""
    now = int(time.time() * 1000)
    sessions = []
    for i in range(18):
        name, path = [("api", API), (None, API + "/"), ("api", None), (None, "/home/dev/src/web")][i % 4]
        body = {"externalId": f"s{i:02d}", "source": ["claude-code", "opencode", "cursor"][i % 3],
                "title": f"Session {i}: {'tighten the rate limiter' if i % 2 else 'render the invoice'}",
                "model": ["claude-sonnet-4-20250514", "gpt-5"][i % 2], "cost": round(0.3 * (i % 5 + 1), 2),
                "promptTokens": 2000 * (i % 6 + 1), "completionTokens": 300, "createdAt": now - (i % 9) * DAY - 3_600_000,
                "endReason": "completed"}
        if name:
            body["projectName"] = name
        if path:
            body["projectPath"] = path
        sessions.append(body)
    sessions += [
        {"externalId": "parent", "source": "claude-code", "title": "Plan the billing rewrite", "projectPath": API,
         "cost": 3.0, "promptTokens": 30_000, "createdAt": now - 2 * 3_600_000, "endReason": "completed"},
        {"externalId": "parent-a", "source": "claude-code", "title": "Subagent: read the schema", "projectPath": API,
         "parentExternalId": "parent", "cost": 1.0, "promptTokens": 10_000, "createdAt": now - 2 * 3_600_000 + 1},
        {"externalId": "parent-b", "source": "claude-code", "title": "Subagent: write the tests", "projectPath": API,
         "parentExternalId": "parent", "cost": 0.5, "promptTokens": 5_000, "createdAt": now - 2 * 3_600_000 + 2},
        {"externalId": "parent-a-1", "source": "claude-code", "title": "Subagent: check one table", "projectPath": API,
         "parentExternalId": "parent-a", "cost": 0.25, "promptTokens": 2_500, "createdAt": now - 2 * 3_600_000 + 3},
        # claude-code-sync 0.1.15's synctest, as captured on the wire.
        {"externalId": f"test-{now}", "source": "claude-code", "title": "Connection Test", "projectName": "synctest",
         "durationMs": 21},
    ]
    post(server, key, "/sync/batch", {"sessions": sessions})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(str(tmp_path_factory.mktemp("projects") / "projects.db"))
    server.key = server.create_key()
    seed(server, server.key)
    yield server
    server.stop()


def test_one_project_per_folder_on_the_overview_and_in_the_list(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/?range=30d")
    top = page.locator("#top-projects + ol li a")
    expect(top).to_have_count(2)
    expect(top.nth(0)).to_have_text("api")
    expect(top.nth(0)).to_have_attribute("title", API)
    expect(top.nth(1)).to_have_text("web")
    expect(page.locator("section.panel:has(#top-projects)")).not_to_contain_text("synctest")
    expect(page.locator(".card:has(.label:text-is('Projects')) .value")).to_have_text("2")
    expect(page.locator(".card:has(.label:text-is('Sessions')) .value")).to_have_text("22")  # not the test
    top.nth(0).click()
    expect(page).to_have_url(re.compile(r"/sessions\?project="))
    expect(page.locator(".filters select[name=project] option:checked")).to_have_text(re.compile(r"^api \(\d+\)$"))
    cells = page.locator("table.sessions td.project")
    expect(cells).to_have_count(15)  # 14 from the history and the parent (its subagents folded)
    for text in cells.all_inner_texts():
        assert text.strip() == "api"
    context.close()


def test_the_connection_test_is_marked_and_the_parent_shows_its_subagents(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions")
    row = page.locator("tr[data-row]:has(a.row-link:text-is('Connection Test'))")
    expect(row.locator(".test-badge")).to_have_text("test")
    expect(row.locator(".running")).to_have_count(0)  # it never ends, and is never at work
    expect(page.locator(".test-badge")).to_have_count(1)
    parent = page.locator("tr[data-row]:has(a.row-link:text-is('Plan the billing rewrite'))")
    expect(parent.locator("td.cost")).to_contain_text("$3.00")
    expect(parent.locator("td.cost .with-subagents")).to_have_text(re.compile(r"^; \$4\.75 with subagents$"))
    expect(parent.locator("td.tokens .with-subagents")).to_have_text(re.compile(r"^; 47\.5k with subagents$"))
    expect(parent.locator("td.cost .with-subagents")).to_be_visible()
    shoot(page, "dash2-sessions-light")
    context.close()
    # On a phone the card keeps the total with the subagents beside the cost.
    context, page = new_page(browser, signed_in_state, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(server.url + "/sessions")
    parent = page.locator("tr[data-row]:has(a.row-link:text-is('Plan the billing rewrite'))")
    expect(parent.locator("td.cost .with-subagents")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


@pytest.mark.parametrize("scripts", [True, False])
def test_the_chart_turns_cumulative_by_a_link(server, browser, signed_in_state, scripts):  # noqa: F811
    context, page = new_page(browser, signed_in_state, java_script_enabled=scripts)
    page.goto(server.url + "/?range=30d&metric=cost")
    expect(page.locator("#per-bucket")).to_contain_text("Cost per day by source")
    per_bucket = [float(t.split("$", 1)[1].split(",", 1)[0]) for t in page.locator(".plot a.bar .visually-hidden").all_inner_texts()]
    page.get_by_role("navigation", name="Chart view").get_by_role("link", name="Cumulative").click()
    expect(page).to_have_url(re.compile(r"view=cumulative"))
    expect(page.locator("#per-bucket")).to_contain_text("Cost so far, by day and source")
    expect(page.get_by_role("navigation", name="Chart view").get_by_role("link", name="Cumulative")).to_have_attribute(
        "aria-current", "true")
    totals = [float(t.split("$", 1)[1].split(",", 1)[0]) for t in page.locator(".plot a.bar .visually-hidden").all_inner_texts()]
    assert totals == sorted(totals) and totals[-1] == pytest.approx(sum(per_bucket), abs=0.02)
    heights = page.eval_on_selector_all(".plot a.bar .stack", "els => els.map(e => e.getBoundingClientRect().height)")
    assert heights == sorted(heights)  # columns only grow
    if scripts:
        shoot(page, "dash2-overview-cumulative-light")
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_clean_and_fits_a_phone(server, browser, signed_in_state, scheme):  # noqa: F811
    pages = {"overview": "/?range=30d", "overview-cumulative": "/?range=30d&view=cumulative&stack=project",
             "sessions": "/sessions", "sessions-project": "/sessions?project=api&subagents=show"}
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    for name, path in pages.items():
        page.goto(server.url + path)
        assert axe_serious(page) == [], (name, scheme)
        shoot(page, f"dash2-{name}-{scheme}")
    context.close()
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, viewport={"width": 390, "height": 844},
                             is_mobile=True, bypass_csp=True)
    for name, path in pages.items():
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, (name, scheme)
        assert axe_serious(page) == [], (name, scheme, "phone")
        shoot(page, f"dash2-{name}-{scheme}-390")
    context.close()
