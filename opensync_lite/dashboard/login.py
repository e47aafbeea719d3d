"""Who is looking at the dashboard: Flask's signed session cookie holds the user (and the key
they signed in with, so revoking the key signs them out); every form carries a CSRF token."""

import hmac
import secrets

from flask import abort, g, redirect, request, session, url_for

from .. import auth

USER = "opensync_user"  # {"id": user id, "key": key id or None (a one-time link)}
CSRF = "opensync_csrf"
OPEN_ENDPOINTS = {"dashboard.signin", "dashboard.static", "dashboard.shared"}  # /s/<slug>: a share link


def sign_in(user_id, key_id=None):
    session[USER] = {"id": user_id, "key": key_id}
    session[CSRF] = secrets.token_urlsafe(24)  # a new session gets a new token
    session.permanent = True


def sign_out():
    session.pop(USER, None)
    session.pop(CSRF, None)


def current_user():
    """The signed-in user's id, or None (also when their key was revoked since)."""
    if "dashboard_user" not in g:
        held = session.get(USER)
        user_id = None
        if isinstance(held, dict) and isinstance(held.get("id"), int):
            key_id = held.get("key")
            if auth.user_exists(held["id"]) and (key_id is None or auth.key_is_active(key_id)):
                user_id = held["id"]
        g.dashboard_user = user_id
    return g.dashboard_user


def csrf_token():
    if CSRF not in session:
        session[CSRF] = secrets.token_urlsafe(24)
    return session[CSRF]


def safe_next(target):
    """Only a path on this server: never another host (//evil.example, https://…)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def guard():
    """before_request: every page but sign-in needs a user; every POST a valid CSRF token."""
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not (CSRF in session and hmac.compare_digest(sent, session[CSRF])):
            abort(400, "This form has expired (or came from another site). Reload the page and try again.")
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    user_id = current_user()
    if user_id is None:
        if request.endpoint == "dashboard.live":
            abort(401)
        return redirect(url_for("dashboard.signin", next=request.full_path.rstrip("?")))
    g.user_id = user_id
    return None
