"""The dashboard through Flask's test client: sign-in, links, CSRF, escaping, isolation, each
filter, exports, keys, live refresh."""

import csv
import io
import re
import subprocess

import pytest
from flask import Flask

from opensync_lite import auth, create_app, init_app

from conftest import CLI, Api, make_key
from factories import make_sessions, post_all

pytestmark = pytest.mark.both_databases


def csrf_of(response):
    return re.search(r'name="csrf" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def sign_in(client, key):
    page = client.get("/signin")
    response = client.post("/signin", data={"csrf": csrf_of(page), "key": key, "next": "/"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def browser(app, api):
    """A second test client (its own cookie jar) signed in as the api fixture's user."""
    client = app.test_client()
    sign_in(client, api.headers["Authorization"].removeprefix("Bearer "))
    return client


@pytest.fixture
def data(api):
    sessions = make_sessions(24)
    post_all(api, sessions)
    return sessions


def html(response):
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def row_badges(page):
    """The source label of each row of the sessions table."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<td class="source"><span class="badge [^"]+" title="[^"]*"><span class="mono" aria-hidden="true">[^<]*</span>([^<]+)</span></td>', body)


# --- sign-in ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/sessions?source=cursor", "/sessions/1", "/search?q=x", "/settings", "/files?path=src/",
                                  "/export/evals?format=text", "/export/evals/download", "/sessions/1/download.html"])
def test_pages_need_sign_in_and_come_back_after(app, api, path):
    client = app.test_client()
    response = client.get(path)
    assert response.status_code == 302 and "/signin?next=" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    key = api.headers["Authorization"].removeprefix("Bearer ")
    back = client.post("/signin", data={"csrf": csrf_of(page), "key": key, "next": path})
    assert back.headers["Location"] == path


def test_wrong_key_and_sign_out(app, api):
    client = app.test_client()
    page = client.get("/signin")
    wrong = client.post("/signin", data={"csrf": csrf_of(page), "key": "osk_nope"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.get_data(as_text=True)
    sign_in(client, api.headers["Authorization"].removeprefix("Bearer "))
    assert client.get("/").status_code == 200
    client.post("/signout", data={"csrf": csrf_of(client.get("/"))})
    assert client.get("/").status_code == 302


def test_next_never_leaves_the_server(app, api):
    key = api.headers["Authorization"].removeprefix("Bearer ")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client = app.test_client()
        page = client.get("/signin")
        response = client.post("/signin", data={"csrf": csrf_of(page), "key": key, "next": target})
        assert response.headers["Location"] == "/"


def test_session_cookie_is_httponly_and_samesite_lax(app, api):
    client = app.test_client()
    page = client.get("/signin")
    response = client.post("/signin", data={"csrf": csrf_of(page), "key": api.headers["Authorization"][7:]})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_one_time_link(app, api):
    with app.app_context():
        token = auth.create_signin_token("local")
        expired = auth.create_signin_token("local", ttl_ms=-1)
    client = app.test_client()
    page = client.get(f"/signin?token={token}")
    assert client.get("/").status_code == 302  # a GET signs nobody in
    assert f'value="{token}"' in page.get_data(as_text=True)
    assert client.post("/signin", data={"csrf": csrf_of(page), "token": token}).status_code == 302
    assert client.get("/").status_code == 200
    other = app.test_client()
    page = other.get(f"/signin?token={token}")
    reused = other.post("/signin", data={"csrf": csrf_of(page), "token": token})
    assert reused.status_code == 401 and "expired or was already used" in reused.get_data(as_text=True)
    late = other.post("/signin", data={"csrf": csrf_of(page), "token": expired})
    assert late.status_code == 401 and other.get("/").status_code == 302


def test_revoking_the_key_signs_the_browser_out(app, api, browser):
    assert browser.get("/").status_code == 200
    with app.app_context():
        (key,) = auth.user_keys(1)
        auth.revoke_user_key(1, key.id)
    assert browser.get("/").status_code == 302


def test_a_sign_in_is_kept_with_the_database(db_path, tmp_path):
    """Sign-ins survive a restart and every server on the same database accepts them."""
    first = create_app({"OPENSYNC_DB": db_path})
    second = create_app({"OPENSYNC_DB": db_path})
    other = create_app({"OPENSYNC_DB": str(tmp_path / "other.db")})
    try:
        client = first.test_client()
        sign_in(client, make_key(first))
        cookie = client.get_cookie("opensync_lite_session")
        for app, status in ((second, 200), (other, 302)):
            elsewhere = app.test_client()
            elsewhere.set_cookie("opensync_lite_session", cookie.value)
            assert elsewhere.get("/").status_code == status
    finally:
        for app in (first, second, other):
            app.extensions["opensync"].close()


# --- CSRF and GET ---------------------------------------------------------------------------

def test_state_changing_forms_need_the_csrf_token(app, api, browser, data):
    session_id = api.session("s001")["session"]["id"]
    for path in (f"/sessions/{session_id}/delete", "/settings/keys", "/settings/keys/1/revoke", "/signout"):
        response = browser.post(path, data={"csrf": "forged"})
        assert response.status_code == 400, path
        assert browser.post(path).status_code == 400, path
    assert api.get(f"/api/sessions/get?id={session_id}").status_code == 200
    with app.app_context():
        assert len(auth.user_keys(1)) == 1 and auth.user_keys(1)[0].revoked_at is None
    assert browser.get(f"/sessions/{session_id}/delete").status_code == 405  # GET never deletes


def test_delete_from_the_page(api, browser, data):
    session_id = api.session("s001")["session"]["id"]
    page = browser.get(f"/sessions/{session_id}")
    response = browser.post(f"/sessions/{session_id}/delete", data={"csrf": csrf_of(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/sessions"
    assert "Deleted “Session 1 about widgets”" in html(browser.get("/sessions"))
    assert api.get(f"/api/sessions/get?id={session_id}").status_code == 404


# --- isolation and escaping -------------------------------------------------------------------

def test_another_users_session_is_a_404(app, api, other_api, browser):
    theirs = other_api.post("/sync/session", {"externalId": "x", "title": "Mallory's"}).get_json()["sessionId"]
    page = browser.get("/sessions")
    for path in (f"/sessions/{theirs}", f"/sessions/{theirs}/download.markdown"):
        assert browser.get(path).status_code == 404
    assert browser.post(f"/sessions/{theirs}/delete", data={"csrf": csrf_of(page)}).status_code == 404
    assert other_api.get(f"/api/sessions/get?id={theirs}").status_code == 200
    assert "Mallory" not in html(browser.get("/sessions")) + html(browser.get("/"))
    assert "Nothing matches" in html(browser.get("/search?q=Mallory"))
    with app.app_context():
        their_key = auth.user_keys(2)[0].id
    assert browser.post(f"/settings/keys/{their_key}/revoke", data={"csrf": csrf_of(page)}).status_code == 404


def test_user_data_is_escaped_everywhere(api, browser):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    api.post("/sync/session", {"externalId": "e", "title": evil, "projectName": evil, "projectPath": f"/x/{evil}",
                               "model": evil, "source": evil[:60]})
    api.post("/sync/message", {"sessionExternalId": "e", "externalId": "m", "role": "user", "textContent": f"hello {evil}",
                               "parts": [{"type": "tool-call", "content": {"name": evil, "input": evil}},
                                         {"type": evil[:60], "content": evil}]})
    session_id = api.session("e")["session"]["id"]
    for path in ("/", "/sessions", f"/sessions/{session_id}", "/search?q=hello", "/search?q=alert"):
        page = html(browser.get(path))
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


# --- pages and filters ------------------------------------------------------------------------

def test_overview_shows_totals_sources_chart_and_recent(api, browser, data):
    page = html(browser.get("/?from=2026-01-01&to=2026-01-06"))
    assert '<span class="value">24</span>' in page
    for source in ("claude-code", "opencode", "cursor", "unknown"):
        assert f"{source}</span></a></td>" in page
    assert page.count('<li class="col') == 6 and 'class="seg src-claude-code"' in page
    assert "Recent sessions" in page and "Session 23 about widgets" in page
    # Each bar links to its day's sessions and says what it holds in a tooltip, not a title.
    assert '<a class="bar" href="/sessions?tests=false&amp;from=2026-01-03&amp;to=2026-01-03" aria-describedby="tip-3">' in page
    tip = re.search(r'<span class="tip" role="tooltip" id="tip-3">(.*?)</span>\s*</li>', page, re.S).group(1)
    assert "2026-01-03" in tip and "4 sessions" in tip and "claude-code: " in tip
    cursor_only = html(browser.get("/?source=cursor&from=2026-01-01&to=2026-01-06&metric=cost"))
    assert '<span class="value">6</span>' in cursor_only
    assert 'class="seg src-opencode"' not in cursor_only and 'aria-current="true">Cost' in cursor_only


@pytest.mark.parametrize("source", ["claude-code", "opencode", "cursor", "unknown"])
def test_source_filter_shows_only_that_source(browser, data, source):
    badges = row_badges(html(browser.get(f"/sessions?source={source}")))
    assert badges == [source] * 6


@pytest.mark.parametrize("query, expected", [
    ("model=gpt-5", {f"s{i:03d}" for i in range(1, 24, 3)}),
    ("provider=google", {f"s{i:03d}" for i in range(2, 24, 3)}),
    ("project=alpha", {f"s{i:03d}" for i in range(0, 24, 3)}),
    ("q=parsers", {f"s{i:03d}" for i in range(0, 24, 4)}),
    ("from=2026-01-06&to=2026-01-06", {f"s{i:03d}" for i in range(5, 24, 6)}),
    ("source=cursor&model=claude-sonnet-4&q=&from=", {"s018", "s006"}),
])
def test_each_filter(api, browser, data, query, expected):
    page = html(browser.get(f"/sessions?{query}&limit=100"))
    titles = re.findall(r'<a class="row-link" href="/sessions/(\d+)"', page)
    ids = {api.session(t)["session"]["externalId"] for t in titles}
    assert ids == expected


def test_filter_dropdowns_list_values_with_counts(browser, data):
    page = html(browser.get("/sessions"))
    assert '<option value="unknown">unknown (no source) (6)</option>' in page
    assert '<option value="gpt-5">gpt-5 (8)</option>' in page
    assert '<option value="cursor" selected>' in html(browser.get("/sessions?source=cursor"))


def test_sorting_and_keyset_pages(api, browser, data):
    first = html(browser.get("/sessions?sortBy=cost&sortOrder=asc&limit=10"))
    costs = sorted(s["cost"] for s in make_sessions(24))
    assert 'aria-sort="ascending"' in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = html(browser.get(next_link))
    back_link = re.search(r'<a rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    ids = lambda page: re.findall(r'<a class="row-link" href="/sessions/(\d+)"', page)  # noqa: E731
    assert ids(html(browser.get(back_link))) == ids(first) and len(ids(first)) == 10
    shown = [float(c.replace("$", "")) for c in re.findall(r'<td class="num cost">(\$[\d.,]+)</td>', second)]
    assert shown == [round(c, 2) for c in costs[10:20]]


def test_export_is_exactly_the_filtered_list(browser, data):
    response = browser.get("/sessions/export.csv?source=opencode&limit=2")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["Source"] for r in rows} == {"opencode"} and len(rows) == 6  # every page, not one
    assert "attachment" in response.headers["Content-Disposition"]
    as_json = browser.get("/sessions/export.json?source=unknown").get_json()
    assert len(as_json) == 6 and {s["source"] for s in as_json} == {None}


def test_session_page_and_downloads(api, browser):
    api.post("/sync/session", {"externalId": "d", "title": "Detail", "source": "claude-code", "model": "m",
                               "provider": "p", "endReason": "user_exit", "promptTokens": 10, "completionTokens": 5})
    api.post("/sync/message", {"sessionExternalId": "d", "externalId": "a", "role": "assistant", "textContent": "x" * 3000,
                               "parts": [{"type": "tool-call", "content": {"name": "Edit", "input": {"file": "a.py"}}},
                                         {"type": "thinking", "content": "pondering"}]})
    session_id = api.session("d")["session"]["id"]
    page = html(browser.get(f"/sessions/{session_id}"))
    assert "Claude Code" in page and "user_exit" in page and "(10 prompt, 5 completion)" in page
    # The call folds to one line (its name and what it worked on); unfolded, its arguments as text.
    assert re.search(r'<details class="part tool">\s*<summary><span class="tool-name">Edit</span> <span class="sep" '
                     r'aria-hidden="true">·</span> <span class="tool-summary">a.py</span>', page)
    assert "<dt>file</dt><dd><pre><code>a.py</code></pre></dd>" in page
    assert '<details class="part thinking">' in page  # closed: folded by default
    assert 'class="fold-toggle"' in page and "Show all 3,000 characters" in page
    markdown = browser.get(f"/sessions/{session_id}/download.markdown")
    assert markdown.get_data(as_text=True).startswith("# Detail")
    assert browser.get(f"/sessions/{session_id}/download.json").get_json()["session"]["externalId"] == "d"


def test_session_reader_anchors_every_message_and_escapes_tool_text(api, browser):
    api.post("/sync/batch", {"sessions": [{"externalId": "r1", "source": "claude-code", "projectPath": "/home/dev/x y",
                                          "gitBranch": "main"}], "messages": [
        {"sessionExternalId": "r1", "externalId": "u", "role": "user", "textContent": "Run <b>it</b>", "createdAt": 1},
        {"sessionExternalId": "r1", "externalId": "c", "role": "assistant", "createdAt": 2, "parts": [
            {"type": "tool-call", "content": {"id": "t1", "name": "Bash<i>", "input": {"command": "echo '<img src=x onerror=1>'"}}}]},
        {"sessionExternalId": "r1", "externalId": "r", "role": "user", "createdAt": 3, "parts": [
            {"type": "tool-result", "content": {"toolUseId": "t1", "content": "<img src=x onerror=1>\nsecond", "isError": True}}]},
        {"sessionExternalId": "r1", "externalId": "a", "role": "assistant", "textContent": "Done: *ok*", "createdAt": 4}]})
    stored = api.session("r1")
    session_id = stored["session"]["id"]
    page = html(browser.get(f"/sessions/{session_id}"))
    # Each message can be linked to (search links to #m<id>), the tool result's at its call, once.
    for m in stored["messages"]:
        assert page.count(f'id="m{m["id"]}"') == 1, m["externalId"]
    assert '<span class="tool-name">Bash&lt;i&gt;</span>' in page and "<img" not in page
    assert '<details class="part tool failed">' in page and "&lt;img src=x onerror=1&gt;\nsecond</code>" in page
    assert "<em>ok</em>" in page and "Run &lt;b&gt;it&lt;/b&gt;" in page
    assert "cd &#39;/home/dev/x y&#39; &amp;&amp; claude --resume r1" in page and "<code>main</code>" in page
    assert 'data-copy="prompt-1"' in page and "data-expand-all" in page
    # The file to hand on: the same reader, without the buttons only a script could work.
    export = browser.get(f"/sessions/{session_id}/download.html").get_data(as_text=True)
    assert '<article class="turn" id="turn-1"' in export and "<em>ok</em>" in export and "Bash&lt;i&gt;" in export
    assert "<dt>Git branch</dt><dd class=\"break\"><code>main</code>" in export
    assert "<button" not in export and "<script" not in export


def test_search_page_links_to_the_message(api, browser, data):
    page = html(browser.get("/search?q=parsers"))
    assert "<mark>parsers</mark>" in page
    message = html(browser.get("/search?q=message%201%20of%20s005"))
    session_id = api.session("s005")["session"]["id"]
    message_id = next(m["id"] for m in api.session("s005")["messages"] if m["externalId"] == "s005-m1")
    assert f'href="/sessions/{session_id}#m{message_id}"' in message
    assert "Nothing matches" in html(browser.get("/search?q=zzzz"))
    assert browser.get("/search?q=x&limit=0").status_code == 400


def test_search_page_groups_by_session_filters_where_and_pages(api, browser):
    """One item per session with what each match was found in, the session's date, project
    and model; the "In" choice narrows; "More results" pages on, every session once."""
    api.post("/sync/session", {"externalId": "g1", "source": "claude-code", "title": "Quota work",
                               "projectName": "billing", "model": "claude-opus-4-1"})
    api.post("/sync/batch", {"messages": [
        {"sessionExternalId": "g1", "externalId": "p", "role": "user", "textContent": "why is the quota exceeded"},
        {"sessionExternalId": "g1", "externalId": "t", "role": "assistant", "textContent": "",
         "parts": [{"type": "tool-result", "content": "Error: quota exceeded for project"}]},
    ] + [{"sessionExternalId": f"q{i}", "externalId": "m", "role": "assistant", "textContent": f"quota note {i}"}
         for i in range(25)]})
    page = html(browser.get("/search?q=quota"))
    assert page.count('class="hit"') == 20 and "More results" in page and "20+ sessions" in page
    (g1,) = html(browser.get("/search?q=quota+exceed")).split('class="hit"')[1:]
    assert g1.count('<span class="found-in') == 2  # the prompt and the tool output, in one item
    assert 'found-tool">tool<' in g1 and 'found-prompt">prompt<' in g1
    assert "billing" in g1 and "claude-opus-4-1" in g1 and "<time" in g1
    more = re.search(r'href="([^"]*offset=20[^"]*)"[^>]*>More results', page).group(1).replace("&amp;", "&")
    rest = html(browser.get(more))
    assert rest.count('class="hit"') == 6 and "More results →" not in rest and "Sessions 21–26" in rest
    tools = html(browser.get("/search?q=quota&where=tools"))
    assert tools.count('class="hit"') == 1 and 'found-tool">tool<' in tools and "found-prompt" not in tools
    assert '<option value="tools" selected>' in tools
    assert "try <a" in html(browser.get("/search?q=quota&where=thinking"))
    assert browser.get("/search?q=quota&where=anywhere").status_code == 400


def test_files_page_groups_by_project_with_an_editor_link(api, browser, app):
    for name, folder in (("shop", "/work/shop"), ("blog", "/work/blog")):
        api.post("/sync/session", {"externalId": name, "projectName": name, "projectPath": folder})
        api.post("/sync/message", {"sessionExternalId": name, "externalId": "m", "role": "assistant", "parts": [
            {"type": "tool-call", "content": {"name": "Edit", "input": {"file_path": f"{folder}/src/lib/stripe.ts"}}}]})
    page = html(browser.get("/files?path=stripe.ts"))
    assert page.count('class="group-head"') == 2 and ">shop <" in page and ">blog <" in page
    assert 'href="vscode://file//work/shop/src/lib/stripe.ts"' in page
    app.config["OPENSYNC_EDITOR_URL"] = "idea://open?file={path}"
    assert 'href="idea://open?file=/work/blog/src/lib/stripe.ts"' in html(browser.get("/files?path=lib/stripe.ts"))
    app.config["OPENSYNC_EDITOR_URL"] = ""
    assert "open in editor" not in html(browser.get("/files"))


def test_bad_query_is_a_page_naming_the_field(browser):
    response = browser.get("/sessions?from=yesterday")
    assert response.status_code == 400 and "<code>from</code>" in response.get_data(as_text=True)
    assert browser.get("/sessions?sortBy=title").status_code == 400


def test_settings_create_and_revoke_keys(app, browser):
    page = browser.get("/settings")
    created = browser.post("/settings/keys", data={"csrf": csrf_of(page), "label": "desk"})
    text = created.get_data(as_text=True)
    key = re.search(r'<code id="new-key">(osk_[\w-]+)</code>', text).group(1)
    assert created.status_code == 201 and f"CLAUDE_SYNC_API_KEY={key}" in text
    assert "CLAUDE_SYNC_CONVEX_URL=http://localhost" in text
    assert key not in html(browser.get("/settings"))  # shown once
    with app.app_context():
        new = next(k for k in auth.user_keys(1) if k.label == "desk")
    browser.post(f"/settings/keys/{new.id}/revoke", data={"csrf": csrf_of(page)})
    with app.app_context():
        assert auth.key_user(key) is None


# --- live refresh -----------------------------------------------------------------------------

def test_live_endpoint_is_conditional(api, browser, data):
    first = browser.get("/live")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.get_json()["version"] == etag.strip('"')
    assert browser.get("/live", headers={"If-None-Match": etag}).status_code == 304
    api.post("/sync/session", {"externalId": "new-one"})
    changed = browser.get("/live", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    api.delete("/api/sessions/new-one")
    assert browser.get("/live", headers={"If-None-Match": changed.headers["ETag"]}).status_code == 200
    page = html(browser.get("/sessions"))
    assert f'data-version="{browser.get("/live").get_json()["version"]}"' in page


def test_live_without_sign_in_is_401_not_a_redirect(client):
    assert client.get("/live").status_code == 401


# --- embedding and the command line ---------------------------------------------------------

def test_embedded_under_a_prefix_with_the_hosts_secret(db_path):
    host = Flask("host")
    host.config.update(OPENSYNC_DB=db_path, SECRET_KEY="the host's own secret")
    init_app(host, url_prefix="/opensync")
    try:
        assert host.secret_key == "the host's own secret"
        client = host.test_client()
        key = make_key(host)
        assert client.get("/opensync/").headers["Location"].startswith("/opensync/signin?next=/opensync/")
        page = client.get("/opensync/signin")
        client.post("/opensync/signin", data={"csrf": csrf_of(page), "key": key})
        text = html(client.get("/opensync/sessions"))
        assert 'href="/opensync/assets/dashboard.css"' in text and 'href="/opensync/settings"' in text
        assert client.get("/opensync/assets/dashboard.js").status_code == 200
    finally:
        host.extensions["opensync"].close()


def test_open_prints_a_fresh_link(tmp_path):
    db = str(tmp_path / "open.db")
    out = subprocess.run(CLI + ["open", "--no-browser", "--url", "http://127.0.0.1:9", "--db", db],
                         capture_output=True, text=True, timeout=60).stdout
    token = re.search(r"http://127\.0\.0\.1:9/signin\?token=([\w-]+)", out).group(1)
    app = create_app({"OPENSYNC_DB": db})
    try:
        with app.app_context():
            assert auth.redeem_signin_token(token) == 1
            assert auth.redeem_signin_token(token) is None
    finally:
        app.extensions["opensync"].close()


# --- curation ---------------------------------------------------------------------------------

def test_star_grade_tag_and_note_from_the_session_page(api, browser, data):
    session_id = api.session("s001")["session"]["id"]
    page = browser.get(f"/sessions/{session_id}")
    response = browser.post(f"/sessions/{session_id}/curate", data={
        "csrf": csrf_of(page), "starred": "on", "evalStatus": "golden", "tags": "parser, <b>x</b>, parser",
        "note": "the one to keep"})
    assert response.status_code == 302 and response.headers["Location"] == f"/sessions/{session_id}"
    session = api.session("s001")["session"]
    assert (session["starred"], session["evalStatus"], session["tags"], session["note"]) == (
        True, "golden", ["<b>x</b>", "parser"], "the one to keep")
    shown = html(browser.get(f"/sessions/{session_id}"))
    assert "#&lt;b&gt;x&lt;/b&gt;" in shown and "<b>x</b>" not in shown and "the one to keep" in shown
    # The list shows the star, and its filters find it (also after a remembered first view).
    listed = html(browser.get("/sessions?starred=true"))
    assert "Session 1 about widgets" in listed and "★" in listed
    assert "Session 1 about widgets" in html(browser.get("/sessions?tag=parser&evalStatus=golden"))
    # Unstarring with no tags: the list filtered on stars no longer holds it.
    unstar = browser.post(f"/sessions/{session_id}/curate", data={"csrf": csrf_of(page), "tags": "", "note": ""})
    assert unstar.status_code == 302, unstar.get_data(as_text=True)[-600:]
    assert "Session 1 about widgets" not in html(browser.get("/sessions?starred=true"))
    session = api.session("s001")["session"]
    assert (session["starred"], session["evalStatus"], session["tags"], session["note"]) == (False, None, [], None)


def test_curating_is_checked_like_the_api(api, other_api, browser, data):
    session_id = api.session("s001")["session"]["id"]
    page = browser.get(f"/sessions/{session_id}")
    bad = browser.post(f"/sessions/{session_id}/curate", data={"csrf": csrf_of(page), "evalStatus": "great"})
    assert bad.status_code == 400 and api.session("s001")["session"]["evalStatus"] is None
    theirs = other_api.post("/sync/session", {"externalId": "x"}).get_json()["sessionId"]
    assert browser.post(f"/sessions/{theirs}/curate", data={"csrf": csrf_of(page), "starred": "on"}).status_code == 404
    assert browser.post(f"/sessions/{session_id}/curate", data={"starred": "on"}).status_code == 400  # no CSRF token
    assert api.session("s001")["session"]["starred"] is False


def test_bulk_star_grade_and_tag_from_the_list(api, other_api, browser, data):
    ids = [api.session(f"s00{n}")["session"]["id"] for n in (1, 2, 3)]
    theirs = other_api.post("/sync/session", {"externalId": "theirs"}).get_json()["sessionId"]
    page = browser.get("/sessions")
    token = csrf_of(page)
    assert f'name="id" value="{ids[0]}" form="bulk"' in html(page)

    def bulk(**form):
        return browser.post("/sessions/bulk", data={"csrf": token, "next": "/sessions?source=cursor", **form})

    response = bulk(id=ids + [theirs], action="star")
    assert response.status_code == 302 and response.headers["Location"] == "/sessions?source=cursor"
    assert "Starred 3 sessions." in html(browser.get("/sessions?source=cursor"))
    assert bulk(id=ids[:2], action="grade", setStatus="golden").status_code == 302
    assert bulk(id=ids[1:], action="tag", newTag="parser").status_code == 302
    got = {n: api.session(f"s00{n}")["session"] for n in (1, 2, 3)}
    assert [got[n]["starred"] for n in (1, 2, 3)] == [True, True, True]
    assert [got[n]["evalStatus"] for n in (1, 2, 3)] == ["golden", "golden", None]
    assert [got[n]["tags"] for n in (1, 2, 3)] == [[], ["parser"], ["parser"]]
    assert other_api.session("theirs")["session"]["starred"] is False  # another user's id is ignored
    # Nothing ticked, no status chosen: the list says so and nothing changes.
    bulk(action="star")
    assert "Tick at least one session." in html(browser.get("/sessions?source=cursor"))
    bulk(id=ids[2:], action="grade")
    assert "Choose an eval status." in html(browser.get("/sessions?source=cursor"))
    assert bulk(id=ids, action="star").status_code == 302
    assert browser.post("/sessions/bulk", data={"id": ids[0], "action": "unstar"}).status_code == 400  # no CSRF token
    assert api.session("s001")["session"]["starred"] is True


def test_evals_page_previews_and_downloads_the_ticked_sessions(api, browser):
    api.post("/sync/batch", {"sessions": [{"externalId": "e1", "title": "Fix <b>it</b>"}, {"externalId": "e2", "title": "Mute"}],
                             "messages": [
        {"sessionExternalId": "e1", "externalId": "m1", "role": "user", "textContent": "Use key AKIAABCDEFGHIJKLMNOP"},
        {"sessionExternalId": "e1", "externalId": "m2", "role": "assistant", "textContent": "Done."},
        {"sessionExternalId": "e2", "externalId": "m3", "role": "user", "textContent": "Hello?"}]})
    ids = [api.session(e)["session"]["id"] for e in ("e1", "e2")]
    # The list's bulk form sends its other fields along with the ticked ids; the page keeps the ids.
    page = html(browser.get(f"/export/evals?id={ids[0]}&id={ids[1]}&csrf=x&action=&newTag=&format=openai"))
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert figures == {"Sessions": "2", "Cases": "1", "Left out": "1", "Secrets masked": "1"}
    assert "Mute: no assistant answer" in page and "AWS Access Key × 1" in page
    assert "Fix &lt;b&gt;it&lt;/b&gt;" in page and "AKIAABCDEFGHIJKLMNOP" not in page
    link = re.search(r'href="(/export/evals/download\?[^"]+)"', page).group(1).replace("&amp;", "&")
    download = browser.get(link)
    assert download.status_code == 200 and download.mimetype == "application/x-ndjson"
    assert download.get_data(as_text=True).count("\n") == 1 and "[REDACTED]" in download.get_data(as_text=True)
    # Unticking "Mask secrets" in the options form turns masking off, and says so.
    raw = html(browser.get(f"/export/evals?ids={ids[0]}&options=1&format=text&tools=true"))
    assert "Secrets are not masked" in raw and "AKIAABCDEFGHIJKLMNOP" in raw


def test_evals_page_says_when_its_preview_read_only_the_first_sessions(app, browser, monkeypatch):
    from opensync_lite import evals

    from factories import bulk_sessions

    monkeypatch.setattr(evals, "PREVIEW_SESSIONS", 2, raising=False)
    bulk_sessions(app, "local", 5, 4)
    page = html(browser.get("/export/evals?format=openai"))
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert figures["Sessions"] == "5" and figures["Cases"] == "4 or more"
    assert "A preview of the first 2 of 5 sessions" in page and "The download reads all 5." in page


def test_overview_filters_on_curation_and_keeps_the_filters_it_does_not_show(api, browser, data):
    api.client.patch("/api/sessions/s001", json={"starred": True, "evalStatus": "golden", "tags": ["t"]}, headers=api.headers)
    page = html(browser.get("/?starred=true&tag=t&range=all"))
    cards = dict(re.findall(r'<span class="label">([^<]+)</span><span class="value"[^>]*>([^<]+)</span>', page))
    assert cards["Sessions"] == "1"
    assert '<option value="true" selected>Starred</option>' in page
    assert '<input type="hidden" name="tag" value="t">' in page  # the form keeps it when it is sent
    cards = dict(re.findall(r'<span class="label">([^<]+)</span><span class="value"[^>]*>([^<]+)</span>',
                            html(browser.get("/?evalStatus=correct&range=all"))))
    assert cards["Sessions"] == "0"


def cards_of(page):
    return dict(re.findall(r'<span class="label">([^<]+)</span><span class="value"[^>]*>([^<]+)</span>', page))


def test_overview_range_presets_label_the_cards_and_the_chart(api, browser):
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc).replace(hour=12)
    for days_ago in (0, 3, 20, 60, 200):
        api.post("/sync/session", {"externalId": f"r{days_ago}", "source": "opencode", "cost": 1.0,
                                   "promptTokens": 100, "createdAt": int((now - timedelta(days=days_ago)).timestamp() * 1000)})
    expected = {"today": ("Today", 1, 1), "7d": ("Last 7 days", 2, 7), "": ("Last 30 days", 3, 30),
                "90d": ("Last 90 days", 4, 90), "all": ("All time", 5, None)}
    for name, (label, sessions, columns) in expected.items():
        page = html(browser.get(f"/?range={name}" if name else "/"))
        assert f'<h2 class="range-title">{label} ' in page
        assert cards_of(page)["Sessions"] == str(sessions), name
        assert page.count(f'<span class="meta">{label.lower()}</span>') >= 4  # each card says its range
        assert f"per day by source <span class=\"meta\">· {label.lower()}</span>" in page or name == "all"
        assert re.search(r'aria-current="true">' + {"": "30 d", "today": "Today", "7d": "7 d", "90d": "90 d", "all": "All"}[name] + "<", page)
        if columns:
            assert page.count('<li class="col') == columns, name
    # All time over 200 days: weeks, unless asked for months; "1 session" in the singular.
    everything = html(browser.get("/?range=all"))
    assert "Cost per week" in everything or "Tokens per week" in everything
    months = html(browser.get("/?range=all&bucket=month"))
    assert "Tokens per month by source" in months and months.count('<li class="col') in (7, 8)
    assert "1 session<" in html(browser.get("/?range=today")) and "1 sessions" not in html(browser.get("/?range=today"))
    custom = html(browser.get("/?from=2020-01-01&to=2020-01-03"))
    assert '<h2 class="range-title">2020-01-01 – 2020-01-03' in custom and "No sessions in 2020-01-01 – 2020-01-03." in custom


def test_overview_periods_compare_with_the_period_before(api, browser):
    from datetime import datetime, timedelta, timezone

    today = datetime.now(timezone.utc).date()
    def at(day):
        return int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp() * 1000)
    sessions = [("t1", today, 3.0), ("t2", today, 1.0), ("y1", today - timedelta(days=1), 2.0),
                ("w1", today - timedelta(days=7), 8.0), ("old", today - timedelta(days=70), 5.0)]
    for external_id, day, cost in sessions:
        api.post("/sync/session", {"externalId": external_id, "cost": cost, "promptTokens": 10, "createdAt": at(day)})
    page = html(browser.get("/"))
    strip = page.split('<section class="periods"', 1)[1].split("</section>", 1)[0]
    today_card = strip.split('<a class="period plain"')[1]
    assert '<span class="value">$4.00</span>' in today_card and "▲</span> +100%<span class=\"against\"> vs yesterday" in today_card
    assert "2 sessions" in today_card
    values = re.findall(r'<span class="value">\$([\d.,]+)</span>', strip)
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    this_week = sum(cost for _, day, cost in sessions if week_start <= day <= today)
    this_month = sum(cost for _, day, cost in sessions if month_start <= day <= today)
    assert [float(v) for v in values] == [4.0, this_week, this_month]
    last_week = sum(cost for _, day, cost in sessions if week_start - timedelta(days=7) <= day <= today - timedelta(days=7))
    week_card = strip.split('<a class="period plain"')[2]
    change = round(100 * (this_week - last_week) / last_week)
    assert f"{'+' if change > 0 else '−'}{abs(change)}%<span class=\"against\"> vs the same days last week" in week_card


def test_overview_ranks_models_and_projects_by_cost(api, browser):
    for i, (model, cost, project) in enumerate([("cheap", 0.1, "p1"), ("cheap", 0.1, "p1"), ("cheap", 0.1, "p1"),
                                                ("dear", 9.7, "p2")]):
        api.post("/sync/session", {"externalId": f"m{i}", "model": model, "cost": cost, "projectName": project})
    page = html(browser.get("/?range=all"))
    models = page.split('id="top-models"', 1)[1].split("</section>", 1)[0]
    assert models.index(">dear</a>") < models.index(">cheap</a>")
    assert "$9.70 · 97%" in models and "$0.30 · 3%" in models and "3 sessions" in models and "1 session " in models


def test_overview_filters_show_as_removable_chips(api, browser, data):
    page = html(browser.get("/?from=2026-01-01&to=2026-01-06&model=gpt-5&project=alpha&tag=x"))
    assert '<option value="gpt-5" selected>' in page and '<option value="/w/alpha" selected title="/w/alpha">alpha (' in page
    chips = re.findall(r'<a class="chip" href="([^"]+)" aria-label="Remove the filter ([^"]+)">', page)
    labels = [label for _, label in chips]
    assert labels == ["Model: gpt-5", "Project: alpha", "Tag: x", "From: 2026-01-01", "To: 2026-01-06"]
    without_model = chips[0][0].replace("&amp;", "&")
    assert "model=" not in without_model and "project=alpha" in without_model and "tag=x" in without_model
    assert cards_of(html(browser.get("/?from=2026-01-01&to=2026-01-06&model=gpt-5")))["Sessions"] == "8"


def test_empty_overview_says_how_to_import(app, browser):
    import shlex

    page = html(browser.get("/"))
    assert "No sessions yet" in page and "Cards" not in page
    command = shlex.split(re.search(r'<code id="import-command">([^<]+)</code>', page).group(1))
    # The program as this process was started (here `python -m`), and the server's own database.
    assert command[-4:] == ["import", "claude-code", "--db", app.config["OPENSYNC_DB"]]
    assert re.search(r"(opensync-lite|python[0-9.]*)$", command[0]) and 'class="periods"' not in page
    assert 'aria-label="Filter the overview"' not in page  # nothing to filter yet


# --- the sessions list ------------------------------------------------------------------------

def row_ids(page):
    return re.findall(r'<a class="row-link" href="/sessions/(\d+)"', page)


def test_list_says_where_a_page_is_and_walks_to_first_and_last(browser, data):
    first = html(browser.get("/sessions?limit=10"))
    assert '<span class="pager-place">1–10 of 24</span>' in first and '<span class="disabled">« First</span>' in first
    second = html(browser.get(re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")))
    assert '<span class="pager-place">11–20 of 24</span>' in second
    last_link = re.search(r'<a href="([^"]+)">Last »</a>', first).group(1).replace("&amp;", "&")
    last = html(browser.get(last_link))
    assert '<span class="pager-place">21–24 of 24</span>' in last and '<span class="disabled">Next →</span>' in last
    assert set(row_ids(last)).isdisjoint(row_ids(first) + row_ids(second)) and len(row_ids(last)) == 4
    back = html(browser.get(re.search(r'<a href="([^"]+)">« First</a>', last).group(1).replace("&amp;", "&")))
    assert row_ids(back) == row_ids(first)
    assert '<option value="10" selected>10</option>' in first and '<option value="100">100</option>' in first
    assert browser.get("/sessions?last=true&cursor=abc").status_code == 400


def test_list_sorts_by_start_and_totals_the_filtered_set(api, browser, data):
    page = html(browser.get("/sessions?sortBy=createdAt&sortOrder=asc&limit=100"))
    started = [api.session(i)["session"]["createdAt"] for i in row_ids(page)]
    assert started == sorted(started) and len(started) == 24
    assert 'aria-sort="ascending"' in page.split(">Started")[0].rsplit("<th", 1)[1]
    cursor = html(browser.get("/sessions?source=cursor&limit=2"))
    mine = [s for s in data if s.get("source") == "cursor"]
    totals = re.search(r'<p class="list-totals"[^>]*>(.*?)</p>', cursor, re.S).group(1)
    assert "<strong>6 sessions</strong>" in totals  # the whole filtered set, not the page of 2
    assert f"<strong>${sum(s['cost'] for s in mine):,.2f}</strong>" in totals


def test_a_star_on_each_row_works_without_scripts(api, browser, data):
    page = html(browser.get("/sessions?source=opencode"))
    form = re.search(r'<form class="star-form" method="post" action="(/sessions/(\d+)/star)">(.*?)</form>', page, re.S)
    action, session_id, body = form.groups()
    fields = dict(re.findall(r'name="(csrf|next|starred)" value="([^"]*)"', body))
    assert fields["starred"] == "true" and fields["next"].replace("&amp;", "&") == "/sessions?source=opencode"
    assert browser.post(action, data={**fields, "csrf": "forged"}).status_code == 400
    done = browser.post(action, data=fields)
    assert done.status_code == 302 and done.headers["Location"] == "/sessions?source=opencode"
    external_id = api.session(session_id)["session"]["externalId"]
    assert api.get(f"/api/sessions/get?id={session_id}").get_json()["session"]["starred"] is True
    again = html(browser.get("/sessions?source=opencode"))
    assert f'aria-pressed="true" aria-label="Star {api.session(session_id)["session"]["title"]}"' in again
    browser.post(action, data={**fields, "starred": "false"})
    assert api.session(external_id)["session"]["starred"] is False
    assert browser.post("/sessions/99999/star", data=fields).status_code == 404


def test_subagents_fold_under_their_parent_and_running_sessions_are_marked(api, browser):
    import time

    now = int(time.time() * 1000)
    api.post("/sync/session", {"externalId": "boss", "title": "Boss", "model": "claude-opus-4-1-20250805",
                               "cost": 1.0, "createdAt": now - 7_200_000, "endReason": "completed"})
    for i in range(2):
        api.post("/sync/session", {"externalId": f"helper-{i}", "title": f"Helper {i}", "parentExternalId": "boss",
                                   "cost": 0.25, "createdAt": now - 7_000_000, "endReason": "completed"})
    api.post("/sync/session", {"externalId": "busy", "title": "Busy", "createdAt": now - 60_000})
    page = html(browser.get("/sessions"))
    assert ">Helper 0<" not in page and ">Boss<" in page
    assert '<a class="subagents" href="/sessions?parent=boss">↳ 2 subagents</a>' in page
    totals = re.search(r'<p class="list-totals"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "<strong>4 sessions</strong>" in totals and "2 subagents among them" in totals and "$1.50" in totals
    assert '<span class="pager-place">1–2 of 2</span>' in page
    shown = html(browser.get("/sessions?subagents=show"))
    assert ">Helper 0<" in shown and ">Helper 1<" in shown and "Fold subagents under their parents" in shown
    children = html(browser.get("/sessions?parent=boss"))
    assert ">Helper 0<" in children and ">Boss<" not in children
    busy_row = page.split(">Busy</a>", 1)[1].split("</td>", 1)[0]
    boss_row = page.split(">Boss</a>", 1)[1].split("</td>", 1)[0]
    assert 'class="running"' in busy_row and 'class="running"' not in boss_row
    assert '<td class="model" title="claude-opus-4-1-20250805">opus-4-1</td>' in page
    # The export links carry the fold, so a download is the list the page shows.
    csv_link = re.search(r'href="(/sessions/export\.csv[^"]*)"', page).group(1).replace("&amp;", "&")
    assert "subagents=fold" in csv_link
    rows = list(csv.DictReader(io.StringIO(browser.get(csv_link).get_data(as_text=True))))
    assert len(rows) == 2


# --- small things -----------------------------------------------------------------------------

def test_favicon_is_served_without_sign_in_and_linked_from_every_page(app, browser):
    anonymous = app.test_client()
    icon = anonymous.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    linked = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html(anonymous.get("/signin"))).group(1)
    assert anonymous.get(linked).status_code == 200
    assert f'href="{linked}"' in html(browser.get("/sessions"))


def test_sign_in_page_names_the_commands_as_they_can_be_run(app, client):
    import shlex

    page = html(client.get("/signin"))
    commands = [shlex.split(c) for c in re.findall(r"<li><code>([^<]+)</code>", page)]
    assert len(commands) == 2
    assert commands[0][-3:] == ["open", "--db", app.config["OPENSYNC_DB"]]
    assert commands[1][-4:] == ["keys", "create", "--db", app.config["OPENSYNC_DB"]]
    assert 'id="keys"' not in page  # the keys dialog is for the signed-in pages


@pytest.mark.parametrize("source, name", [("codex-cli", "Codex CLI"), ("gemini-cli", "Gemini CLI"), ("pi", "Pi"),
                                          ("qwen-code", "Qwen Code"), ("cline", "Cline")])
def test_the_agents_read_from_their_own_files_have_their_own_badge(api, browser, source, name):
    api.post("/sync/session", {"externalId": f"s-{source}", "source": source, "title": "a session"})
    page = html(browser.get(f"/sessions?source={source}"))
    assert row_badges(page) == [source]
    assert f'class="badge src-{source}" title="{name}"' in page


def test_settings_offer_desktop_alerts_only_where_the_operator_allows_them(app, browser):
    assert 'name="desktop"' not in html(browser.get("/settings"))
    assert "serve --desktop-alerts" in html(browser.get("/settings"))
    app.config["OPENSYNC_DESKTOP_ALERTS"] = True
    assert 'name="desktop"' in html(browser.get("/settings"))
