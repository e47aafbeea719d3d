"""Self-contained HTML and share links: one file that renders with no script, secrets masked;
links off by default, refused on loopback unless confirmed, no sign-in needed, revocable, and
listed to nobody but their owner."""

import re

import pytest

from test_dashboard import csrf_of, html, sign_in

pytestmark = pytest.mark.both_databases

SECRET = "sk-ant-api03-" + "Q" * 40 + "x9" * 20 + "AA"
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


@pytest.fixture
def story(api):
    api.post("/sync/batch", {"sessions": [{"externalId": "s1", "source": "claude-code", "title": f"Deploy {HOSTILE}"}],
                             "messages": [
        {"sessionExternalId": "s1", "externalId": "m1", "role": "user", "textContent": f"Here is my key: {SECRET}"},
        {"sessionExternalId": "s1", "externalId": "m2", "role": "assistant", "textContent": f"Done. {HOSTILE}",
         "parts": [{"type": "tool-call", "content": {"toolName": "Bash", "args": {"command": f"export KEY={SECRET}"}}}]}]})
    api.client.patch("/api/sessions/s1", json={"note": "private note", "tags": ["mine"]}, headers=api.headers)
    return api.session("s1")["session"]["id"]


def sharing_app(db_path, **config):
    from opensync_lite import create_app

    return create_app({"OPENSYNC_DB": str(db_path), "TESTING": True, **config})


