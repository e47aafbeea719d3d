"""The database handle: one SQLite file per app, one connection per server thread.

Models are bound to ``database``, a proxy that resolves to the current Flask app's database,
so a host app embedding opensync-lite, and several test apps in one process, each keep their
own file. Peewee keeps connections thread-local; we open one on a thread's first request and
keep it (reopening and re-running the pragmas per request costs more than the request itself).
"""

import threading
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from weakref import WeakKeyDictionary

from flask import current_app
from peewee import DatabaseProxy, SqliteDatabase, Value

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
    # Writers in this process queue here and are woken the moment the lock frees; SQLite's
    # busy handler would make them sleep and poll (tens of ms) on the file lock instead.
    db.write_lock = threading.Lock()
    return db


@contextmanager
def write_transaction():
    """THE way to write: the process's write lock, then one BEGIN IMMEDIATE transaction
    (other processes on the same file still queue on SQLite's busy timeout)."""
    db = database.obj  # resolved once: peewee's transaction code would go through the proxy often
    with db.write_lock, db.atomic():
        yield


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
