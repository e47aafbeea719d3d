"""The database handle: a SQLite file (the default) or a PostgreSQL server, one connection
per server thread.

Models are bound to ``database``, a proxy that resolves to the current Flask app's database,
so a host app embedding opensync-lite, and several test apps in one process, each keep their
own. Peewee keeps connections thread-local; we open one on a thread's first request and
keep it (reopening and re-running the pragmas per request costs more than the request itself).
What differs between the two databases lives here (opening, the write lock, the schema and its
version) and in the ``search`` package; every query is Peewee's, rendered in either dialect.
"""

import errno
import os
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path

from weakref import WeakKeyDictionary

try:
    import fcntl
except ImportError:  # not on Windows: writers of other processes queue on SQLite's busy timeout
    fcntl = None

from flask import abort, current_app, request
from peewee import DatabaseProxy, OperationalError, PostgresqlDatabase, SqliteDatabase, Value

EXTENSION = "opensync"
# 3: curations, tags and session_tags; 4: file_touches and shares (new tables only: the schema
# files make them, and ingest.index_files_once fills the file index from the stored parts);
# 5: signins (a new table); sessions.written_at, the write stamp, apart from updated_at (the
# latest activity); import_responses.cache_write_1h_tokens; 6: import_files.lines and .head (a
# file's line count at its offset and a hash of its first bytes: who it is, not only its size);
# 7: messages.tool_text and .thinking_text, searched beside the text (filled from the stored
# parts at start-up: ingest.index_part_texts); 8: sources (and keys' default sources) named
# "cursor-sync", OpenSync's name for the cursor plugin's, are "cursor", as intake now reads them;
# 9: embeddings and embedded_sessions (new tables only: the background job of semantic/ fills them);
# 10: quota_snapshots, budgets, budget_alerts, budget_deliveries, budget_channels (new tables only);
# 11: the covering index of sessions holds parent_external_id (lists fold subagents away from
# it, no table row read), and sessions_subagents_by_parent indexes the subagents alone.
SCHEMA_VERSION = 11
SUBAGENT_INDEXES = "DROP INDEX IF EXISTS sessions_by_user_source;\n"  # made anew, wider, by the schema file
CURSOR_SYNC = ("UPDATE sessions SET source = 'cursor' WHERE source = 'cursor-sync';\n"
               "UPDATE api_keys SET default_source = 'cursor' WHERE default_source = 'cursor-sync';\n")
FTS_TRIGGERS = [f"{t}_fts_{op}" for t in ("sessions", "messages") for op in ("insert", "delete", "update")]
SESSION_INDEXES = ["sessions_by_user_source", "sessions_by_user_parent", "sessions_by_user_updated", "sessions_by_user_created",
                   "sessions_by_user_tokens", "sessions_by_user_cost", "sessions_by_user_duration",
                   "sessions_by_user_messages", "sessions_subagents_by_parent"]
V1_SESSION_COLUMNS = ("id, user_id, external_id, source, title, project_path, project_name, model, provider, "
                      "prompt_tokens, completion_tokens, total_tokens, cost, duration_ms, message_count, "
                      "tool_call_count, end_reason, extra, created_at, updated_at")
V1_MESSAGE_COLUMNS = ("id, session_id, external_id, role, text_content, model, prompt_tokens, completion_tokens, "
                      "duration_ms, extra, created_at")
