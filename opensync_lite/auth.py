"""API keys: generation, hashing, and the one Bearer check every protected route goes through."""

import hashlib
import secrets
import time

from flask import g, request
from peewee import fn

from .db import prepared, slot, write_transaction
from .errors import ApiError
from .models import ApiKey, User

KEY_PREFIX = "osk_"
DISPLAY_CHARS = 12  # "osk_" + 8: enough to tell keys apart, useless to an attacker
LAST_USED_RESOLUTION_MS = 60_000  # record use at most once a minute: no write per request


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


def create_key(user_name, label=""):
    """Create a key for ``user_name`` (made if missing). Returns (key, ApiKey); the clear key
    exists only in the return value."""
    user = get_or_create_user(user_name)
    key = generate_key()
    with write_transaction():
        row = ApiKey.create(
            user=user, key_hash=hash_key(key), prefix=key[:DISPLAY_CHARS], label=label, created_at=now_ms()
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
        ApiKey.update(revoked_at=now_ms()).where(ApiKey.id == key_row.id, ApiKey.revoked_at.is_null()).execute()


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
    row = prepared(
        "find_key",
        lambda: ApiKey.select(ApiKey.id, ApiKey.user, ApiKey.last_used_at)
        .where(ApiKey.key_hash == slot("hash"), ApiKey.revoked_at.is_null())
        .limit(1),
        {"hash": hash_key(key)},
    ).fetchone()
    if row is None:
        raise ApiError(401, "Unknown or revoked API key.")
    key_id, g.user_id, last_used_at = row
    now = now_ms()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION_MS:
        with write_transaction():
            ApiKey.update(last_used_at=now).where(ApiKey.id == key_id).execute()
