"""Dashboard sign-in: a cookie of our own holding only a token whose record sign-out, Settings
and revoking a key end everywhere; where `next=` may lead; the Host names the dashboard answers;
its error pages (HTML) beside the API's (JSON)."""

import hashlib
import http.client
import http.cookiejar
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
from flask import Flask, session
from werkzeug.serving import make_server

from opensync_lite import auth, create_app, init_app, queries, shares

from conftest import CLI, LiveServer, downgrade_to_version_4, make_key, rows
from test_dashboard import csrf_of, html, sign_in

pytestmark = pytest.mark.both_databases

COOKIE = "opensync_lite_session"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # what browsers send


def key_of(api):
    return api.headers["Authorization"].removeprefix("Bearer ")


def browser_of(app, agent=None):
    client = app.test_client()
    if agent:
        client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def signed_in(app, key, agent=None):
    client = browser_of(app, agent)
    sign_in(client, key)
    return client


def post_form(client, path, **fields):
    """POST a dashboard form with the CSRF token of the client's Settings page."""
    return client.post(path, data={"csrf": csrf_of(client.get("/settings")), **fields})


def signin_rows(page):
    """The rows of the Settings page's table of signed-in browsers."""
    table = page.split('class="data signins"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr(?: [^>]*)?>.*?</tr>", table.split("<tbody>", 1)[1], re.DOTALL)


# --- the cookie and the sign-in records ---------------------------------------------------------

def test_the_cookie_is_our_own_and_holds_only_a_random_token(app, api, db_path):
    client = app.test_client()
    response = sign_in(client, key_of(api))
    set_names = {header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")}
    assert COOKIE in set_names and "session" not in set_names
    token = client.get_cookie(COOKIE).value
    assert re.fullmatch(r"[\w-]{40,}", token) and client.get_cookie("session") is None
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert rows(db_path, "SELECT COUNT(*) FROM signins WHERE token_hash = ? AND ended_at IS NULL", (digest,)) == [(1,)]
    assert html(client.get("/")) and client.get_cookie("session") is None


def test_sign_out_ends_the_sign_in_wherever_the_cookie_was_copied(app, api):
    first = app.test_client()
    copy = app.test_client()
    for header in sign_in(first, key_of(api)).headers.getlist("Set-Cookie"):  # every cookie, whatever its name
        name, _, value = header.split(";", 1)[0].partition("=")
        if value:
            copy.set_cookie(name, value)
    assert copy.get("/sessions").status_code == 200
    first.post("/signout", data={"csrf": csrf_of(first.get("/"))})
    response = copy.get("/sessions")
    assert response.status_code == 302 and response.headers["Location"] == "/signin?next=/sessions"
    # A form sent with the copied cookie starts over at the sign-in page too, and changes nothing.
    assert copy.post("/settings/keys", data={"csrf": "anything", "label": "x"}).headers["Location"] == "/signin"


def test_settings_lists_the_signed_in_browsers_and_signs_them_out(app, api):
    key = key_of(api)
    with app.app_context():
        token = auth.create_signin_token("local")
    by_link = browser_of(app, FIREFOX)
    by_link.post("/signin", data={"csrf": csrf_of(by_link.get(f"/signin?token={token}")), "token": token})
    other = signed_in(app, key, CHROME)
    me = signed_in(app, key, "curl/8.5.0")
    listed = signin_rows(html(me.get("/settings")))
    assert len(listed) == 3
    (mine,) = [row for row in listed if "this browser" in row]
    assert "curl 8" in mine and f"key <code>{key[:12]}…</code>" in mine
    (link_row,) = [row for row in listed if "one-time link" in row]
    assert "Firefox 128 on Linux" in link_row and f'title="{FIREFOX}"' in link_row
    assert any("Chrome 126 on Windows" in row for row in listed)

    # One row: the link's sign-in ends, the others go on.
    end = re.search(r'action="(/settings/signins/\d+/end)"', link_row).group(1)
    assert post_form(me, end).headers["Location"] == "/settings#signins"
    assert by_link.get("/").status_code == 302 and other.get("/").status_code == 200
    page = html(me.get("/settings"))
    assert "That browser is signed out" in page and len(signin_rows(page)) == 2

    # All the others: this one stays.
    post_form(me, "/settings/signins/end-others")
    page = html(me.get("/settings"))
    assert "Signed out 1 other browser." in page and len(signin_rows(page)) == 1
    assert other.get("/").status_code == 302 and me.get("/").status_code == 200

    # Everywhere: this one too.
    again = signed_in(app, key)
    assert post_form(me, "/settings/signins/end-all").headers["Location"] == "/signin"
    assert me.get("/").status_code == 302 and again.get("/").status_code == 302


def test_signing_out_this_browser_from_its_own_row(app, api):
    me = signed_in(app, key_of(api))
    (row,) = signin_rows(html(me.get("/settings")))
    end = re.search(r'action="(/settings/signins/\d+/end)"', row).group(1)
    assert post_form(me, end).headers["Location"] == "/signin" and me.get("/").status_code == 302


def test_revoking_a_key_ends_the_sign_ins_made_with_it(app, api, db_path):
    with app.app_context():
        second, row = auth.create_key("local", "second")
    with_first, with_second = signed_in(app, key_of(api)), signed_in(app, second)
    post_form(with_first, f"/settings/keys/{row.id}/revoke")
    assert with_second.get("/").status_code == 302 and with_first.get("/").status_code == 200
    assert rows(db_path, "SELECT COUNT(*) FROM signins WHERE key_id = ? AND ended_at IS NOT NULL", (row.id,)) == [(1,)]
    assert len(signin_rows(html(with_first.get("/settings")))) == 1
    # The command line's `keys revoke` does the same.
    subprocess.run(CLI + ["keys", "revoke", key_of(api)[:12], "--db", db_path], check=True, capture_output=True)
    assert with_first.get("/").status_code == 302


def test_a_sign_in_is_seen_at_most_once_a_minute_and_ends_after_30_idle_days(app, api, db_path):
    client = signed_in(app, key_of(api))
    [(seen,)] = rows(db_path, "SELECT last_seen_at FROM signins")
    client.get("/")
    assert rows(db_path, "SELECT last_seen_at FROM signins") == [(seen,)]  # no write per request
    rows(db_path, "UPDATE signins SET last_seen_at = last_seen_at - 120000")
    response = client.get("/")
    [(now_seen,)] = rows(db_path, "SELECT last_seen_at FROM signins")
    assert now_seen >= seen and f"{COOKIE}=" in response.headers["Set-Cookie"]  # the cookie lives on too
    assert "Max-Age=2592000" in response.headers["Set-Cookie"]
    rows(db_path, "UPDATE signins SET last_seen_at = ?", (int(time.time() * 1000) - 31 * 86_400_000,))
    assert client.get("/").status_code == 302


def test_nobody_signs_out_another_users_browser(app, api, other_api, db_path):
    victim, mallory = signed_in(app, key_of(api)), signed_in(app, key_of(other_api), CHROME)
    [(victim_id,)] = rows(db_path, "SELECT s.id FROM signins s JOIN users u ON u.id = s.user_id WHERE u.name = 'local'")
    assert post_form(mallory, f"/settings/signins/{victim_id}/end").status_code == 404
    assert len(signin_rows(html(mallory.get("/settings")))) == 1  # only mallory's own
    post_form(mallory, "/settings/signins/end-others")
    post_form(mallory, "/settings/signins/end-all")
    assert victim.get("/").status_code == 200


def test_a_database_from_before_sign_in_records_gets_them(db_path, api, app):
    """A version 4 database (no signins table) is migrated at the next start, and signs in."""
    app.extensions["opensync"].close()
    downgrade_to_version_4(db_path)
    upgraded = create_app({"OPENSYNC_DB": db_path, "TESTING": True})
    try:
        client = signed_in(upgraded, key_of(api))
        assert client.get("/").status_code == 200
        assert rows(db_path, "SELECT COUNT(*) FROM signins") == [(1,)]
    finally:
        upgraded.extensions["opensync"].close()


def test_a_host_app_keeps_its_own_session_beside_the_dashboard(db_path):
    host = Flask("host")
    host.config.update(OPENSYNC_DB=db_path, SECRET_KEY="the host's own secret")

    @host.post("/cart")
    def add():
        session["cart"] = "apples"
        return "added"

    @host.get("/cart")
    def show():
        return session.get("cart", "empty")

    @host.post("/logout")
    def logout():
        session.clear()
        return "bye"

    init_app(host, url_prefix="/opensync")
    try:
        client = host.test_client()
        client.post("/cart")
        page = client.get("/opensync/signin")
        client.post("/opensync/signin", data={"csrf": csrf_of(page), "key": make_key(host)})
        assert client.get("/cart").get_data(as_text=True) == "apples"
        assert client.get_cookie(COOKIE, path="/opensync/") is not None  # scoped to the mount
        client.post("/logout")  # the host clears its session: the dashboard stays signed in
        assert client.get("/opensync/").status_code == 200
        client.post("/cart")
        client.post("/opensync/signout", data={"csrf": csrf_of(client.get("/opensync/"))})
        assert client.get("/opensync/").status_code == 302
        assert client.get("/cart").get_data(as_text=True) == "apples"
    finally:
        host.extensions["opensync"].close()


def test_over_http_other_local_apps_leave_the_cookie_alone_and_a_copy_stops_at_sign_out(live_server):
    key = live_server.create_key()
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def form(opener, path, **fields):
        return opener.open(live_server.url + path, data=urllib.parse.urlencode(fields).encode(), timeout=10)

    page = browser.open(live_server.url + "/signin", timeout=10).read().decode()
    assert form(browser, "/signin", csrf=csrf_of_text(page), key=key, next="/settings").url == live_server.url + "/settings"

    # Another Flask app on 127.0.0.1 (another port: browsers do not tell ports apart) sets its own session cookie.
    other = Flask("other")
    other.secret_key = "another app"

    @other.get("/")
    def home():
        session["theirs"] = True
        return "another local app"

    server = make_server("127.0.0.1", 0, other)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert browser.open(f"http://127.0.0.1:{server.server_port}/", timeout=10).read() == b"another local app"
    finally:
        server.shutdown()
    assert browser.open(live_server.url + "/settings", timeout=10).url == live_server.url + "/settings"
    assert {cookie.name for cookie in jar} == {COOKIE, "session"}  # side by side

    # The cookie copied into a second browser works until the first one signs out.
    copied = http.cookiejar.CookieJar()
    for cookie in jar:
        copied.set_cookie(cookie)
    thief = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(copied))
    assert thief.open(live_server.url + "/settings", timeout=10).url == live_server.url + "/settings"
    settings = browser.open(live_server.url + "/settings", timeout=10).read().decode()
    assert form(browser, "/signout", csrf=csrf_of_text(settings)).url == live_server.url + "/signin"
    assert thief.open(live_server.url + "/settings", timeout=10).url == live_server.url + "/signin?next=/settings"


def csrf_of_text(text):
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


# --- where next= may lead -----------------------------------------------------------------------

NASTY_NEXT = ["/%09/evil.example", "/\t/evil.example", "/\\evil.example", "/%5Cevil.example", "//evil.example",
              "/\r\n/evil.example", "/\n/evil.example", "https:evil.example", "/%2F/evil.example", "/%252F/evil.example",
              "\\\\evil.example", "///evil.example", "/\x00/evil.example", "https://evil.example/", " //evil.example",
              "/.%2F/evil.example", "/\x85/evil.example", "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1",
              "/" + "a" * 3000]
LOCAL_NEXT = ["/sessions?source=cursor&q=a%2Fb", "/files?path=C%3A%5Cwork%5Cparse.py", "/sessions/12#m3", "/"]


def test_next_never_leads_off_the_server(app, api):
    key = key_of(api)
    for target in NASTY_NEXT + LOCAL_NEXT:
        client = app.test_client()
        page = client.get("/signin", query_string={"next": target})
        assert page.status_code == 200
        response = client.post("/signin", data={"csrf": csrf_of(page), "key": key, "next": target})
        assert response.status_code == 302, repr(target)
        assert response.headers["Location"] == (target if target in LOCAL_NEXT else "/"), repr(target)
        if target not in LOCAL_NEXT:  # the same check guards every form's way back
            bulk = client.post("/sessions/bulk", data={"csrf": csrf_of(client.get("/")), "next": target})
            assert bulk.headers["Location"] == "/sessions", repr(target)


def test_a_page_comes_back_after_sign_in_with_its_query(app, api):
    client = app.test_client()
    sent = client.get("/sessions?q=a%0Ab&source=cursor")
    page = client.get(sent.headers["Location"])
    back = client.post("/signin", data={"csrf": csrf_of(page), "key": key_of(api),
                                        "next": re.search(r'name="next" value="([^"]+)"', html(page)).group(1).replace("&amp;", "&")})
    assert back.headers["Location"] == "/sessions?q=a%0Ab&source=cursor"


# --- ids too large, and the error pages -----------------------------------------------------------

# Every dashboard route that takes an <int:…> id (checked against the app's routes below).
INT_ROUTES = (("GET", "/sessions/{}"), ("POST", "/sessions/{}/curate"), ("GET", "/sessions/{}/download.json"),
              ("POST", "/sessions/{}/shares"), ("POST", "/shares/{}/revoke"), ("POST", "/sessions/{}/delete"),
              ("POST", "/sessions/{}/star"), ("POST", "/settings/keys/{}/revoke"), ("POST", "/settings/signins/{}/end"),
              ("POST", "/settings/budgets/{}/delete"))


def test_every_dashboard_route_with_an_int_id_is_in_the_ids_too_large_test(app):
    from werkzeug.routing import IntegerConverter
    routes = set()
    for rule in app.url_map.iter_rules():
        ints = [name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)]
        if ints and rule.endpoint.startswith("dashboard."):
            path = re.sub(r"<int:\w+>", "{}", rule.rule).replace("<any(markdown, json, html):fmt>", "json")
            routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes and routes <= set(INT_ROUTES), routes - set(INT_ROUTES)