# How to take a SQLite database from version N-1 to N, as (SQL before schema.sql, SQL after it).
# schema.sql always holds the latest tables; a table whose definition changed is renamed
# away first (with its indexes, triggers and search index dropped), made anew by schema.sql,
# and filled from the old one after (the search triggers re-index every row on the way).
SQLITE_MIGRATIONS = {
    2: (
        # Ids are never reused (AUTOINCREMENT); sessions learn created_from_message, their
        # parent and the four token kinds (messages too); keys learn a default source; a
        # source of "unknown" is stored as no source, which is what the `unknown` filter selects.
        "".join(f"DROP TRIGGER IF EXISTS {name};\n" for name in FTS_TRIGGERS)
        + "".join(f"DROP INDEX IF EXISTS {name};\n" for name in [*SESSION_INDEXES, "messages_by_session_created"])
        + "DROP TABLE IF EXISTS sessions_fts;\nDROP TABLE IF EXISTS messages_fts;\n"
        "ALTER TABLE sessions RENAME TO sessions_v1;\nALTER TABLE messages RENAME TO messages_v1;\n"
        "ALTER TABLE api_keys ADD COLUMN default_source TEXT;\n",
        f"INSERT INTO sessions ({V1_SESSION_COLUMNS}) SELECT {V1_SESSION_COLUMNS} FROM sessions_v1;\n"
        f"INSERT INTO messages ({V1_MESSAGE_COLUMNS}) SELECT {V1_MESSAGE_COLUMNS} FROM messages_v1;\n"
        "DROP TABLE messages_v1;\nDROP TABLE sessions_v1;\n"
        "UPDATE sessions SET source = NULL WHERE source = 'unknown';\n",
    ),
    5: ("ALTER TABLE sessions ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;\n"
        "ALTER TABLE import_responses ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;\n",
        "UPDATE sessions SET written_at = updated_at;\n"),
    6: ("ALTER TABLE import_files ADD COLUMN lines INTEGER NOT NULL DEFAULT 0;\n"
        "ALTER TABLE import_files ADD COLUMN head TEXT NOT NULL DEFAULT '';\n", ""),
    # The message index gains two columns: made anew by schema.sql, then filled from the table.
    7: ("".join(f"DROP TRIGGER IF EXISTS messages_fts_{op};\n" for op in ("insert", "delete", "update"))
        + "DROP TABLE IF EXISTS messages_fts;\n"
        "ALTER TABLE messages ADD COLUMN tool_text TEXT NOT NULL DEFAULT '';\n"
        "ALTER TABLE messages ADD COLUMN thinking_text TEXT NOT NULL DEFAULT '';\n",
        "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');\n"),
    8: ("", CURSOR_SYNC),
    11: (SUBAGENT_INDEXES, ""),
}
REBUILDS = {2}  # the migrations that make sessions and messages anew from schema.sql
BUSY_TIMEOUT_S = 10


class AppDatabase(DatabaseProxy):
    """A peewee DatabaseProxy whose target is the current Flask app's database."""

    __slots__ = ()

    def __init__(self):
        object.__setattr__(self, "_callbacks", [])

    @property
    def obj(self):
        return current_app.extensions[EXTENSION]


database = AppDatabase()


class UnsupportedDatabase(ValueError):
    """A database URL of a kind this opensync-lite cannot open."""


class MissingDriver(RuntimeError):
    """A PostgreSQL URL, and no driver installed for it."""


POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")


def is_postgres_url(value):
    return value.partition("://")[0].lower() in POSTGRES_SCHEMES and "://" in value


def display_url(value):
    """``value`` fit to print: a URL's password replaced by ***."""
    if not is_postgres_url(value):
        return value
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(value)
    if parts.password is None:
        return value
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(value):
    """The SQLite file a setting names: a path, or a ``sqlite:///relative`` /
    ``sqlite:////absolute`` URL (peewee's and SQLAlchemy's form). Any other URL is refused
    rather than taken for a file name."""
    if "://" not in value:
        return value
    scheme, _, rest = value.partition("://")
    if scheme.lower() == "sqlite" and rest.startswith("/"):
        return rest[1:] or ":memory:"
    raise UnsupportedDatabase(
        f"{scheme}:// databases are not supported: give a file path, sqlite:///path or postgresql://user@host/name"
    )


def open_database(url, durability="normal"):
    """A peewee database for ``url``: a file path or sqlite:/// URL (SQLite), or a
    postgresql:// URL (``+pool`` for a connection pool). Nothing connects yet, so a server
    can open it before it forks its workers."""
    if durability not in ("normal", "full"):
        raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
    if is_postgres_url(url):
        return _open_postgres(url)
    return _open_sqlite(sqlite_path(url), durability)


