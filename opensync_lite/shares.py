"""Share links: a random slug that shows one session at /s/<slug> without sign-in.

Links work only while the server allows sharing (``OPENSYNC_SHARING``, off by default) and
until they are revoked; a revoked or unknown slug is a 404 like any missing page, and no page
or API lists them to anyone but their owner.
"""

import ipaddress
import secrets

from flask import current_app, request, url_for

from .auth import now_ms
from .db import write_transaction
from .models import Session, Share


OFF = "Share links are off on this server: start it with --sharing (or OPENSYNC_SHARING=1)."


def create(user_id, session_id):
    """A new link to one of the user's sessions; returns its slug."""
    slug = secrets.token_urlsafe(16)
    with write_transaction(user_id):
        Share.insert(slug=slug, user=user_id, session=session_id, created_at=now_ms()).execute()
    return slug


def revoke(user_id, share_id):
    """Revoke one of the user's links; returns whether there was an active one."""
    with write_transaction(user_id):
        return bool(Share.update(revoked_at=now_ms()).where(
            Share.id == share_id, Share.user == user_id, Share.revoked_at.is_null()).execute())


def active(user_id, session_id=None):
    """The user's links that still work (of one session, when given), newest first, with
    each session's title."""
    query = (Share.select(Share.id, Share.slug, Share.created_at, Share.views, Share.session,
                          Session.title, Session.external_id)
             .join(Session).where(Share.user == user_id, Share.revoked_at.is_null()))
    if session_id is not None:
        query = query.where(Share.session == session_id)
    return list(query.order_by(Share.created_at.desc(), Share.id.desc()).dicts())


def opened(slug):
    """(user id, session id) of a working link, counting the view; None for any other slug."""
    with write_transaction():
        share = Share.get_or_none(Share.slug == slug, Share.revoked_at.is_null())
        if share is None:
            return None
        Share.update(views=Share.views + 1).where(Share.id == share.id).execute()
    return share.user_id, share.session_id


def is_loopback(host):
    """Whether ``host`` (a name or address, as the server listens on or is reached by) can be
    reached from this machine only."""
    host = (host or "").strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def state():
    """(allowed, loopback): whether this server allows links, and whether the address they
    would carry reaches this machine only (the address `serve` listens on; embedded, the one
    the request came to)."""
    host = current_app.config.get("OPENSYNC_LISTEN_HOST") or request.host.rsplit(":", 1)[0]
    return current_app.config["OPENSYNC_SHARING"], is_loopback(host)


def url(slug):
    return url_for("dashboard.shared", slug=slug, _external=True)
