-- opensync-lite: the canonical schema. Applied at start-up; every statement is idempotent.
-- Times are integer epoch milliseconds (UTC). `extra` holds, as JSON text, the request keys
-- we do not model yet, so newer plugins lose nothing.
-- PRAGMA user_version records the schema version (see opensync_lite/db.py for migrations).

CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash      TEXT    NOT NULL UNIQUE,   -- SHA-256 hex of the key; the key itself is never stored
    prefix        TEXT    NOT NULL,          -- the first characters, to tell keys apart in listings
    label         TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);

CREATE TABLE IF NOT EXISTS sessions (
    id                 INTEGER PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    external_id        TEXT    NOT NULL,
    source             TEXT,               -- claude-code, opencode, cursor, ...; NULL = legacy/unknown
    title              TEXT,
    project_path       TEXT,
    project_name       TEXT,
    model              TEXT,
    provider           TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    cost               REAL    NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    message_count      INTEGER NOT NULL DEFAULT 0,
    tool_call_count    INTEGER NOT NULL DEFAULT 0,
    end_reason         TEXT,
    extra              TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (user_id, external_id)
);
CREATE INDEX IF NOT EXISTS sessions_by_user_source ON sessions (user_id, source);
CREATE INDEX IF NOT EXISTS sessions_by_user_updated ON sessions (user_id, updated_at);

CREATE TABLE IF NOT EXISTS messages (
    id                 INTEGER PRIMARY KEY,
    session_id         INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    external_id        TEXT    NOT NULL,
    role               TEXT    NOT NULL,
    text_content       TEXT    NOT NULL DEFAULT '',
    model              TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    extra              TEXT,
    created_at         INTEGER NOT NULL,
    UNIQUE (session_id, external_id)
);
CREATE INDEX IF NOT EXISTS messages_by_session_created ON messages (session_id, created_at);

CREATE TABLE IF NOT EXISTS parts (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    type        TEXT    NOT NULL,
    content     TEXT,                      -- JSON: a string or any JSON value; NULL = none
    extra       TEXT,
    "order"     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS parts_by_message ON parts (message_id, "order");