def _open_sqlite(path, durability):
    """Our pragmas; transactions take the write lock up front (BEGIN IMMEDIATE) so concurrent
    writers queue on the busy timeout instead of failing with "database is locked" on lock
    upgrade."""
    if path != ":memory:":
        _create_private(Path(path).expanduser())
    db = SqliteDatabase(
        str(Path(path).expanduser()) if path != ":memory:" else path,
        timeout=BUSY_TIMEOUT_S,
        lock_type="IMMEDIATE",
        pragmas=[
            ("journal_mode", "wal"),
            ("synchronous", durability.upper()),
            ("foreign_keys", 1),
            ("busy_timeout", BUSY_TIMEOUT_S * 1000),
        ],
    )
    db.write_lock = WriterLock(None if path == ":memory:" else f"{Path(path).expanduser()}-writer")
    return db


class WriterLock:
    """The one writer of a SQLite file at a time, queued fairly across threads and processes
    (serve's workers, an import beside it). SQLite's own busy handler sleeps up to 100 ms
    between tries, so a waiter in another process could miss every gap between a large
    batch's transactions: here threads wait on a lock that wakes them at once, and processes
    poll an flock on a file beside the database every millisecond."""

    POLL_S = 0.001

    def __init__(self, path):
        self.thread_lock, self.path, self.fd, self.pid = threading.Lock(), path, None, None

    def __enter__(self):
        self.thread_lock.acquire()
        if self.path is None or fcntl is None:
            return self
        try:
            if self.pid != os.getpid():  # a forked worker opens its own: a shared one is one flock
                self.fd, self.pid = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600), os.getpid()
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return self
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise OperationalError("database is locked (another writer held it too long)") from None
                    time.sleep(self.POLL_S)
        except BaseException:
            self.thread_lock.release()
            raise

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()


def _open_postgres(url):
    """PostgreSQL through psycopg 3 (the ``postgres`` extra). Durability is the server's."""
    try:
        import psycopg  # noqa: F401  (peewee picks the driver up by itself; we check it is there)
    except ImportError:
        raise MissingDriver(
            "PostgreSQL needs its driver: pip install 'opensync-lite[postgres]' (psycopg 3)"
        ) from None
    from playhouse.db_url import connect

    db = connect(url, prefer_psycopg3=True)
    # Writers of different users run side by side; one user's writers queue on a lock in
    # the database (write_transaction), which every process sees.
    db.write_lock = nullcontext()
    return db


def is_postgres(db=None):
    return isinstance(database.obj if db is None else db, PostgresqlDatabase)


def _create_private(file):
    """Transcripts are private: a new folder is 0700 and a new database file 0600 (SQLite
    gives its -wal and -shm files the database file's mode)."""
    try:
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError as err:  # a file stands where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", err.filename) from None
    if not file.exists():
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


def backup(source, target):
    """Copy the database ``source`` to ``target`` with SQLite's online backup: a consistent
    snapshot, WAL included, while servers keep writing. The copy is written beside
    ``target`` and renamed into place, so there is never a half-written file there.
    Returns (sessions, messages) in the copy."""
    if is_postgres_url(str(source)):
        raise UnsupportedDatabase("backup copies a SQLite file; back up a PostgreSQL database with pg_dump")
    source, target = Path(sqlite_path(str(source))).expanduser(), Path(target).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY, 0o600))
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        counts = tuple(dst.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("sessions", "messages"))
    except BaseException:
        dst.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    dst.close()
    os.replace(partial, target)
    return counts


USER_LOCKS = 0x05C0  # the first key of our advisory locks, so they cannot meet another app's


@contextmanager
def write_transaction(user_id=None):
    """THE way to write: one transaction, in which the writes of ``user_id`` queue behind each
    other (ingest reads what is stored, then writes, so two writers of one user must not
    interleave). SQLite: the process's write lock, then BEGIN IMMEDIATE (other processes on
    the file queue on SQLite's busy timeout), so every writer queues. PostgreSQL: an
    advisory lock on the user held to the end of the transaction, in every process."""
    db = database.obj  # resolved once: peewee's transaction code would go through the proxy often
    with db.write_lock, db.atomic():
        if user_id is not None and is_postgres(db):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (USER_LOCKS, user_id % 2**31))
        yield


