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
    revoked_at    INTEGER,
    default_source TEXT                      -- the source of sessions synced with it that name none
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);

-- AUTOINCREMENT: an id is never reused, so a retried DELETE or an old link can never reach a
-- session (or message) created after the one it meant.
-- One-time sign-in links for the dashboard (`opensync-lite serve` / `open` print them): only
-- the hash is kept, each works once and for ten minutes.
CREATE TABLE IF NOT EXISTS signin_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- Signed-in dashboard browsers. The cookie holds only a random token; its hash finds the row, so
-- signing out (here, from Settings in another browser, or by revoking the key signed in with)
-- ends it wherever the cookie was copied. The row is also the browser's server-side state.
CREATE TABLE IF NOT EXISTS signins (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,   -- SHA-256 hex of the cookie's token
    key_id        INTEGER REFERENCES api_keys (id) ON DELETE CASCADE,   -- NULL: a one-time link
    csrf          TEXT    NOT NULL,          -- the token this browser's forms carry
    user_agent    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,          -- updated at most once a minute; 30 days idle ends it
    ended_at      INTEGER,
    notices       TEXT                       -- JSON list: what this browser's next page says
);
CREATE INDEX IF NOT EXISTS signins_by_user ON signins (user_id);
CREATE INDEX IF NOT EXISTS signins_by_key ON signins (key_id);

-- Server-wide values made on first start, such as the key that signs dashboard cookies.
CREATE TABLE IF NOT EXISTS settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sessions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    external_id        TEXT    NOT NULL,
    source             TEXT,               -- claude-code, opencode, cursor, ...; NULL = legacy/unknown
    title              TEXT,
    project_path       TEXT,
    project_name       TEXT,
    model              TEXT,
    provider           TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,   -- input + cache write + cache read, as plugins send it
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,   -- prompt + completion, or a client's own total if larger
    -- The four kinds apart, when a client or an importer knows them (0 = not told).
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cost               REAL    NOT NULL DEFAULT 0,
    -- NULL: the client's cost (or nothing to price); 'estimated': priced here from the tokens;
    -- 'unpriced': tokens of a model with no known price (its cost is not 0, it is unknown).
    cost_status        TEXT,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    message_count      INTEGER NOT NULL DEFAULT 0,
    tool_call_count    INTEGER NOT NULL DEFAULT 0,
    end_reason         TEXT,
    parent_external_id TEXT,                -- a subagent's session: the externalId of the one that ran it
    extra              TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- 1 while created_at is the first message's time: the session was made by a message that
    -- arrived before it, and the client's own createdAt replaces it when it comes.
    created_from_message INTEGER NOT NULL DEFAULT 0,
    -- When a write last touched the row (later than any before it, per user), apart from
    -- updated_at, the session's latest activity: what live pages watch for changes.
    written_at         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, external_id)
);
-- (user, source) first; the other columns make it covering for every stats query, which then
-- reads this narrow index instead of the table rows (titles, extra JSON).
CREATE INDEX IF NOT EXISTS sessions_by_user_source ON sessions (
    user_id, source, model, provider, project_name, project_path, created_at, updated_at,
    message_count, prompt_tokens, completion_tokens, total_tokens, cost, duration_ms,
    cache_write_tokens, cache_read_tokens, cost_status, parent_external_id
);
CREATE INDEX IF NOT EXISTS sessions_by_user_parent ON sessions (user_id, parent_external_id);
-- The subagents alone: most sessions have no parent, so statistics over the index above say a
-- parent narrows nothing and a walk from parents to their subagents would scan every session.
CREATE INDEX IF NOT EXISTS sessions_subagents_by_parent ON sessions (user_id, parent_external_id)
    WHERE parent_external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_by_user_updated ON sessions (user_id, updated_at);
CREATE INDEX IF NOT EXISTS sessions_by_user_written ON sessions (user_id, written_at);
-- Keyset pagination walks one of these per sort column (the rowid breaks ties).
CREATE INDEX IF NOT EXISTS sessions_by_user_created ON sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_by_user_tokens ON sessions (user_id, total_tokens);
CREATE INDEX IF NOT EXISTS sessions_by_user_cost ON sessions (user_id, cost);
CREATE INDEX IF NOT EXISTS sessions_by_user_duration ON sessions (user_id, duration_ms);
CREATE INDEX IF NOT EXISTS sessions_by_user_messages ON sessions (user_id, message_count);

