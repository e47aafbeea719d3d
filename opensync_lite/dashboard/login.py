"""Who is looking at the dashboard. A cookie of our own holds a random token whose hash finds a
sign-in record (``auth``): the user, the key signed in with, the CSRF token of this browser's
forms and the notices for its next page. Not Flask's ``session`` cookie: every other Flask app
on 127.0.0.1 (any port) would receive and overwrite it, and an embedding host keeps its own.
Before sign-in, the sign-in form's CSRF token lives in a second cookie of ours."""

import hmac
import secrets
from urllib.parse import unquote, urlsplit

from flask import abort, g, redirect, request, url_for

from .. import auth

COOKIE = "opensync_lite_session"
CSRF_COOKIE = "opensync_lite_csrf"
OPEN_ENDPOINTS = {"dashboard.signin", "dashboard.static", "dashboard.shared",  # /s/<slug>: a share link
                  "dashboard.favicon"}
MAX_NEXT = 2000


def _cookie_options():
    # Scoped to the dashboard's mount ("/" or a host app's prefix): not sent to the host's pages.
    return {"path": url_for("dashboard.overview"), "secure": request.is_secure, "httponly": True, "samesite": "Lax"}


def _signin():
    """This browser's live sign-in record (a dict), or None; looked up once per request."""
    if "dashboard_signin" not in g:
        g.dashboard_signin = auth.find_signin(request.cookies.get(COOKIE, ""))
    return g.dashboard_signin


def current_user():
    """The signed-in user's id, or None (also when the sign-in was ended or its key revoked)."""
    held = _signin()
    return held["user"] if held else None


def current_signin():
    """The id of this browser's sign-in record, or None."""
    held = _signin()
    return held["id"] if held else None


def sign_in(response, user_id, key_id=None):
    """``response``, signing this browser in with a new record (ending the one it had)."""
    held = _signin()
    if held:
        auth.end_signins(held["user"], only=held["id"])
    token = auth.start_signin(user_id, key_id, request.user_agent.string)
    response.set_cookie(COOKIE, token, max_age=auth.SIGNIN_IDLE_MS // 1000, **_cookie_options())
    response.delete_cookie(CSRF_COOKIE, **_cookie_options())
    return response


def sign_out(response, everywhere=False):
    """``response``, ending this browser's sign-in (or every one of its user's) and its cookie."""
    held = _signin()
    if held:
        auth.end_signins(held["user"], only=None if everywhere else held["id"])
    response.delete_cookie(COOKIE, **_cookie_options())
    return response


def csrf_token():
    """The token this browser's forms carry: its sign-in's, or before sign-in the CSRF cookie's."""
    held = _signin()
    if held:
        return held["csrf"]
    if "new_csrf" not in g:
        sent = request.cookies.get(CSRF_COOKIE, "")
        g.new_csrf = sent if 20 <= len(sent) <= 64 and sent.isascii() else secrets.token_urlsafe(24)
    return g.new_csrf


def save(response):
    """after_request: the CSRF cookie a page handed out, and a fresh cookie lifetime for a
    sign-in in use (its record's last-seen time moved)."""
    if g.get("new_csrf") and request.cookies.get(CSRF_COOKIE) != g.new_csrf and not g.get("dashboard_signin"):
        response.set_cookie(CSRF_COOKIE, g.new_csrf, **_cookie_options())
    held = g.get("dashboard_signin")
    if held and held["seen_now"] and COOKIE not in _set_cookies(response):
        response.set_cookie(COOKIE, request.cookies[COOKIE], max_age=auth.SIGNIN_IDLE_MS // 1000, **_cookie_options())
    return response


def _set_cookies(response):
    return {header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")}


def notify(message):
    """Show ``message`` on this browser's next page (after a redirect)."""
    held = _signin()
    held["notices"] = [*(held["notices"] or []), message]
    auth.set_notices(held["id"], held["notices"])


def take_notices():
    """The notices waiting for this page, which then are shown and gone."""
    held = _signin()
    if not held or not held["notices"]:
        return []
    notices, held["notices"] = held["notices"], None
    auth.set_notices(held["id"], None)
    return notices


def safe_next(target):
    """``target`` when it is a path on this server, else None. Browsers drop tabs and newlines
    from a Location, read a backslash as a slash and ``//`` as another host; some clients decode
    %XX first: so no control character, backslash or empty path segment, raw or decoded."""
    if not isinstance(target, str) or not target.startswith("/") or len(target) > MAX_NEXT:
        return None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return None
    path = target.split("?", 1)[0].split("#", 1)[0]
    decoded = path
    for _ in range(3):  # %255C: decoded twice by a careless proxy
        decoded = unquote(decoded)
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\\" for c in decoded) or "//" in decoded:
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def guard():
    """before_request: every page but sign-in (and share links) needs a live sign-in; every
    POST this browser's CSRF token."""
    if request.endpoint not in OPEN_ENDPOINTS and current_user() is None:
        if request.endpoint == "dashboard.live":
            abort(401)
        # A page comes back after sign-in; a form sent after its sign-in ended starts over.
        back = request.full_path.rstrip("?") if request.method in ("GET", "HEAD") else None
        return redirect(url_for("dashboard.signin", next=safe_next(back)))
    if request.method == "POST":
        sent = request.form.get("csrf", "").encode("utf-8", "replace")
        if not hmac.compare_digest(sent, csrf_token().encode()):
            abort(400, "This form has expired (or came from another site). Reload the page and try again.")
    if request.endpoint not in OPEN_ENDPOINTS:
        g.user_id = current_user()
    return None