def inserted_id(cursor):
    """The id of the row an INSERT made: SQLite's lastrowid; on PostgreSQL Peewee renders
    the INSERT with RETURNING id."""
    return cursor.fetchone()[0] if is_postgres() else cursor.lastrowid


class Slot:
    """A named hole in a prepared statement, filled (and converted) at each execution."""

    __slots__ = ("name", "convert")

    def __init__(self, name, convert):
        self.name = name
        self.convert = convert

    def bind(self, values):
        value = values[self.name]
        return self.convert(value) if self.convert and value is not None else value


def slot(name, convert=None):
    """A placeholder for ``name`` in a query built for ``prepared``; ``convert`` turns a value
    that is not None into what the column stores (e.g. a field's db_value)."""
    return Value(Slot(name, convert), converter=False)


MAX_PREPARED = 512
_rendered = WeakKeyDictionary()  # database -> {key: (sql, params, [(position, Slot)])}


def _render(db, key, build):
    per_db = _rendered.setdefault(db, {})
    compiled = per_db.get(key)
    if compiled is None:
        sql, params = build().sql()
        compiled = (sql, params, [(i, p) for i, p in enumerate(params) if type(p) is Slot])
        if len(per_db) < MAX_PREPARED:  # update column sets vary with the client: bound them
            per_db[key] = compiled
    return compiled


def _bind(params, holes, values):
    bound = list(params)
    for position, hole in holes:
        bound[position] = hole.bind(values)
    return bound


def prepared(key, build, values):
    """Run the Peewee query ``build()`` with ``values`` (a dict by slot name) in its slots. Peewee renders SQL in
    Python on every execute, which costs more than SQLite running these small statements,
    so each query is rendered once per database (still by Peewee, in its dialect) and reused.
    Returns the DB-API cursor."""
    db = database.obj
    sql, params, holes = _render(db, key, build)
    return db.execute_sql(sql, _bind(params, holes, values))


def prepared_many(key, build, rows):
    """``prepared`` once per dict in ``rows``, as one executemany."""
    db = database.obj
    sql, params, holes = _render(db, key, build)
    db.cursor().executemany(sql, [_bind(params, holes, values) for values in rows])


def schema_sql(name="schema.sql"):
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def migrate(db):
    """Bring the database up to SCHEMA_VERSION. The schema files are idempotent, so a new
    database gets one whole; an older one runs each migration around it, in order."""
    with db.connection_context():
        if is_postgres(db):
            _migrate_postgres(db)
        else:
            _migrate_sqlite(db)


def _check_version(version):
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database schema is version {version}, newer than this opensync-lite "
            f"({SCHEMA_VERSION}): upgrade opensync-lite to open it"
        )
    return version < SCHEMA_VERSION


def _migrate_sqlite(db):
    conn = db.connection()
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if not _check_version(version):
        return
    steps = [(v, SQLITE_MIGRATIONS[v]) for v in range(version + 1, SCHEMA_VERSION + 1) if version and v in SQLITE_MIGRATIONS]
    # After a step that rebuilds the tables from schema.sql, later steps' column additions are
    # already there: only their "after" part (filling the columns) runs.
    before = "".join(step[0] for v, step in steps if not any(r in REBUILDS and r < v for r, _ in steps))
    after = "".join(step[1] for _, step in steps)
    # One script, one transaction: a crash part-way leaves the old version intact. Tables
    # are rebuilt with foreign keys off (dropping the old ones must not cascade), and
    # with legacy renames, so tables that point at a renamed one keep pointing at its name.
    conn.executescript(
        "PRAGMA foreign_keys = OFF;\nPRAGMA legacy_alter_table = ON;\nBEGIN IMMEDIATE;\n"
        + before
        + schema_sql()
        + after
        + f"\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;\n"
        "PRAGMA legacy_alter_table = OFF;\nPRAGMA foreign_keys = ON;\n"
    )
    if steps and conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise RuntimeError("migration left rows whose foreign keys point nowhere")
    # A dropped index takes its statistics along: beside the others' (ANALYZE run by hand or a
    # tool) the planner then misjudges the new one and sorts a whole list for one page.
    if steps and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        conn.execute("ANALYZE sessions")