CREATE TABLE IF NOT EXISTS messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id         INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    external_id        TEXT    NOT NULL,
    role               TEXT    NOT NULL,
    text_content       TEXT    NOT NULL DEFAULT '',
    model              TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    extra              TEXT,
    created_at         INTEGER NOT NULL,
    -- What search reads of the parts (search/texts.py, capped): tool inputs and outputs, thinking.
    tool_text          TEXT    NOT NULL DEFAULT '',
    thinking_text      TEXT    NOT NULL DEFAULT '',
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

-- What the user says of a session: a star, a note, an eval status, tags. Apart from the
-- session row, so a plugin's re-sync never touches them; gone with the session.
CREATE TABLE IF NOT EXISTS curations (
    session_id   INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    starred      INTEGER NOT NULL DEFAULT 0,
    note         TEXT,
    eval_status  TEXT,                     -- golden, correct, incorrect, needs-review
    updated_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name     TEXT    NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE IF NOT EXISTS session_tags (
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tag_id      INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, tag_id)
);
CREATE INDEX IF NOT EXISTS session_tags_by_tag ON session_tags (tag_id);

-- The file index: each file a message's tool calls read or changed (opensync_lite/files.py
-- reads them from the parts). Rows go with their message, so a resend that replaces the
-- parts replaces them, and a deleted session takes its rows along.
CREATE TABLE IF NOT EXISTS file_touches (
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    path        TEXT    NOT NULL,          -- absolute when the tool or the project told us where
    rel_path    TEXT,                      -- inside the session's project folder; NULL = outside
    changed     INTEGER NOT NULL DEFAULT 0,   -- 1: written, edited or patched; 0: read
    PRIMARY KEY (session_id, message_id, path)   -- also the way to a session's files
);
CREATE INDEX IF NOT EXISTS file_touches_by_path ON file_touches (user_id, path);
CREATE INDEX IF NOT EXISTS file_touches_by_rel_path ON file_touches (user_id, rel_path);

-- Share links: /s/<slug> shows one session, redacted, without sign-in, while the server
-- allows sharing (off by default) and until the link is revoked.
CREATE TABLE IF NOT EXISTS shares (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,   -- 128 random bits, URL-safe: the link's only secret
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    views       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS shares_by_session ON shares (session_id);
CREATE INDEX IF NOT EXISTS shares_by_user ON shares (user_id);

-- What the importers read, so a re-run reads only what is new: each file's size, modification
-- time and the offset after its last whole line.
CREATE TABLE IF NOT EXISTS import_files (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    "offset"  INTEGER NOT NULL,
    lines     INTEGER NOT NULL DEFAULT 0,  -- lines before "offset"
    head      TEXT    NOT NULL DEFAULT '',  -- sha256 of the first bytes read: the file's identity
    PRIMARY KEY (user_id, path)
);

-- Each model response an importer counted, once: Claude Code repeats a response's usage on
-- every line of it (message.id + requestId), so tokens are kept per response, the largest copy
-- winning, and a session's totals are the sum of its responses.
CREATE TABLE IF NOT EXISTS import_responses (
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    response_key       TEXT    NOT NULL,
    session_external_id TEXT   NOT NULL,
    message_external_id TEXT   NOT NULL,   -- the message whose row carries the tokens
    model              TEXT,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cost_usd           REAL,               -- what the transcript recorded, when it did
    created_at         INTEGER NOT NULL,
    -- Of cache_write_tokens, those written for an hour (they bill at 2x input, not 1.25x).
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, response_key)
);
CREATE INDEX IF NOT EXISTS import_responses_by_session ON import_responses (user_id, session_external_id);