def test_ids_too_large_for_the_database_are_404(app, api):
    client = signed_in(app, key_of(api))
    csrf = csrf_of(client.get("/settings"))
    for big in (2**63, 10**20):
        for method, path in ((method, path.format(big)) for method, path in INT_ROUTES):
            response = client.open(path, method=method, data={"csrf": csrf} if method == "POST" else None)
            assert (response.status_code, response.mimetype) == (404, "text/html"), path
        response = api.delete(f"/api/shares/{big}")
        assert response.status_code == 404 and "error" in response.get_json()
    assert client.get(f"/sessions/{2**63 - 1}").status_code == 404  # the largest id is simply not there


def test_dashboard_errors_are_pages_and_the_api_keeps_json(app, api, monkeypatch):
    client = signed_in(app, key_of(api))
    missing = client.get("/no/such/page", headers=PAGE)
    assert (missing.status_code, missing.mimetype) == (404, "text/html") and "Not found" in missing.get_data(as_text=True)
    assert "frame-ancestors 'none'" in missing.headers["Content-Security-Policy"]
    for path in ("/signout", "/sessions/1/delete", "/settings/signins/end-all"):  # GET where only POST goes
        wrong = client.get(path)
        assert (wrong.status_code, wrong.mimetype) == (405, "text/html") and "POST" in wrong.headers["Allow"], path

    def broken(*args, **kwargs):
        raise RuntimeError("SELECT * FROM api_keys -- Traceback")

    monkeypatch.setattr(queries, "summary", broken)
    monkeypatch.setattr(queries, "list_sessions", broken)
    failed = client.get("/")
    body = failed.get_data(as_text=True)
    assert (failed.status_code, failed.mimetype) == (500, "text/html") and "api_keys" not in body
    assert "<h1>" in body and 'href="/settings"' in body  # the page, with its navigation
    # The API and sync routes answer JSON, browser or not.
    for response in (client.get("/api/nowhere", headers=PAGE), api.get("/sync/session"), client.get("/no/such/route"),
                     api.get("/api/sessions")):
        assert response.mimetype == "application/json" and "error" in response.get_json()


