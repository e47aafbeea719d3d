"""The overview and the sessions list in Chromium against a live `serve`: the period strip,
range presets, the chart's links and tooltips (mouse, keyboard, touch), chips, the list's
paging, totals, stars, subagents and phone cards, the keyboard keys. Screenshots go to
tests/artifacts/ (overview-*, list-*)."""

import os
import re
import shlex
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from claude_history import make_history
from conftest import LiveServer
from test_dashboard_browser import axe_serious, new_page, post, seed, shoot, signed_in_state, signin_link  # noqa: F401

from playwright.sync_api import expect  # noqa: E402  (test_dashboard_browser skips or fails first)

from test_dashboard_browser import browser  # noqa: F401  (the fixture, shared)

DAY = 86_400_000


def seed_more(server, key):
    """On top of the shared history: a parent with two subagents, one running session (recent
    activity, no end), one session today and one yesterday with known costs."""
    now = int(time.time() * 1000)
    # The shared history's sessions are over: say so, as a plugin does when a session ends.
    post(server, key, "/sync/batch", {"sessions": [{"externalId": f"b{i:02d}", "endReason": "completed"} for i in range(32)]})
    post(server, key, "/sync/batch", {"sessions": [
        {"externalId": "parent-1", "source": "claude-code", "title": "Plan the migration", "projectName": "project-0",
         "model": "claude-opus-4-1-20250805", "cost": 2.5, "promptTokens": 9000, "createdAt": now - 3 * 3_600_000,
         "endReason": "completed"},
        {"externalId": "sub-1", "source": "claude-code", "title": "Subagent: read the schema", "parentExternalId": "parent-1",
         "model": "claude-sonnet-4-20250514", "cost": 0.4, "promptTokens": 3000, "createdAt": now - 3 * 3_600_000 + 60_000},
        {"externalId": "sub-2", "source": "claude-code", "title": "Subagent: write the tests", "parentExternalId": "parent-1",
         "model": "claude-sonnet-4-20250514", "cost": 0.6, "promptTokens": 4000, "createdAt": now - 3 * 3_600_000 + 120_000},
        {"externalId": "running-1", "source": "opencode", "title": "Still at work", "projectName": "project-1",
         "model": "gpt-5", "cost": 0.2, "promptTokens": 500, "createdAt": now - 120_000},
    ], "messages": [{"sessionExternalId": "running-1", "externalId": "run-m", "role": "user", "textContent": "go on",
                     "createdAt": now - 60_000}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(str(tmp_path_factory.mktemp("overview") / "overview.db"))
    server.key = server.create_key()
    seed(server, server.key)
    seed_more(server, server.key)
    yield server
    server.stop()


def test_overview_strip_presets_and_chips(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/")
    strip = page.locator(".periods .period")
    expect(strip).to_have_count(3)
    expect(strip.nth(0)).to_contain_text("Today")
    expect(strip.nth(1)).to_contain_text("This week")
    expect(strip.nth(2)).to_contain_text("This month")
    expect(strip.nth(0)).to_contain_text("vs yesterday")
    # Recent sessions fold subagents under their parent, as the list does.
    recent = page.locator("ul.recent")
    expect(recent.get_by_role("link", name="Plan the migration")).to_be_visible()
    expect(recent.get_by_role("link", name=re.compile(r"^Subagent: "))).to_have_count(0)
    expect(page.locator(".range-title")).to_contain_text("Last 30 days")
    page.get_by_role("navigation", name="Range").get_by_role("link", name="7 d").click()
    expect(page).to_have_url(re.compile(r"range=7d"))
    expect(page.locator(".range-title")).to_contain_text("Last 7 days")
    for card in page.locator(".cards .card").all():
        expect(card.locator(".meta")).to_contain_text("last 7 days")
    expect(page.locator("#per-bucket")).to_contain_text("per day by source · last 7 days")
    expect(page.locator(".plot .col")).to_have_count(7)
    # The overview's own model filter, shown as a chip that takes it off again.
    page.locator(".filters select[name=model]").select_option("gpt-5")
    expect(page).to_have_url(re.compile(r"model=gpt-5"))
    chip = page.get_by_role("link", name="Remove the filter Model: gpt-5")
    expect(chip).to_be_visible()
    for row in page.locator("#top-models + ol li").all():
        expect(row).to_contain_text("gpt-5")
    shoot(page, "overview-filtered-light")
    chip.click()
    expect(page).not_to_have_url(re.compile(r"model="))
    expect(page).to_have_url(re.compile(r"range=7d"))  # only that filter went
    context.close()


def test_chart_bars_link_to_their_sessions_and_tooltips_work_by_keyboard_and_touch(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/?metric=cost")
    bars = page.locator(".plot a.bar")
    last = bars.last
    tip = page.locator(".plot .col:has(a.bar)").last.locator(".tip")
    expect(tip).to_be_hidden()
    last.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")  # keyboard focus (focus-visible), as a keyboard user gets there
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Open these sessions")
    today = datetime.now(timezone.utc).date().isoformat()
    expect(tip).to_contain_text(today)
    said = re.search(r"(\d+) sessions?", tip.inner_text()).group(1)
    page.keyboard.press("Escape")
    expect(tip).to_be_hidden()
    shoot(page, "overview-chart-light")
    page.keyboard.press("Enter")
    # the sessions the bar counted: that day, connection tests left out as on the chart
    expect(page).to_have_url(re.compile(rf"/sessions\?tests=false&from={today}&to={today}"))
    expect(page.locator(".list-totals")).to_contain_text(f"{said} session")
    context.close()
    # Touch: the first tap shows the tooltip, the second opens the sessions.
    context, page = new_page(browser, signed_in_state, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(server.url + "/")
    bar = page.locator(".plot a.bar").last
    bar.tap()
    tip = page.locator(".col.show-tip .tip")
    expect(tip).to_be_visible()
    assert "/sessions" not in page.url
    box = tip.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shoot(page, "overview-tooltip-phone")
    bar.tap()
    expect(page).to_have_url(re.compile(r"/sessions\?tests=false&from="))
    context.close()


def test_bucket_and_stack_choices(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/?range=90d")
    page.get_by_role("navigation", name="Chart buckets").get_by_role("link", name="Week").click()
    expect(page.locator("#per-bucket")).to_contain_text("per week by source · last 90 days")
    count = page.locator(".plot .col").count()
    assert 13 <= count <= 14
    page.get_by_role("navigation", name="Stack the chart by").get_by_role("link", name="Model").click()
    expect(page.locator(".legend .key")).to_contain_text(["claude-sonnet-4"])
    expect(page.locator("#per-bucket")).to_contain_text("per week by model")
    shoot(page, "overview-weeks-by-model-light")
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_overview_is_axe_clean_and_fits_a_phone(server, browser, signed_in_state, scheme):  # noqa: F811
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    for name, path in {"overview": "/", "overview-all": "/?range=all&stack=project&metric=cost"}.items():
        page.goto(server.url + path)
        assert axe_serious(page) == [], (name, scheme)
        shoot(page, f"{name}-{scheme}")
    context.close()
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, viewport={"width": 390, "height": 844},
                             is_mobile=True)
    page.goto(server.url + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The strip keeps its tokens and sessions on a phone, each with its change.
    for period in page.locator(".periods .period").all():
        more = period.locator(".period-more")
        expect(more).to_have_count(2)
        expect(more.nth(0)).to_contain_text(" tokens")
        expect(more.nth(1)).to_contain_text(re.compile(r"\d+ sessions?\b"))
        for line in more.all():
            expect(line).to_be_visible()
            expect(line.locator(".delta")).to_be_visible()
        box = period.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] < 200, box
    shoot(page, f"overview-phone-{scheme}")
    context.close()


def test_an_empty_server_gives_an_import_command_that_works(browser, tmp_path):  # noqa: F811
    """The command on the empty overview, run as printed from the server's folder, fills it."""
    empty = LiveServer(str(tmp_path / "empty.db"))
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(signin_link(empty))
        expect(page.get_by_role("heading", name="No sessions yet")).to_be_visible()
        command = page.locator("#import-command").inner_text()
        assert " import claude-code" in command
        shoot(page, "overview-empty-light")
        home = tmp_path / "home"
        make_history(home)
        env = {**os.environ, "HOME": str(home)}
        env.pop("CLAUDE_CONFIG_DIR", None)
        done = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        page.reload()
        expect(page.locator(".periods")).to_be_visible()
        page.goto(empty.url + "/?range=all")
        assert int(page.locator(".cards .card .value").first.inner_text()) > 0
        context.close()
    finally:
        empty.stop()


def test_list_pages_totals_subagents_running_and_stars(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state, java_script_enabled=False)
    page.goto(server.url + "/sessions")
    expect(page.locator(".list-totals")).to_contain_text("36 sessions (2 subagents among them)")  # the shared 32 and ours 4
    place = page.locator(".pager-place")
    total = int(re.search(r"of (\d+)", place.inner_text()).group(1))
    assert total == 34  # the subagents folded away
    expect(place).to_have_text(f"1–34 of 34")
    page.locator(".filters select[name=limit]").select_option("25")
    page.get_by_role("button", name="Apply").click()
    expect(place).to_have_text(f"1–25 of {total}")
    page.get_by_role("link", name="Last »").click()
    expect(place).to_have_text(f"26–{total} of {total}")
    page.get_by_role("link", name="« First").click()
    expect(place).to_have_text(f"1–25 of {total}")
    # Subagents are folded under their parent; the parent links to them.
    page.goto(server.url + "/sessions?sortBy=createdAt")
    expect(page.get_by_role("link", name="Subagent: read the schema")).to_have_count(0)
    parent = page.locator("tr", has=page.get_by_role("link", name="Plan the migration"))
    parent.get_by_role("link", name="↳ 2 subagents").click()
    expect(page.locator("a.row-link")).to_have_text(["Subagent: write the tests", "Subagent: read the schema"])
    page.goto(server.url + "/sessions")
    page.get_by_role("link", name="Show subagents in the list").click()
    expect(page.get_by_role("link", name="Subagent: read the schema")).to_be_visible()
    # Running, and Started, and a short model name with the full id on hover.
    page.goto(server.url + "/sessions?sortBy=createdAt")
    running = page.locator("tr", has=page.get_by_role("link", name="Still at work"))
    expect(running.locator(".running")).to_have_text("running")
    expect(page.locator("tr", has=page.get_by_role("link", name="Plan the migration")).locator(".running")).to_have_count(0)
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Started")
    expect(parent.locator("td.model")).to_have_text("opus-4-1")
    expect(parent.locator("td.model")).to_have_attribute("title", "claude-opus-4-1-20250805")
    # A star per row, without scripts: a form post that comes back to the same list.
    star = parent.get_by_role("button", name="Star Plan the migration")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(page).to_have_url(re.compile(r"/sessions\?sortBy=createdAt$"))
    expect(parent.get_by_role("button", name="Star Plan the migration")).to_have_attribute("aria-pressed", "true")
    # Rows are dense: a model id never wraps, and a row is one line high.
    heights = page.locator("table.sessions tbody tr").evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 48, heights
    shoot(page, "list-light")
    context.close()


def test_list_on_a_phone_is_cards_with_the_filters_behind_a_button(server, browser, signed_in_state):  # noqa: F811
    for scheme in ("light", "dark"):
        context, page = new_page(browser, signed_in_state, color_scheme=scheme, viewport={"width": 390, "height": 844},
                                 is_mobile=True, has_touch=True)
        page.goto(server.url + "/sessions")
        form = page.locator("#list-filters")
        expect(form).to_be_hidden()
        first = page.locator("table.sessions tbody tr").first
        box = first.bounding_box()
        assert box["y"] + box["height"] < 844, box  # the first row is on the first screen
        for cell in ("td.title", "td.source", "td.cost", "td.started"):
            expect(first.locator(cell)).to_be_visible()
        expect(first.locator("td.project")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shoot(page, f"list-phone-{scheme}")
        if scheme == "dark":  # the overview's Custom range opens its folded form at the dates
            page.goto(server.url + "/")
            expect(page.locator("#overview-filters")).to_be_hidden()
            page.get_by_role("navigation", name="Range").get_by_role("link", name="Custom").click()
            expect(page.locator("#overview-filters input[name=from]")).to_be_focused()
            page.goto(server.url + "/sessions")
        page.get_by_role("button", name="Filters").click()
        expect(form).to_be_visible()
        expect(page.get_by_role("button", name="Filters")).to_have_attribute("aria-expanded", "true")
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_list_is_axe_clean(server, browser, signed_in_state, scheme):  # noqa: F811
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    page.goto(server.url + "/sessions")
    assert axe_serious(page) == []
    shoot(page, f"list-{scheme}")
    context.close()


def test_keys_search_rows_and_help_and_no_favicon_404(server, browser, signed_in_state):  # noqa: F811
    context, page = new_page(browser, signed_in_state)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(server.url + "/sessions")
    page.keyboard.press("/")
    expect(page.locator("#list-filters input[name=q]")).to_be_focused()
    page.keyboard.type("j")  # typing in the box is typing, not a key
    expect(page.locator("#list-filters input[name=q]")).to_have_value("j")
    page.locator("h1").click()
    rows = page.locator("table.sessions tbody tr")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\brow-active\b"))
    expect(rows.nth(1).locator("a.row-link")).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\brow-active\b"))
    title = rows.nth(0).locator("a.row-link").inner_text()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard keys")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Next / previous row")
    shoot(page, "keys-light")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    # On a page without a search box, `/` goes to the Search page.
    page.goto(server.url + "/settings")
    page.keyboard.press("/")
    expect(page).to_have_url(re.compile(r"/search$"))
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(icon).ok and page.request.get(server.url + "/favicon.ico").ok
    assert missing == []
    context.close()


def test_sign_in_page_spacing(server, browser):  # noqa: F811
    for scheme, viewport in (("light", {"width": 1280, "height": 720}), ("dark", {"width": 390, "height": 844})):
        context = browser.new_context(color_scheme=scheme, viewport=viewport)
        page = context.new_page()
        page.goto(server.url + "/signin")
        button = page.get_by_role("button", name="Sign in").bounding_box()
        field = page.get_by_label("API key").bounding_box()
        hint = page.locator(".signin .hint").bounding_box()
        assert field["y"] + field["height"] < button["y"] and button["y"] + button["height"] < hint["y"]
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        shoot(page, f"signin-{scheme}")
        context.close()


def test_the_list_fits_a_laptop_screen_with_long_titles_cut(server, browser, signed_in_state):  # noqa: F811
    """Every column in view at 1280 and 1024 px, no sideways scroll: a long title ends in an
    ellipsis (whole on hover) and the parent's badges stay whole beside theirs. Runs last: its
    long-titled session would change the counts above."""
    long_title = "Refactor the billing service so that every webhook retry is idempotent " * 3
    post(server, server.key, "/sync/session", {"externalId": "long-title", "source": "cursor", "title": long_title.strip(),
                                               "projectName": "project-2", "model": "gpt-5", "endReason": "completed"})
    for width in (1280, 1024):
        context, page = new_page(browser, signed_in_state, viewport={"width": width, "height": 800})
        page.goto(server.url + "/sessions?sortBy=createdAt")
        wrap = page.locator(".table-wrap")
        assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), (width, wrap.evaluate("e => [e.scrollWidth, e.clientWidth]"))
        last = "td.updated" if width > 1180 else "td.started"  # narrower, the duration and update go
        expect(page.locator("table.sessions tbody tr").first.locator("td.updated")).to_be_visible(visible=width > 1180)
        for row in page.locator("table.sessions tbody tr").all()[:5]:
            box = row.locator(last).bounding_box()
            assert box["x"] + box["width"] <= width, (width, box)
        link = page.locator("a.row-link", has_text="Refactor the billing")
        assert link.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with an ellipsis
        assert link.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
        expect(link).to_have_attribute("title", f"{long_title.strip()} · long-title")  # the whole title on hover
        parent = page.locator("tr", has=page.get_by_role("link", name="Plan the migration"))
        badge, cell = parent.locator("a.subagents").bounding_box(), parent.locator("td.title").bounding_box()
        assert badge["x"] + badge["width"] <= cell["x"] + cell["width"], (badge, cell)
        shoot(page, f"list-{width}-light")
        context.close()