# Version 2 is the first schema PostgreSQL had; later versions add (before, after) SQL here.
POSTGRES_MIGRATIONS = {
    5: ("ALTER TABLE sessions ADD COLUMN IF NOT EXISTS written_at BIGINT NOT NULL DEFAULT 0;\n"
        "ALTER TABLE import_responses ADD COLUMN IF NOT EXISTS cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;\n",
        "UPDATE sessions SET written_at = updated_at;\n"),
    6: ("ALTER TABLE import_files ADD COLUMN IF NOT EXISTS lines BIGINT NOT NULL DEFAULT 0;\n"
        "ALTER TABLE import_files ADD COLUMN IF NOT EXISTS head TEXT NOT NULL DEFAULT '';\n", ""),
    # A generated column cannot change: search_vector is made again over the new columns (its
    # GIN index goes with it; schema_postgres.sql makes the index again).
    7: ("ALTER TABLE messages ADD COLUMN IF NOT EXISTS tool_text TEXT NOT NULL DEFAULT '';\n"
        "ALTER TABLE messages ADD COLUMN IF NOT EXISTS thinking_text TEXT NOT NULL DEFAULT '';\n"
        "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector;\n"
        "ALTER TABLE messages ADD COLUMN search_vector TSVECTOR GENERATED ALWAYS AS (\n"
        "    setweight(to_tsvector('simple', translate(left(text_content, 100000), '<>/\\.:@&;=?#~+-_', '                ')), 'A')\n"
        "    || setweight(to_tsvector('simple', translate(tool_text, '<>/\\.:@&;=?#~+-_', '                ')), 'B')\n"
        "    || setweight(to_tsvector('simple', translate(thinking_text, '<>/\\.:@&;=?#~+-_', '                ')), 'C')\n"
        ") STORED;\n", ""),
    8: ("", CURSOR_SYNC),
    11: (SUBAGENT_INDEXES, ""),
}
SCHEMA_LOCK = 0  # the second key of the advisory lock that start-ups take to migrate


def _postgres_version(conn):
    if conn.execute("SELECT to_regclass('settings')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT value FROM settings WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _migrate_postgres(db):
    """The same steps in one transaction. The version is the settings row 'schema_version';
    several processes starting at once take turns on an advisory lock, and the ones after
    the first find nothing left to do. Scripts go as literal SQL (psycopg binds parameters
    on the server, which DDL and multi-statement scripts do not take)."""
    conn = db.connection()  # the psycopg connection, so a whole script can run in one execute
    if not _check_version(_postgres_version(conn)):
        return
    with conn.transaction():
        conn.execute(f"SELECT pg_advisory_xact_lock({USER_LOCKS}, {SCHEMA_LOCK})")
        version = _postgres_version(conn)
        if not _check_version(version):
            return
        steps = [POSTGRES_MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1) if version and v in POSTGRES_MIGRATIONS]
        conn.execute("".join(step[0] for step in steps) + schema_sql("schema_postgres.sql")
                     + "".join(step[1] for step in steps))
        conn.execute(
            "INSERT INTO settings (name, value) VALUES ('schema_version', %s)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )


class SchemaTooNew(RuntimeError):
    """The file was written by a newer opensync-lite."""


def connect():
    """Open this thread's connection if it has none."""
    database.connect(reuse_if_open=True)


MAX_ID = 2**63 - 1  # the largest id SQLite's INTEGER and PostgreSQL's BIGINT hold


def ids_in_range(endpoint, values):
    """url_value_preprocessor: an ``<int:…>`` id in the path too large for the database names
    no row, so it is a 404 (the driver would fail converting it: a 500)."""
    if values and any(type(value) is int and value > MAX_ID for value in values.values()):
        abort(404, "Not found.")


def prepare_request():
    """before_request hook of every opensync-lite blueprint: the body limit, and this
    thread's connection."""
    request.max_content_length = current_app.config["OPENSYNC_MAX_BODY"]
    connect()
