"""The session reader in Chromium against a live `serve`, on a Claude Code history imported by
`opensync-lite import claude-code` (tests/reader_history.py) and a plugin-shaped session: turns,
one-line tool calls that unfold, diffs, failed results, Markdown, the outline, prompts only,
expand all, the compaction divider, the Task call's subagent link, the copy buttons, the git
branch, curation in view; axe-core in light and dark, 390 px, and the page without JavaScript."""

import re
import subprocess
import time

import pytest

import reader_history as history
from conftest import CLI, LiveServer
from test_dashboard_browser import axe_serious, browser, new_page, post, shoot, signed_in_state  # noqa: F401 (fixtures)

from playwright.sync_api import expect  # noqa: E402  (test_dashboard_browser skips first when it is missing)

PATCH = "*** Begin Patch\n*** Update File: src/app.ts\n@@ import\n-import { pay } from './pay';\n+import { charge } from './pay';\n*** End Patch"
LONG_TURNS = 125  # prompts, each with a call, its result and an answer: 500 messages


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("reader-home")
    db = str(home / "reader.db")
    root = history.write_reader_history(home, long_turns=LONG_TURNS)
    subprocess.run(CLI + ["import", "claude-code", str(root), "--db", db], check=True, capture_output=True, timeout=120)
    server = LiveServer(db)
    server.key = server.create_key()
    # A plugin-shaped session (claude-code-sync's {toolName, args} and a result naming no call).
    plugin_session(server, "plugin-1", "claude-code", "Plugin shaped", [
        ("p1", "user", "Is the tree clean?", 1_760_000_000_000, None),
        ("p2", "assistant", "", 1_760_000_001_000, [
            {"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": "git status"}}},
            {"type": "tool-result", "content": "On branch main\nnothing to commit, working tree clean"}]),
        ("p3", "assistant", "Yes, it is clean.", 1_760_000_002_000, None)])
    # A MultiEdit (Claude Code) and an apply_patch (Codex), as the plugins send them.
    plugin_session(server, "edits-1", "codex-cli", "Edits shaped", [
        ("e1", "user", "Rename pay to charge", 1_760_000_010_000, None),
        ("e2", "assistant", "", 1_760_000_011_000, [
            {"type": "tool-call", "content": {"toolName": "MultiEdit", "args": {
                "file_path": "/home/dev/shop/src/pay.ts", "edits": [
                    {"old_string": "function pay()", "new_string": "function charge()"},
                    {"old_string": "pay();", "new_string": "charge();"}]}}},
            {"type": "tool-result", "content": "Applied 2 edits"},
            {"type": "tool-call", "content": {"toolName": "apply_patch", "args": {"input": PATCH}}},
            {"type": "tool-result", "content": "Success. Updated the following files:\nM src/app.ts"}]),
        ("e3", "assistant", "Renamed.", 1_760_000_012_000, None)])
    yield server
    server.stop()


def plugin_session(server, external_id, source, title, messages):
    """Post a session in /home/dev/shop as a plugin does, its ``messages`` given as (id, role,
    text, createdAt, parts or None)."""
    post(server, server.key, "/sync/batch", {
        "sessions": [{"externalId": external_id, "source": source, "title": title, "projectPath": "/home/dev/shop"}],
        "messages": [{"sessionExternalId": external_id, "externalId": m, "role": role, "textContent": text,
                      "createdAt": at, **({"parts": parts} if parts is not None else {})}
                     for m, role, text, at, parts in messages]})


def session_url(server, page, title):
    """The session page's path, found as a user would: by its title in the list."""
    page.goto(server.url + "/sessions")
    return page.get_by_role("link", name=title, exact=True).get_attribute("href")


