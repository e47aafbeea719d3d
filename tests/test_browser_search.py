"""Search and Files in Chromium against a live `serve`, over a real-shaped Claude Code history
brought in by the importer: what a tool printed, what the model thought and an Edit's new text
are found; the "In" choice narrows; each result shows its date, project, model and source and
opens its message; "More results" pages on; a file name finds its file, grouped by project,
with an open-in-editor link. axe-core in light and dark, nothing wider than 390 px."""

import json
import random
import re
import subprocess
import urllib.request
from datetime import timedelta

import pytest

from claude_history import MODELS, START, Writer, make_history, write
from conftest import CLI, LiveServer
from test_dashboard_browser import axe_serious, browser, new_page, shoot, signed_in_state, signin_link  # noqa: F401  (skips without Chromium; fixtures)

from playwright.sync_api import expect  # noqa: E402  (after the skip above)

FAILING_RUN = "".join(f"tests/test_tok.py::test_case_{i} PASSED\n" for i in range(400)) + (
    "FAILED tests/test_tok.py::test_budget - AssertionError: expected 10 tokens, got 9\n")


def billing_session(home):
    """A session in the billing project: a prompt, thinking, a failing pytest run, an Edit of
    src/lib/stripe.ts and git's answer."""
    w = Writer(random.Random(5))
    cwd, session, t = "/home/dev/billing", "billing-oom", START + timedelta(days=30)
    lines = w.user(session, t, "The retraining job OOMs after the Stripe webhook change", cwd)
    lines += w.response(session, t, cwd, MODELS[1], [
        {"type": "thinking", "thinking": "Likely the batch sampler keeps every shard resident in memory."},
        {"type": "tool_use", "id": "toolu_run", "name": "Bash", "input": {"command": "pytest -x tests/test_tok.py"}}])
    lines += w.user(session, t, [{"type": "tool_result", "tool_use_id": "toolu_run", "content": FAILING_RUN,
                                  "is_error": True}], cwd)
    lines += w.response(session, t + timedelta(minutes=1), cwd, MODELS[1], [
        {"type": "tool_use", "id": "toolu_edit", "name": "Edit", "input": {
            "file_path": f"{cwd}/src/lib/stripe.ts", "old_string": "return charge", "new_string": "return idempotentCharge(charge)"}}])
    lines += w.user(session, t + timedelta(minutes=1), [{"type": "tool_result", "tool_use_id": "toolu_edit",
                                                         "content": "The file has been updated."}], cwd)
    lines += w.response(session, t + timedelta(minutes=2), cwd, MODELS[1], [
        {"type": "tool_use", "id": "toolu_git", "name": "Bash", "input": {"command": "git status"}}])
    lines += w.user(session, t + timedelta(minutes=2), [{"type": "tool_result", "tool_use_id": "toolu_git",
                                                         "content": "nothing to commit, working tree clean"}], cwd)
    lines += w.response(session, t + timedelta(minutes=3), cwd, MODELS[1], [{"type": "text", "text": "Fixed the OOM."}])
    write(home / ".claude" / "projects" / "-home-dev-billing" / f"{session}.jsonl", lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    history = make_history(home)
    billing_session(home)
    db_path = str(tmp_path_factory.mktemp("search") / "search.db")
    subprocess.run([*CLI, "import", "claude-code", str(history["root"]), "--db", db_path], check=True,
                   capture_output=True, text=True, timeout=120)
    server = LiveServer(db_path)
    server.key = server.create_key()
    yield server
    server.stop()


def search(page, server, words, where=None):
    page.goto(server.url + "/search")
    page.get_by_role("searchbox", name="Words").fill(words)
    if where:
        page.locator("select[name=where]").select_option(label=where)
    page.get_by_role("button", name="Search").click()
    return page.locator("ol.hits > li.hit")


def test_what_a_tool_printed_is_found_and_opens_its_message(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    hits = search(page, server, "expected 10 tokens")
    expect(hits).to_have_count(1)
    hit = hits.first
    expect(hit.locator(".found-in")).to_have_text(["tool"])
    expect(hit.locator("mark")).to_have_text(["expected", "10", "tokens"])
    expect(hit.locator(".hit-meta")).to_contain_text("billing")
    expect(hit.locator(".hit-meta")).to_contain_text(MODELS[1])
    expect(hit.locator(".hit-meta .badge")).to_contain_text("claude-code")
    expect(hit.locator(".hit-meta time")).to_have_attribute("datetime", re.compile(r"^2026-04-01T09:0\d"))
    shoot(page, "search-tool-light")
    hit.locator("a.snippet").click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+#m\d+$"))
    context.close()


def test_thinking_an_edit_and_every_word_as_a_prefix(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    expect(search(page, server, "shard resident").locator(".found-in")).to_have_text(["thinking"])
    expect(search(page, server, "idempotentCharge").locator(".found-in")).to_have_text(["tool"])
    expect(search(page, server, "working tree clean").locator(".found-in")).to_have_text(["tool"])
    oom = search(page, server, "OOM retrain")  # "OOMs" and "retraining"
    expect(oom).to_have_count(1)
    expect(oom.first.locator("mark").first).to_have_text("retraining")
    context.close()


def test_the_in_choice_narrows_and_says_where_else_to_look(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    expect(search(page, server, "sampler", where="Thinking").locator(".found-in")).to_have_text(["thinking"])
    expect(page.locator("select[name=where]")).to_have_value("thinking")
    expect(search(page, server, "sampler", where="Prompts")).to_have_count(0)
    expect(page.locator(".empty")).to_contain_text("in prompts")
    page.get_by_role("link", name="everywhere").click()
    expect(page.locator("ol.hits > li.hit")).to_have_count(1)
    expect(search(page, server, "pytest", where="Tool calls and output").locator(".found-in")).to_have_text(["tool"])
    context.close()


def test_one_result_per_session_newest_first_and_more(server, browser, signed_in_state):
    """"parser" is in the prompt of nine sessions, each once: ranks tie, so the newest come
    first; four a page, "More results" shows the next ones, none twice."""
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/search?q=parser&limit=4")
    seen = []
    while True:
        items = page.locator("ol.hits > li.hit")
        titles = items.locator(".hit-title").all_inner_texts()
        assert 0 < len(titles) <= 4
        seen += titles
        more = page.get_by_role("link", name="More results →")
        if not more.count():
            break
        more.click()
    assert len(seen) == len(set(seen)) == 9, seen
    # The page's order is the API's: best rank first, and among equal ranks the newest first.
    request = urllib.request.Request(server.url + "/api/search?q=parser", headers={"Authorization": f"Bearer {server.key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        results = json.loads(response.read())["results"]
    order = [(r["rank"], -r["updatedAt"]) for r in results]
    assert order == sorted(order) and len({rank for rank, _ in order}) < len(order)  # some ties, broken by time
    page.goto(server.url + "/search?q=parser")
    assert page.locator("ol.hits .hit-title").all_inner_texts() == [r["title"] for r in results]
    shoot(page, "search-grouped-light")
    context.close()


def test_a_file_name_finds_it_grouped_by_project_with_an_editor_link(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/files")
    page.get_by_label("File or folder").fill("stripe.ts")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("table.files tr.group-head")).to_have_count(1)
    expect(page.locator("table.files tr.group-head")).to_contain_text("billing")
    link = page.get_by_role("link", name="open in editor")
    expect(link).to_have_attribute("href", "vscode://file//home/dev/billing/src/lib/stripe.ts")
    expect(page.locator("#sessions-head")).to_contain_text("1 session")
    shoot(page, "files-stripe-light")
    page.goto(server.url + "/files")
    groups = page.locator("table.files tr.group-head")
    assert groups.count() >= 4  # alpha, beta, gamma, billing
    context.close()


PAGES = {"search": "/search?q=OOM+retrain", "search-many": "/search?q=parser&limit=4",
         "search-empty": "/search?q=sampler&where=prompts", "search-help": "/search",
         "files-stripe": "/files?path=stripe.ts", "files-projects": "/files"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation(server, browser, signed_in_state, scheme):
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    for name, path in PAGES.items():
        page.goto(server.url + path)
        serious = axe_serious(page)
        assert serious == [], (name, scheme, serious)
        shoot(page, f"{name}-{scheme}")
    context.close()


def test_nothing_is_wider_than_a_phone(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state, viewport={"width": 390, "height": 844}, is_mobile=True)
    for name, path in PAGES.items():
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (name, width)
        shoot(page, f"{name}-phone")
    context.close()
