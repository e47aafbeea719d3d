"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live
`opensync-lite serve`: sign-in by the printed link, filtering by source with and without
JavaScript, reading a session, live arrival, delete, axe-core, phone width. Screenshots of
every page, light, dark and phone, go to tests/artifacts/."""

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import LiveServer

CHROMIUM = os.environ.get("OPENSYNC_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).parent / "artifacts"
REQUIRED = os.environ.get("OPENSYNC_REQUIRE_BROWSER") == "1"


def _missing():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not AXE.exists():
        return "axe-core is not installed (make install-test)"
    return None


if _missing():
    if REQUIRED:
        raise RuntimeError(f"OPENSYNC_REQUIRE_BROWSER=1 but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

SOURCES = ["claude-code", "opencode", "cursor", None]


def post(server, key, path, body):
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def seed(server, key):
    """Sessions from three sources and source-less ones, over the last days, with messages."""
    now = int(time.time() * 1000)
    sessions = []
    for i in range(32):
        source = SOURCES[i % 4]
        body = {"externalId": f"b{i:02d}", "title": f"Session {i}: {'fix the parser' if i % 3 else 'tidy <b>widgets</b>'}",
                "projectName": f"project-{i % 3}", "projectPath": f"/home/dev/project-{i % 3}",
                "model": ["claude-sonnet-4", "gpt-5", "gemini-2.5-pro"][i % 3], "provider": ["anthropic", "openai", "google"][i % 3],
                "promptTokens": 1000 * (i % 7 + 1) * (i % 4 + 2), "completionTokens": 150 * (i + 1),
                "cost": round(0.05 * (i % 9 + 1), 2),
                "durationMs": 60_000 * (i + 1), "createdAt": now - (i * 5 % 21) * 86_400_000 - 3_600_000}
        if source:
            body["source"] = source
        sessions.append(body)
    messages = []
    for s in sessions:
        messages += [
            {"sessionExternalId": s["externalId"], "externalId": f"{s['externalId']}-u", "role": "user",
             "textContent": "Please fix the tokenizer in src/parse.py", "createdAt": s["createdAt"]},
            {"sessionExternalId": s["externalId"], "externalId": f"{s['externalId']}-a", "role": "assistant",
             "textContent": "Reading the file first.", "createdAt": s["createdAt"] + 5000,
             "parts": [{"type": "text", "content": "Reading the file first."},
                       {"type": "tool-call", "content": {"name": "Read", "input": {"file_path": "src/parse.py"}}},
                       {"type": "tool-result", "content": {"output": "def tokenize(text): ..."}},
                       {"type": "thinking", "content": "The off-by-one is in the loop bound."}]},
            {"sessionExternalId": s["externalId"], "externalId": f"{s['externalId']}-b", "role": "assistant",
             "textContent": "Fixed.\n" + "The loop now stops at len(text). " * 80, "createdAt": s["createdAt"] + 9000},
        ]
    post(server, key, "/sync/batch", {"sessions": sessions, "messages": messages})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(str(tmp_path_factory.mktemp("browser") / "browser.db"))
    key = server.create_key()
    seed(server, key)
    server.key = key
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def signin_link(server):
    for _ in range(50):
        for line in server.banner:
            if "/signin?token=" in line:
                return line.strip()
        time.sleep(0.1)
    raise AssertionError(f"no sign-in link in {server.banner}")


@pytest.fixture(scope="module")
def signed_in_state(server, browser):
    """Sign in once through the link `serve` printed, as a new user would."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(signin_link(server))
    expect(page).to_have_url(server.url + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    state = context.storage_state()
    context.close()
    return state


def axe_serious(page):
    """The serious and critical axe-core violations on the page: (rule, impact, first targets)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def new_page(browser, state, **options):
    context = browser.new_context(storage_state=state, **options)
    return context, context.new_page()


def shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_printed_link_works_once(server, browser, signed_in_state):
    context = browser.new_context()
    page = context.new_page()
    page.goto(signin_link(server))  # the same link again
    expect(page.get_by_role("alert")).to_contain_text("expired or was already used")
    assert "/signin" in page.url
    context.close()


def test_sign_in_with_a_key_and_come_back(server, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/sessions?source=cursor")
    assert "/signin?next=" in page.url
    page.get_by_label("API key").fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/sessions\?source=cursor$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(server.url + "/")
    assert "/signin" in page.url
    context.close()


def test_settings_lists_the_signed_in_browsers_and_signs_one_out(server, browser, signed_in_state):
    firefox = browser.new_context(user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
    elsewhere = firefox.new_page()
    elsewhere.goto(server.url + "/signin")
    elsewhere.get_by_label("API key").fill(server.key)
    elsewhere.get_by_role("button", name="Sign in").click()
    expect(elsewhere.get_by_role("heading", name="Overview")).to_be_visible()
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/settings")
    listed = page.locator("table.signins tbody tr")
    expect(listed.filter(has_text="this browser")).to_have_count(1)
    expect(listed.filter(has_text="one-time link").filter(has_text="this browser")).to_have_count(1)
    expect(listed.filter(has_text="Firefox 128 on Linux")).to_contain_text(server.key[:12])
    shoot(page, "settings-signins-light")
    page.get_by_role("button", name=re.compile(r"^Sign out Firefox 128 on Linux")).click()
    expect(page.get_by_role("status")).to_contain_text("That browser is signed out")
    expect(listed.filter(has_text="Firefox 128 on Linux")).to_have_count(0)
    elsewhere.reload()
    expect(elsewhere.get_by_role("heading", name="Sign in")).to_be_visible()
    firefox.close()
    context.close()


def badges(page):
    return page.locator("table.sessions tbody td:nth-child(2) .badge").all_inner_texts()


def test_source_filter_in_the_dropdown(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions")
    shown = {name for name in ("claude-code", "opencode", "cursor", "unknown") if any(t.endswith(name) for t in badges(page))}
    assert shown == {"claude-code", "opencode", "cursor", "unknown"}
    page.get_by_label("Source").select_option("cursor")  # submits itself
    expect(page).to_have_url(re.compile(r"source=cursor"))
    texts = badges(page)
    assert len(texts) == 8 and all(t.endswith("cursor") for t in texts)
    page.reload()  # the filtered view is a URL that survives reload
    assert len(badges(page)) == 8
    page.get_by_label("Source").select_option("unknown")
    expect(page).to_have_url(re.compile(r"source=unknown"))
    texts = badges(page)
    assert len(texts) == 8 and all(t.endswith("unknown") for t in texts)
    context.close()


def test_source_filter_without_javascript(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state, java_script_enabled=False)
    page.goto(server.url + "/sessions")
    page.get_by_label("Source").select_option("opencode")
    assert "source=" not in page.url  # nothing happens without a submit
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"source=opencode"))
    texts = badges(page)
    assert len(texts) == 8 and all(t.endswith("opencode") for t in texts)
    context.close()


def test_read_a_session_and_expand_a_tool_call(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions?source=claude-code")
    page.locator("table.sessions tbody td.title a").first.click()
    expect(page.locator(".session-head .badge")).to_contain_text("Claude Code")
    tool = page.locator("details.part.tool").first
    expect(tool.locator("summary")).to_have_text("Read · src/parse.py")
    expect(tool.locator("pre").first).to_be_hidden()
    tool.locator("summary").click()
    expect(tool.locator(".tool-args pre")).to_have_text("src/parse.py")
    # The result names no call: it is the output of the call before it, shown inside that call.
    expect(tool.locator(".tool-output pre")).to_have_text("def tokenize(text): ...")
    expect(page.locator("details.part.tool-result")).to_have_count(0)
    expect(page.locator("details.thinking").first.locator(".text")).to_be_hidden()  # folded by default
    fold = page.locator(".answer .fold").first
    assert fold.locator(".fold-body").bounding_box()["height"] < 400
    fold.locator("label").click()
    assert fold.locator(".fold-body").bounding_box()["height"] > 400
    shoot(page, "session-light")
    context.close()


def test_star_grade_and_tag_a_session_then_filter_on_them(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state, bypass_csp=True)
    post(server, server.key, "/sync/session", {"externalId": "keeper", "source": "opencode", "title": "Worth keeping"})
    page.goto(server.url + "/sessions?q=keeping")
    page.get_by_role("link", name="Worth keeping").click()
    expect(page.get_by_label("Eval status")).to_be_visible()  # not folded away
    page.get_by_label("Starred").check()
    page.get_by_label("Eval status").select_option("golden")
    page.get_by_label("Tags, separated by commas").fill("parser, regression")
    page.get_by_label("Note").fill("The fix that finally held.")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".session-head .star")).to_be_visible()
    expect(page.locator(".session-head .tag")).to_have_text(["#parser", "#regression"])
    expect(page.get_by_label("Note")).to_have_value("The fix that finally held.")
    expect(page.get_by_label("Eval status")).to_have_value("golden")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")] == []
    shoot(page, "session-curated-light")
    page.goto(server.url + "/sessions")
    page.get_by_label("Starred").select_option("true")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.sessions tbody td.title a").first).to_have_text("Worth keeping")
    expect(page.locator("table.sessions tbody tr")).to_have_count(1)
    shoot(page, "sessions-starred-light")
    context.close()


def test_tick_sessions_star_them_and_export_them_for_evals(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions?source=opencode")
    rows = page.locator("table.sessions tbody tr")
    titles = [rows.nth(n).locator("td.title a").first.inner_text() for n in (0, 1)]
    for n in (0, 1):
        rows.nth(n).locator("input[name=id]").check()
    page.get_by_role("button", name="★ Star").click()
    expect(page.locator(".notice")).to_have_text("Starred 2 sessions.")
    expect(page).to_have_url(re.compile(r"/sessions\?source=opencode$"))
    expect(page.locator("table.sessions tbody tr").nth(0).locator(".star")).to_be_visible()
    shoot(page, "sessions-bulk-light")
    # Tick every row on the page at once, and take them to the evals export.
    page.get_by_label("Tick every session on this page").check()
    ticked = page.locator("table.sessions tbody input[name=id]:checked").count()
    assert ticked == rows.count() >= 8
    page.get_by_role("button", name="Export for evals…").click()
    expect(page.get_by_role("heading", name="Export for evals")).to_be_visible()
    expect(page.locator(".preview-figures dd").first).to_have_text(str(ticked))
    page.get_by_label("Format").select_option("promptfoo")
    page.get_by_label("One case per").select_option("final")
    page.get_by_role("button", name="Update preview").click()
    expect(page.locator("pre.sample")).to_contain_text('"vars"')
    with page.expect_download() as info:
        page.get_by_role("link", name="Download Promptfoo (JSONL)").click()
    lines = Path(info.value.path()).read_text().splitlines()
    assert str(len(lines)) == page.locator(".preview-figures dd").nth(1).inner_text() and all(json.loads(line)["metadata"]["source"] == "opencode" for line in lines)
    assert set(titles) & {json.loads(line)["description"] for line in lines}
    shoot(page, "evals-light")
    context.close()


HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def test_the_html_file_renders_in_chromium_with_no_script_and_no_secret(server, browser, tmp_path):
    secret = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    post(server, server.key, "/sync/batch", {"sessions": [{"externalId": "html-1", "source": "opencode",
                                                          "title": f"Hand-off {HOSTILE}", "model": "gpt-5"}],
                                             "messages": [
        {"sessionExternalId": "html-1", "externalId": "h1", "role": "user", "textContent": f"push with {secret} please"},
        {"sessionExternalId": "html-1", "externalId": "h2", "role": "assistant", "textContent": f"Pushed. {HOSTILE}",
         "parts": [{"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": f"git push https://{secret}@github.com/o/r"}}}]}]})
    request = urllib.request.Request(server.url + "/api/export?externalId=html-1&format=html",
                                     headers={"Authorization": f"Bearer {server.key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        page_html = response.read().decode()
    assert secret not in page_html
    path = tmp_path / "session-html-1.html"
    path.write_text(page_html)
    for scheme, viewport in (("light", None), ("dark", None), ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(color_scheme="dark" if scheme == "dark" else "light",
                                      **({"viewport": viewport, "is_mobile": True} if viewport else {}))
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Hand-off {HOSTILE}")
        expect(page.locator("article.turn")).to_have_count(1)  # the prompt and what the agent did with it
        expect(page.locator(".turn .prompt .text")).to_have_text(re.compile(r"^push with \[REDACTED\] please$"))
        expect(page.locator(".badge")).to_contain_text("OpenCode")
        assert page.evaluate("typeof window.pwned") == "undefined" and errors == []
        assert requests == [path.as_uri()]  # the file alone: no style, font or image fetched
        assert page.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") != "rgba(0, 0, 0, 0)"
        assert "system-ui" in page.locator("body").evaluate("b => getComputedStyle(b).fontFamily")  # the inline CSS whole
        assert page.evaluate("document.documentElement.scrollWidth") <= (viewport or {"width": 1280})["width"]
        expect(page.locator("details.part.tool summary").first).to_have_text(re.compile(r"^Bash · git push https:\S*\[REDACTED\]@github\.com/o/r no output$"))
        expect(page.locator("details.part.tool pre").first).to_be_hidden()
        page.locator("details.part.tool summary").first.click()  # folded tool calls open without script
        expect(page.locator("details.part.tool pre").first).to_contain_text("[REDACTED]@github.com")
        expect(page.locator("[data-copy], [data-expand-all]")).to_have_count(0)  # script-only buttons stay out
        shoot(page, f"standalone-{scheme}")
        context.close()


def test_a_share_link_opens_without_sign_in_until_revoked(browser, signed_in_state, tmp_path):
    sharing = LiveServer(str(tmp_path / "share.db"), args=["--sharing", "--host", "127.0.0.1"])
    try:
        key = sharing.create_key()
        post(sharing, key, "/sync/batch", {"sessions": [{"externalId": "sh-1", "source": "cursor", "title": "Shared one"}],
                                           "messages": [{"sessionExternalId": "sh-1", "externalId": "m", "role": "user",
                                                         "textContent": "hello"}]})
        owner = browser.new_context()
        page = owner.new_page()
        page.goto(signin_link(sharing))
        page.goto(sharing.url + "/sessions")
        page.get_by_role("link", name="Shared one").click()
        page.locator("details.share-panel summary").click()
        page.get_by_role("button", name="Make a share link").click()
        expect(page.locator(".notice")).to_contain_text("nobody else can open a share link")  # loopback: confirm first
        page.locator("details.share-panel summary").click()
        page.get_by_label(re.compile("make a link anyway")).check()
        page.get_by_role("button", name="Make a share link").click()
        link = page.locator("ul.share-links code").first.inner_text()
        assert re.fullmatch(re.escape(sharing.url) + r"/s/[\w-]{22}", link)
        shoot(page, "session-share-light")
        stranger = browser.new_context()  # no cookie
        other = stranger.new_page()
        other.goto(link)
        expect(other.get_by_role("heading", level=1)).to_have_text("Shared one")
        assert other.evaluate("document.scripts.length") == 0
        page.get_by_role("button", name="Revoke").click()
        expect(page.locator(".notice")).to_contain_text("Share link revoked")
        assert other.goto(link).status == 404
        owner.close()
        stranger.close()
    finally:
        sharing.stop()


def test_from_a_sessions_file_to_every_session_that_touched_it(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + _session_path(page, server))
    files = page.locator("ul.files li")
    expect(files).to_have_count(1)
    expect(files).to_contain_text("read")
    files.get_by_role("link", name="src/parse.py").click()
    expect(page.get_by_label("File or folder")).to_have_value(
        re.compile(r"/home/dev/project-\d/src/parse\.py"))
    # Each project has its own src/parse.py: the absolute path finds that project's sessions.
    count = page.locator("table.sessions tbody tr").count()
    assert 0 < count < 32
    page.get_by_label("File or folder").fill("src/")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#sessions-head")).to_contain_text("32 sessions")
    expect(page.locator("table.files tbody tr:not(.group-head)")).to_have_count(3)  # three files, one heading per project
    shoot(page, "files-folder-light")
    context.close()


PAGES = {"overview": "/", "sessions": "/sessions", "search": "/search?q=tokenizer", "settings": "/settings",
         "files": "/files?path=src/parse.py", "files-all": "/files", "evals": "/export/evals?source=claude-code&format=openai"}


def _session_path(page, server):
    page.goto(server.url + "/sessions?source=claude-code")
    return page.locator("table.sessions tbody td.title a").first.get_attribute("href")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation(server, browser, signed_in_state, scheme):
    context, page = new_page(browser, signed_in_state, color_scheme=scheme, bypass_csp=True)
    paths = {**PAGES, "session": _session_path(page, server)}
    for name, path in paths.items():
        page.goto(server.url + path)
        serious = axe_serious(page)
        assert serious == [], (name, scheme, serious)
        shoot(page, f"{name}-{scheme}")
    context.close()


def test_phone_width_scrolls_only_inside_tables(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state, viewport={"width": 390, "height": 844}, is_mobile=True)
    paths = {**PAGES, "session": _session_path(page, server)}
    for name, path in paths.items():
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (name, width)
        shoot(page, f"{name}-phone")
    context.close()


def test_a_session_synced_while_the_list_is_open_appears_without_reload(server, browser, signed_in_state):
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions?source=opencode")
    page.evaluate("window.__sameDocument = true")
    page.mouse.wheel(0, 200)
    post(server, server.key, "/sync/session", {"externalId": "live-1", "source": "opencode", "title": "Arrived live"})
    expect(page.get_by_role("link", name="Arrived live")).to_be_visible(timeout=8000)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert "source=opencode" in page.url
    post(server, server.key, "/sync/session", {"externalId": "live-2", "source": "cursor", "title": "Other source"})
    page.wait_for_timeout(4000)
    expect(page.get_by_role("link", name="Other source")).to_have_count(0)  # the filter still holds
    context.close()


def test_delete_a_session(server, browser, signed_in_state):
    post(server, server.key, "/sync/batch", {"sessions": [{"externalId": "doomed", "source": "cursor", "title": "Delete me"}],
                                            "messages": [{"sessionExternalId": "doomed", "externalId": "doomed-1",
                                                          "role": "user", "textContent": "only one"}]})
    context, page = new_page(browser, signed_in_state)
    page.goto(server.url + "/sessions")
    page.get_by_role("link", name="Delete me").click()
    page.get_by_text("Delete…").click()
    expect(page.locator(".danger-zone p")).to_contain_text("and its 1 message?")  # one, never "1 messages"
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_role("status")).to_have_text("Deleted “Delete me” and its 1 message.")
    expect(page.get_by_role("link", name="Delete me")).to_have_count(0)
    context.close()