# --- the Host names the dashboard answers -------------------------------------------------------

def test_the_dashboard_answers_loopback_names_only_by_default(app, api):
    client = app.test_client()
    for host in ("127.0.0.1:8765", "localhost", "LOCALHOST:1", "[::1]:8765", "127.0.0.1"):
        assert client.get("/signin", headers={"Host": host}).status_code == 200, host
    browser = signed_in(app, key_of(api))
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil.example:8765",
                 "192.168.1.20:8765"):
        for who, path in ((client, "/signin"), (browser, "/"), (browser, "/settings"), (browser, "/live")):
            response = who.get(path, headers={"Host": host})
            assert response.status_code == 421, (host, path)
            assert "osk_" not in response.get_data(as_text=True)
        page = browser.get("/sessions", headers={"Host": host})
        assert page.mimetype == "text/html" and "--allowed-host" in page.get_data(as_text=True)
        # A plugin syncing by a LAN name, or a proxy's, keeps working: the key is the check there.
        synced = api.client.post("/sync/session", json={"externalId": f"via-{host}"}, headers={**api.headers, "Host": host})
        assert synced.status_code == 200
        assert api.client.get("/api/sessions", headers={**api.headers, "Host": host}).status_code == 200


def test_share_links_answer_any_name(db_path, api):
    """/s/<slug> needs no sign-in and its slug is its secret: it works through a tunnel's name."""
    app = create_app({"OPENSYNC_DB": db_path, "OPENSYNC_SHARING": True})
    try:
        api.post("/sync/session", {"externalId": "shared-1", "title": "Shown"})
        with app.app_context():
            slug = shares.create(auth.get_or_create_user("local").id, int(api.session("shared-1")["session"]["id"]))
        client = app.test_client()
        assert client.get(f"/s/{slug}", headers={"Host": "abc.tunnel.example"}).status_code == 200
        assert client.get("/signin", headers={"Host": "abc.tunnel.example"}).status_code == 421
    finally:
        app.extensions["opensync"].close()