def test_html_download_is_one_file_with_no_script_and_no_secret(api, story):
    response = api.get("/api/export?externalId=s1&format=html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert 'filename="session-s1.html"' in response.headers["Content-Disposition"]
    page = response.get_data(as_text=True)
    # No element carries a handler: the hostile text is escaped (by Jinja, or by the Markdown parser).
    assert "<script" not in page.lower() and not re.search(r"<[a-z][^>]*\sonerror=", page, re.I)
    assert "&lt;img src=x onerror=" in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert SECRET not in page and response.headers["X-Redacted-Secrets"] == "2"
    assert "2 secrets masked as [REDACTED]" in page
    assert "private note" not in page and "#mine" not in page  # what the user says stays theirs
    assert "<link" not in page and "src=" not in page.replace("src=x", "")  # nothing fetched
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_share_links_are_off_by_default(app, api, story):
    browser = app.test_client()
    sign_in(browser, api.headers["Authorization"].removeprefix("Bearer "))
    page = browser.get(f"/sessions/{story}")
    assert "Share links are off on this server" in html(page)
    assert browser.post(f"/sessions/{story}/shares", data={"csrf": csrf_of(page)}).status_code == 403


def share_client(db_path, api, host="127.0.0.1"):
    app = sharing_app(db_path, OPENSYNC_SHARING=True, OPENSYNC_LISTEN_HOST=host)
    browser = app.test_client()
    sign_in(browser, api.headers["Authorization"].removeprefix("Bearer "))
    return app, browser


def make_link(browser, session_id, **form):
    page = browser.get(f"/sessions/{session_id}")
    response = browser.post(f"/sessions/{session_id}/shares", data={"csrf": csrf_of(page), **form})
    assert response.status_code == 302
    return html(browser.get(response.headers["Location"]))


def test_on_loopback_a_link_needs_confirming(db_path, api, story):
    _, browser = share_client(db_path, api, host="127.0.0.1")
    page = make_link(browser, story)
    assert "listens on this computer only" in page and "/s/" not in page.split("<main", 1)[1].split("Make a share link")[0]
    page = make_link(browser, story, confirm="yes")
    assert re.search(r"Share link made: http://localhost/s/[\w-]{22}", page)


def test_a_link_works_without_sign_in_until_revoked(db_path, api, other_api, story):
    app, browser = share_client(db_path, api, host="0.0.0.0")
    page = make_link(browser, story)  # not loopback: no confirmation asked
    slug = re.search(r"/s/([\w-]{22})", page).group(1)
    stranger = app.test_client()  # no cookie, no key
    shown = stranger.get(f"/s/{slug}")
    assert shown.status_code == 200 and "Content-Disposition" not in shown.headers
    body = shown.get_data(as_text=True)
    assert "Deploy &lt;script&gt;" in body and SECRET not in body and "[REDACTED]" in body
    assert shown.headers["X-Robots-Tag"] == "noindex, nofollow" and "script-src" not in shown.headers["Content-Security-Policy"]
    assert "default-src 'none'" in shown.headers["Content-Security-Policy"]
    # Listed to its owner (with its views), to nobody else: not in the API, not in another user's settings.
    settings = html(browser.get("/settings"))
    assert slug in settings and ">1<" in settings.split(slug, 1)[1][:400]
    assert slug not in api.get("/api/sessions").get_data(as_text=True)
    assert slug not in other_api.get("/api/sessions").get_data(as_text=True)
    other = app.test_client()
    sign_in(other, other_api.headers["Authorization"].removeprefix("Bearer "))
    assert slug not in html(other.get("/settings"))
    share_id = re.search(r"/shares/(\d+)/revoke", settings).group(1)
    assert other.post(f"/shares/{share_id}/revoke", data={"csrf": csrf_of(other.get("/settings"))}).status_code == 404
    # Revoked: 404, like a slug that never existed.
    assert browser.post(f"/shares/{share_id}/revoke", data={"csrf": csrf_of(browser.get("/settings"))}).status_code == 302
    assert stranger.get(f"/s/{slug}").status_code == 404
    assert stranger.get("/s/" + "A" * 22).status_code == 404
    assert slug not in html(browser.get("/settings"))


def test_links_stop_when_sharing_is_turned_off_and_go_with_their_session(db_path, api, story):
    app, browser = share_client(db_path, api, host="192.168.1.20")
    slug = re.search(r"/s/([\w-]{22})", make_link(browser, story)).group(1)
    assert app.test_client().get(f"/s/{slug}").status_code == 200
    off = sharing_app(db_path, OPENSYNC_SHARING=False)
    assert off.test_client().get(f"/s/{slug}").status_code == 404
    api.delete(f"/api/sessions/{story}")
    assert app.test_client().get(f"/s/{slug}").status_code == 404


def test_share_links_over_the_api(db_path, api, story):
    from conftest import Api

    off = Api(sharing_app(db_path).test_client(), api.headers["Authorization"].removeprefix("Bearer "))
    assert off.post("/api/sessions/s1/shares", {}).status_code == 403
    app = sharing_app(db_path, OPENSYNC_SHARING=True, OPENSYNC_LISTEN_HOST="127.0.0.1")
    on = Api(app.test_client(), api.headers["Authorization"].removeprefix("Bearer "))
    refused = on.post("/api/sessions/s1/shares", {})
    assert refused.status_code == 409 and "confirm" in refused.get_json()["fields"]
    assert on.post("/api/sessions/s1/shares", {"confirm": "yes"}).status_code == 400  # JSON true only
    made = on.post("/api/sessions/s1/shares", {"confirm": True})
    assert made.status_code == 201
    share = made.get_json()["share"]
    assert re.fullmatch(r"http://localhost/s/[\w-]{22}", share["url"]) and share["sessionId"] == str(story)
    listed = on.get("/api/shares").get_json()
    assert listed["sharing"] is True and [s["id"] for s in listed["shares"]] == [share["id"]]
    page = app.test_client().get(share["url"].removeprefix("http://localhost"))
    assert page.status_code == 200 and SECRET not in page.get_data(as_text=True)
    assert on.get("/api/shares").get_json()["shares"][0]["views"] == 1
    assert on.delete(f"/api/shares/{share['id']}").get_json() == {"ok": True, "revoked": share["id"]}
    assert on.delete(f"/api/shares/{share['id']}").status_code == 404
    assert app.test_client().get(share["url"].removeprefix("http://localhost")).status_code == 404
    assert on.get("/api/shares").get_json()["shares"] == []