-- Full-text search (SQLite FTS5, external content: the text is stored once, in its table).
-- Triggers keep the index in the same transaction as every write, cascade deletes included.
-- Queried only through opensync_lite/search/sqlite.py.
CREATE VIRTUAL TABLE IF NOT EXISTS sessions_fts USING fts5(
    title, project_name, content='sessions', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS sessions_fts_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO sessions_fts (rowid, title, project_name) VALUES (new.id, new.title, new.project_name);
END;
CREATE TRIGGER IF NOT EXISTS sessions_fts_delete AFTER DELETE ON sessions BEGIN
    INSERT INTO sessions_fts (sessions_fts, rowid, title, project_name)
    VALUES ('delete', old.id, old.title, old.project_name);
END;
CREATE TRIGGER IF NOT EXISTS sessions_fts_update AFTER UPDATE OF title, project_name ON sessions BEGIN
    INSERT INTO sessions_fts (sessions_fts, rowid, title, project_name)
    VALUES ('delete', old.id, old.title, old.project_name);
    INSERT INTO sessions_fts (rowid, title, project_name) VALUES (new.id, new.title, new.project_name);
END;

CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text_content, tool_text, thinking_text, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text_content, tool_text, thinking_text)
    VALUES (new.id, new.text_content, new.tool_text, new.thinking_text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text_content, tool_text, thinking_text)
    VALUES ('delete', old.id, old.text_content, old.tool_text, old.thinking_text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text_content, tool_text, thinking_text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text_content, tool_text, thinking_text)
    VALUES ('delete', old.id, old.text_content, old.tool_text, old.thinking_text);
    INSERT INTO messages_fts (rowid, text_content, tool_text, thinking_text)
    VALUES (new.id, new.text_content, new.tool_text, new.thinking_text);
END;

-- Semantic search (opensync_lite/semantic/): one vector per turn of a session (a prompt and the
-- answers up to the next prompt; message_id is the turn's first message) and one per session
-- (its title and project; message_id NULL), made in the background from the stored messages.
-- `digest` is a hash of the text embedded, so a turn whose text changed is embedded again;
-- `model` names the encoder, whose vectors only its own queries can be compared with.
CREATE TABLE IF NOT EXISTS embeddings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id  INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    model       TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    vector      BLOB    NOT NULL          -- float16, little-endian, unit length
);
CREATE INDEX IF NOT EXISTS embeddings_by_user ON embeddings (user_id, model, id);
CREATE INDEX IF NOT EXISTS embeddings_by_session ON embeddings (session_id);
-- Which write of each session (sessions.written_at) its vectors are of: the background job
-- embeds the sessions written since, or embedded by another model.
CREATE TABLE IF NOT EXISTS embedded_sessions (
    session_id  INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    written_at  INTEGER NOT NULL,
    model       TEXT    NOT NULL
);

-- What Claude Code's status line reported (opensync-lite statusline): the plan's real quota
-- use, per user and machine, over time. A snapshot equal to the machine's last one within a
-- minute is not kept again (the status line runs every few seconds).
CREATE TABLE IF NOT EXISTS quota_snapshots (
    id                  INTEGER PRIMARY KEY,
    user_id             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    machine             TEXT    NOT NULL DEFAULT '',
    session_external_id TEXT,
    model               TEXT,
    session_cost        REAL,
    five_hour_used      REAL,      -- percent of the 5-hour window used
    five_hour_resets_at INTEGER,   -- epoch ms
    seven_day_used      REAL,
    seven_day_resets_at INTEGER,
    extra               TEXT,      -- the rest of what the status line was given (JSON)
    created_at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_snapshots_by_time ON quota_snapshots (user_id, created_at);

-- Budgets (budgets.py): an amount per day, ISO week or month, in total or for one source or
-- project; each crossing of 80 % and 100 % in a period is one alert (the UNIQUE makes it once,
-- across restarts), and each alert one delivery per channel the user set, retried until done.
CREATE TABLE IF NOT EXISTS budgets (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period     TEXT    NOT NULL,   -- day, week, month (UTC)
    amount     REAL    NOT NULL,   -- USD
    source     TEXT,
    project    TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS budgets_by_user ON budgets (user_id);
CREATE TABLE IF NOT EXISTS budget_alerts (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    budget_id    INTEGER NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    threshold    INTEGER NOT NULL,  -- 80 or 100
    spent        REAL    NOT NULL,
    amount       REAL    NOT NULL,
    cost_basis   TEXT,              -- estimated / unpriced when some of the spend is
    created_at   INTEGER NOT NULL,
    UNIQUE (budget_id, period_start, threshold)
);
CREATE INDEX IF NOT EXISTS budget_alerts_by_user ON budget_alerts (user_id, created_at);
CREATE TABLE IF NOT EXISTS budget_deliveries (
    id           INTEGER PRIMARY KEY,
    alert_id     INTEGER NOT NULL REFERENCES budget_alerts (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,  -- webhook, ntfy, desktop
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS budget_deliveries_due ON budget_deliveries (delivered_at, next_at);
CREATE TABLE IF NOT EXISTS budget_channels (
    user_id        INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    webhook_url    TEXT,
    webhook_secret TEXT NOT NULL,
    ntfy_url       TEXT,
    desktop        INTEGER NOT NULL DEFAULT 0
);