@pytest.fixture(scope="module")
def main_path(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    href = session_url(server, page, " ".join(history.FIRST_PROMPT.split()))
    context.close()
    return href


def summaries(page):
    return [" ".join(t.split()) for t in page.locator(".tool-row > details > summary").all_inner_texts()]


def test_one_card_per_turn_with_calls_as_one_line_summaries(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + main_path)
    turns = page.locator("article.turn")
    expect(turns).to_have_count(2)  # the compaction's summary is no prompt
    expect(turns.nth(0).locator(".prompt .text")).to_have_text(history.FIRST_PROMPT)
    expect(turns.nth(1).locator(".prompt .text")).to_have_text(history.SECOND_PROMPT)
    assert summaries(page) == ["Read · src/lib/stripe.ts", "Edit · src/lib/stripe.ts +3 −1", "Bash · npm test failed",
                               "Task · Review the checkout", "Write · src/webhook.ts +3 −0"]
    expect(turns.nth(0).locator(".steps-head")).to_have_text("4 tool calls 1 failed")
    # Folded: one line each; unfolded, the output with its real line breaks.
    read = turns.nth(0).locator(".tool-row details").nth(0)
    output = read.locator("pre.output")
    expect(output).to_be_hidden()
    assert read.locator("summary").bounding_box()["height"] < 40
    read.locator("summary").click()
    expect(output).to_be_visible()
    assert output.inner_text() == history.READ_OUTPUT.rstrip("\n") or output.inner_text() == history.READ_OUTPUT
    assert "\\n" not in output.inner_text() and output.bounding_box()["height"] > 30  # two lines, not one
    # The Edit as a diff: the removed line, then the added ones.
    edit = turns.nth(0).locator(".tool-row details").nth(1)
    edit.locator("summary").click()
    expect(edit.locator(".d-del")).to_have_text(["-export function pay() {}"])
    expect(edit.locator(".d-add")).to_have_text(["+export function pay(amount) {", "+  return stripe.charge(amount);", "+}"])
    assert edit.locator(".d-add").first.evaluate("e => getComputedStyle(e).backgroundColor") != \
        edit.locator(".d-del").first.evaluate("e => getComputedStyle(e).backgroundColor")
    # The failed command is marked as failed, folded or not.
    bash = turns.nth(0).locator(".tool-row details").nth(2)
    expect(bash).to_have_class(re.compile(r"\bfailed\b"))
    expect(bash.locator("summary .error-mark")).to_be_visible()
    bash.locator("summary").click()
    expect(bash.locator(".tool-output .output-head")).to_have_text("Error")
    expect(bash.locator("pre.output")).to_have_text(history.FAILED_OUTPUT)
    # The thinking stays folded; the answer is its own part of the card.
    expect(turns.nth(0).locator("details.thinking .text")).to_be_hidden()
    expect(turns.nth(0).locator(".answer .turn-head .who")).to_have_text("Answer")
    shoot(page, "reader-light")
    context.close()


def test_markdown_is_rendered_and_sanitised(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url + main_path)
    answer = page.locator(".turn").first.locator(".answer .md")
    expect(answer.locator("h2")).to_have_text("Done")
    expect(answer.locator("li strong")).to_have_text("Checkout")
    expect(answer.locator("code").first).to_have_text("src/lib/stripe.ts")
    expect(answer.locator("table td").first).to_have_text("stripe.ts")
    expect(answer.locator("script, img")).to_have_count(0)
    expect(answer).to_contain_text("<script>window.pwned = 1</script>")  # shown as the text it is
    link = answer.get_by_role("link", name="docs")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(answer.get_by_role("link", name="bad")).to_have_count(0)  # javascript: is no link
    assert page.evaluate("typeof window.pwned") == "undefined" and errors == []
    context.close()


def test_compaction_is_a_divider_between_the_turns(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + main_path)
    divider = page.locator(".turns > .compaction")
    expect(divider).to_have_count(1)
    expect(divider.locator("summary")).to_contain_text("Conversation compacted")
    expect(divider.locator(".text")).to_be_hidden()
    divider.locator("summary").click()
    expect(divider.locator(".text")).to_have_text(history.COMPACT_SUMMARY)
    # It sits between the first turn and the second, and is not counted as a prompt.
    order = page.locator(".turns > *").evaluate_all("nodes => nodes.map(n => n.className)")
    assert order == ["turn", "compaction", "turn"]
    expect(page.locator(".outline li")).to_have_count(2)
    context.close()


def test_the_task_call_links_to_its_subagent_session(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + main_path)
    link = page.locator(".tool-row .subagent-link")
    expect(link).to_have_count(1)
    expect(link).to_contain_text(history.SUBAGENT_PROMPT)
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(history.SUBAGENT_PROMPT)
    expect(page.locator(".facts")).to_contain_text("Run by")
    expect(page.locator(".answer .md")).to_have_text("No bugs found.")
    expect(page.locator(".resume")).to_have_count(0)  # a subagent cannot be resumed by its own id
    context.close()


def test_outline_jumps_prompts_only_and_expand_all(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state, viewport={"width": 1440, "height": 900})
    page.goto(server.url + session_url(server, page, "Step 0: tidy module 0"))
    expect(page.locator("article.turn")).to_have_count(LONG_TURNS)
    entries = page.locator(".outline li a")
    expect(entries).to_have_count(LONG_TURNS)
    entries.nth(70).click()
    expect(page).to_have_url(re.compile(r"#turn-71$"))
    target = page.locator("#turn-71")
    expect(target.locator(".prompt .text")).to_have_text("Step 70: tidy module 70")
    expect(target).to_be_in_viewport()
    # On a wide screen the outline stays in view beside the turns: the next jump is one click away.
    expect(page.locator(".outline")).to_be_in_viewport()
    assert page.locator(".outline").bounding_box()["x"] + 100 < target.bounding_box()["x"]
    entries.nth(110).click()
    expect(page.locator("#turn-111")).to_be_in_viewport()
    # Prompts only: the steps and answers go, the prompts stay.
    page.get_by_text("Prompts only").click()
    expect(page.locator(".steps").first).to_be_hidden()
    expect(page.locator(".answer").first).to_be_hidden()
    expect(page.locator(".prompt").first).to_be_visible()
    height = page.evaluate("document.documentElement.scrollHeight")
    shoot(page, "reader-prompts-only-light")
    page.get_by_text("Prompts only").click()
    expect(page.locator(".steps").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollHeight") > height * 1.5
    # Expand all opens every call; pressed again, folds them.
    outputs = page.locator(".tool-row pre.output")
    expect(outputs.first).to_be_hidden()
    page.get_by_role("button", name="Expand all").click()
    expect(outputs.nth(LONG_TURNS - 1)).to_be_visible()
    expect(outputs.first).to_have_text("0 passed\nok")
    page.get_by_role("button", name="Collapse all").click()
    expect(outputs.first).to_be_hidden()
    page.goto(page.url.split("#")[0])
    shoot(page, "reader-long-light")
    context.close()


def test_a_link_to_a_tool_result_opens_its_call(server, browser, signed_in_state, main_path):
    """Search links to #m<message id>; a tool result's message sits inside its folded call."""
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + main_path)
    result_anchor = page.locator(".tool-row > span[id]").nth(2).get_attribute("id")  # the failed Bash call's result
    page.get_by_text("Prompts only").click()
    page.goto(server.url + main_path + "#" + result_anchor)
    bash = page.locator(".tool-row", has=page.locator(f"#{result_anchor}")).locator("details")
    expect(bash).to_have_attribute("open", "")
    expect(bash.locator("pre.output")).to_be_in_viewport()
    context.close()


def test_copy_the_resume_command_and_a_prompt(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state, permissions=["clipboard-read", "clipboard-write"])
    page.goto(server.url + main_path)
    expect(page.locator(".resume code")).to_have_text(f"cd {history.PROJECT} && claude --resume {history.SESSION}")
    page.locator(".resume").get_by_role("button", name="Copy").click()
    expect(page.locator(".resume button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"cd {history.PROJECT} && claude --resume {history.SESSION}"
    page.locator("#turn-1").get_by_role("button", name="Copy prompt").click()
    assert page.evaluate("navigator.clipboard.readText()") == history.FIRST_PROMPT
    # The branch and the curation controls are in view without unfolding anything.
    expect(page.locator(".facts div", has_text="Git branch").locator("dd")).to_have_text(history.BRANCH)
    for label in ("Starred", "Eval status", "Tags, separated by commas", "Note"):
        expect(page.get_by_label(label)).to_be_visible()
    context.close()


def test_plugin_shaped_calls_read_the_same(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + session_url(server, page, "Plugin shaped"))
    assert summaries(page) == ["Bash · git status"]
    expect(page.locator(".facts div", has_text="Messages").locator("dd")).to_have_text("3 · 1 tool call")  # not "1 tool calls"
    page.locator(".tool-row summary").click()
    expect(page.locator(".tool-row pre.output")).to_have_text("On branch main\nnothing to commit, working tree clean")
    expect(page.locator(".answer .md")).to_have_text("Yes, it is clean.")
    context.close()


def test_multiedit_and_apply_patch_read_as_diffs(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + session_url(server, page, "Edits shaped"))
    assert summaries(page) == ["MultiEdit · src/pay.ts +2 −2", "apply_patch · src/app.ts +1 −1"]
    multi, patch = page.locator(".tool-row details").nth(0), page.locator(".tool-row details").nth(1)
    expect(multi.locator("pre.diff")).to_be_hidden()  # folded to its line until opened
    multi.locator("summary").click()
    expect(multi.locator(".d-del")).to_have_text(["-function pay()", "-pay();"])
    expect(multi.locator(".d-add")).to_have_text(["+function charge()", "+charge();"])
    patch.locator("summary").click()
    expect(patch.locator(".d-file")).to_contain_text(["*** Update File: src/app.ts"])
    expect(patch.locator(".d-del")).to_have_text(["-import { pay } from './pay';"])
    expect(patch.locator(".d-add")).to_have_text(["+import { charge } from './pay';"])
    assert patch.locator(".d-add").evaluate("e => getComputedStyle(e).backgroundColor") != \
        patch.locator(".d-del").evaluate("e => getComputedStyle(e).backgroundColor")
    expect(patch.locator(".tool-output pre.output")).to_have_text("Success. Updated the following files:\nM src/app.ts")
    shoot(page, "reader-edits-light")
    context.close()


def test_without_javascript_the_reader_still_reads(server, browser, signed_in_state, main_path):
    context, page = new_page(browser, signed_in_state, java_script_enabled=False)
    page.goto(server.url + main_path)
    expect(page.get_by_role("button", name="Expand all")).to_have_count(0)  # present but hidden
    expect(page.locator("button.copy:visible")).to_have_count(0)
    page.locator(".tool-row summary").first.click()
    expect(page.locator(".tool-row pre.output").first).to_be_visible()
    page.get_by_text("Prompts only").click()  # a checkbox and CSS: no script needed
    expect(page.locator(".steps").first).to_be_hidden()
    expect(page.locator(".prompt").first).to_be_visible()
    context.close()
    context, page = new_page(browser, signed_in_state, color_scheme="dark")
    page.goto(server.url + main_path)
    shoot(page, "reader-dark")
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_and_phone_width(server, browser, signed_in_state, main_path, scheme):
    for phone in (False, True):
        options = {"viewport": {"width": 390, "height": 844}, "is_mobile": True} if phone else {}
        context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True, **options)
        page.goto(server.url + main_path)
        for summary in page.locator(".tool-row summary").all():  # open, so axe sees diffs and outputs too
            summary.click()
        page.locator(".compaction summary").click()
        if phone:
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
        serious = axe_serious(page)
        assert serious == [], (scheme, phone, serious)
        shoot(page, f"reader-open-{scheme}{'-phone' if phone else ''}")
        context.close()


def test_a_500_message_session_page_stays_fast(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    path = session_url(server, page, "Step 0: tidy module 0")
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = page.request.get(server.url + path)
        timings.append(time.perf_counter() - started)
        assert response.ok and response.text().count('<article class="turn"') == LONG_TURNS
        assert "(500 messages, 125 prompts)" in response.text()
    # Generous for a shared, loaded test machine; the measured figures are in the commit.
    assert min(timings) < 1.0, timings
    context.close()
