"""Who is asking: API keys (generation, hashing, the one Bearer check every API route goes
through), one-time sign-in links for the dashboard, and its signed-in browsers."""

import hashlib
import secrets
import time

from flask import g, request
from peewee import JOIN, fn

from .db import prepared, slot, write_transaction
from .errors import ApiError
from .models import ApiKey, Signin, SigninToken, User

KEY_PREFIX = "osk_"
DISPLAY_CHARS = 12  # "osk_" + 8: enough to tell keys apart, useless to an attacker
LAST_USED_RESOLUTION_MS = 60_000  # record use at most once a minute: no write per request
SIGNIN_TTL_MS = 10 * 60_000
SIGNIN_IDLE_MS = 30 * 24 * 3600_000  # a browser unseen this long is signed out
USER_AGENT_CHARS = 300


def now_ms():
    return int(time.time() * 1000)


def generate_key():
    """``osk_`` followed by 32 URL-safe characters (192 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_key(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def get_or_create_user(name):
    user = User.get_or_none(User.name == name)
    if user is None:
        with write_transaction():
            User.insert(name=name, created_at=now_ms()).on_conflict_ignore().execute()
        user = User.get(User.name == name)
    return user


def create_key(user_name, label="", default_source=None):
    """Create a key for ``user_name`` (made if missing). Returns (key, ApiKey); the clear key
    exists only in the return value. ``default_source`` is the source of the sessions synced
    with this key that name none (e.g. "opencode", whose plugin sends no source)."""
    user = get_or_create_user(user_name)
    key = generate_key()
    with write_transaction():
        row = ApiKey.create(
            user=user, key_hash=hash_key(key), prefix=key[:DISPLAY_CHARS], label=label, created_at=now_ms(),
            default_source=None if default_source in (None, "", "unknown") else default_source,
        )
    return key, row


def find_keys(prefix_or_id):
    """Keys matching an id or a display prefix (``osk_…`` as printed by ``keys list``)."""
    query = ApiKey.select()
    if prefix_or_id.isascii() and prefix_or_id.isdigit():
        return list(query.where(ApiKey.id == int(prefix_or_id)))
    prefix = prefix_or_id[:DISPLAY_CHARS]
    # Compared exactly: keys differ in case (LIKE, peewee's startswith, would not tell them apart).
    return list(query.where(fn.SUBSTR(ApiKey.prefix, 1, len(prefix)) == prefix))


def has_active_key():
    return ApiKey.select().where(ApiKey.revoked_at.is_null()).exists()


def revoke_key(key_row):
    with write_transaction():
        if ApiKey.update(revoked_at=now_ms()).where(ApiKey.id == key_row.id, ApiKey.revoked_at.is_null()).execute():
            _end_key_signins(key_row.id)


def key_user(key):
    """(key id, user id, default source) for an active key, or None. Records when the key
    was last used."""
    key = key.strip()
    if not key.startswith(KEY_PREFIX) or len(key) > 256:
        return None
    row = prepared(
        "find_key",
        lambda: ApiKey.select(ApiKey.id, ApiKey.user, ApiKey.last_used_at, ApiKey.default_source)
        .where(ApiKey.key_hash == slot("hash"), ApiKey.revoked_at.is_null())
        .limit(1),
        {"hash": hash_key(key)},
    ).fetchone()
    if row is None:
        return None
    key_id, user_id, last_used_at, default_source = row
    now = now_ms()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION_MS:
        with write_transaction():
            ApiKey.update(last_used_at=now).where(ApiKey.id == key_id).execute()
    return key_id, user_id, default_source


def require_user():
    """before_request hook: resolve the Bearer key to a user and keep it in ``g.user_id``."""
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "Missing API key: send Authorization: Bearer osk_...")
    if not key.startswith(KEY_PREFIX) or len(key) > 256:
        raise ApiError(401, "Malformed API key.")
    found = key_user(key)
    if found is None:
        raise ApiError(401, "Unknown or revoked API key.")
    _, g.user_id, g.default_source = found


def user_keys(user_id):
    """A user's keys, newest first (revoked ones too)."""
    return list(ApiKey.select().where(ApiKey.user == user_id).order_by(ApiKey.id.desc()))


def revoke_user_key(user_id, key_id):
    """Revoke one of the user's own keys; False when it is not theirs or already revoked."""
    with write_transaction():
        revoked = bool(
            ApiKey.update(revoked_at=now_ms())
            .where(ApiKey.id == key_id, ApiKey.user == user_id, ApiKey.revoked_at.is_null())
            .execute()
        )
        if revoked:
            _end_key_signins(key_id)
        return revoked