def test_allowed_hosts_setting(db_path):
    app = create_app({"OPENSYNC_DB": db_path, "OPENSYNC_ALLOWED_HOSTS": ["sync.lan", "proxy.example:8443"]})
    try:
        client = app.test_client()
        for host, status in (("sync.lan", 200), ("SYNC.LAN.:8765", 200), ("proxy.example:8443", 200),
                             ("proxy.example", 421), ("proxy.example:80", 421), ("sync.lan.evil.example", 421),
                             ("localhost:8765", 200)):
            assert client.get("/signin", headers={"Host": host}).status_code == status, host
    finally:
        app.extensions["opensync"].close()


def _status(server, path, host, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type")
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_serve_answers_the_allowed_hosts(db_path, how):
    if how == "option":
        server = LiveServer(db_path, args=["--allowed-host", "sync.lan", "--allowed-host", "proxy.lan"])
    else:
        server = LiveServer(db_path, env={"OPENSYNC_ALLOWED_HOSTS": "sync.lan, proxy.lan"})
    try:
        key = server.create_key()
        for host in ("sync.lan:8765", "proxy.lan", f"127.0.0.1:{server.port}"):
            assert _status(server, "/signin", host)[0] == 200, host
        status, kind = _status(server, "/signin", "evil.example")
        assert status == 421 and kind.startswith("text/html")
        assert _status(server, "/api/sessions", "evil.example", {"Authorization": f"Bearer {key}"})[0] == 200
    finally:
        server.stop()


def test_serve_help_names_the_allowed_hosts_variable():
    out = subprocess.run(CLI + ["serve", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--allowed-host" in out and "OPENSYNC_ALLOWED_HOSTS" in out
