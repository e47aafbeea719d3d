"""The database handle: one SQLite file per app, one connection per server thread.

Models are bound to ``database``, a proxy that resolves to the current Flask app's database,
so a host app embedding opensync-lite, and several test apps in one process, each keep their
own file. Peewee keeps connections thread-local; we open one on a thread's first request and
keep it (reopening and re-running the pragmas per request costs more than the request itself).
"""

from importlib import resources
from pathlib import Path

from flask import current_app
from peewee import DatabaseProxy, SqliteDatabase

EXTENSION = "opensync"
SCHEMA_VERSION = 1
# SQL scripts that take a database from version N-1 to N; schema.sql always holds the latest.
MIGRATIONS = {}
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


def open_database(path, durability="normal"):
    """A peewee database for ``path`` with our pragmas; transactions take the write lock
    up front (BEGIN IMMEDIATE) so concurrent writers queue on the busy timeout instead of
    failing with "database is locked" on lock upgrade."""
    if durability not in ("normal", "full"):
        raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
    if path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return SqliteDatabase(
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


def schema_sql():
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def migrate(db):
    """Bring the file up to SCHEMA_VERSION. schema.sql is idempotent, so a new file gets it
    whole; an older file runs each migration in order first."""
    with db.connection_context():
        conn = db.connection()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {version} is newer than this opensync-lite ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        # One script, one transaction: a crash part-way leaves the old version intact.
        steps = [MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1) if version and v in MIGRATIONS]
        conn.executescript(
            "BEGIN IMMEDIATE;\n"
            + "\n".join(steps)
            + schema_sql()
            + f"\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )


def connect():
    """Open this thread's connection if it has none (registered as a before_request hook)."""
    database.connect(reuse_if_open=True)