def _end_key_signins(key_id):
    """The browsers signed in with a key end with it (their lookup also checks the key)."""
    Signin.update(ended_at=now_ms()).where(Signin.key == key_id, Signin.ended_at.is_null()).execute()


# --- dashboard sign-in ------------------------------------------------------------------------

def create_signin_token(user_name, ttl_ms=SIGNIN_TTL_MS):
    """A one-time sign-in token for ``user_name`` (made if missing), valid for ``ttl_ms``.
    Only its hash is stored; the token exists only in the return value."""
    user = get_or_create_user(user_name)
    token = secrets.token_urlsafe(24)
    now = now_ms()
    with write_transaction():
        SigninToken.delete().where(SigninToken.expires_at < now).execute()  # keep the table small
        SigninToken.create(user=user, token_hash=hash_key(token), created_at=now, expires_at=now + ttl_ms)
    return token


def redeem_signin_token(token):
    """The user id a valid, unused, unexpired token signs in, marking it used; else None.
    One UPDATE decides, so two requests racing with the same token cannot both win."""
    if not token or len(token) > 256:
        return None
    token_hash = hash_key(token)
    now = now_ms()
    with write_transaction():
        used = (
            SigninToken.update(used_at=now)
            .where(SigninToken.token_hash == token_hash, SigninToken.used_at.is_null(), SigninToken.expires_at > now)
            .execute()
        )
        if not used:
            return None
        return SigninToken.get(SigninToken.token_hash == token_hash).user_id


def user_name(user_id):
    return User.get_by_id(user_id).name


# --- signed-in browsers ----------------------------------------------------------------------

def start_signin(user_id, key_id=None, user_agent=""):
    """A new signed-in browser of ``user_id`` (``key_id``: the key it signed in with; None for a
    one-time link). Returns the token for its cookie; only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    now = now_ms()
    with write_transaction():
        Signin.delete().where(Signin.ended_at.is_null(False) | (Signin.last_seen_at < now - SIGNIN_IDLE_MS)).execute()
        Signin.insert(user=user_id, token_hash=hash_key(token), key=key_id, csrf=secrets.token_urlsafe(24),
                      user_agent=(user_agent or "")[:USER_AGENT_CHARS], created_at=now, last_seen_at=now).execute()
    return token


def _live_signins(now):
    """Sign-ins not ended, seen within SIGNIN_IDLE_MS, whose key (if any) is not revoked."""
    return (Signin.select(Signin.id, Signin.user, Signin.csrf, Signin.user_agent, Signin.created_at,
                          Signin.last_seen_at, Signin.notices, Signin.key, ApiKey.prefix, ApiKey.label)
            .join(ApiKey, JOIN.LEFT_OUTER, on=(Signin.key == ApiKey.id))
            .where(Signin.ended_at.is_null(), Signin.last_seen_at > now - SIGNIN_IDLE_MS,
                   Signin.key.is_null() | ApiKey.revoked_at.is_null()))


def find_signin(token):
    """The live sign-in a cookie's token names, as a dict (``seen_now``: its last-seen time was
    just moved, at most once a minute), or None."""
    if not token or len(token) > 256:
        return None
    now = now_ms()
    row = _live_signins(now).where(Signin.token_hash == hash_key(token)).dicts().first()
    if row is None:
        return None
    row["seen_now"] = now - row["last_seen_at"] > LAST_USED_RESOLUTION_MS
    if row["seen_now"]:
        with write_transaction():
            Signin.update(last_seen_at=now).where(Signin.id == row["id"]).execute()
    return row


def user_signins(user_id):
    """The user's live sign-ins, most recently seen first."""
    return list(_live_signins(now_ms()).where(Signin.user == user_id)
                .order_by(Signin.last_seen_at.desc(), Signin.id.desc()).dicts())


def end_signins(user_id, only=None, keep=None):
    """Sign out the user's browsers: one (``only``), or every one but ``keep``. Returns how many."""
    query = Signin.update(ended_at=now_ms()).where(Signin.user == user_id, Signin.ended_at.is_null())
    if only is not None:
        query = query.where(Signin.id == only)
    if keep is not None:
        query = query.where(Signin.id != keep)
    with write_transaction():
        return query.execute()


def set_notices(signin_id, notices):
    with write_transaction():
        Signin.update(notices=notices or None).where(Signin.id == signin_id).execute()
