"""Fixtures: a real database per test (a SQLite file; and in the modules marked
``both_databases`` also a fresh PostgreSQL database on a server the run starts itself), the
Flask test client with a key, and a live `opensync-lite serve` subprocess for tests that are
about HTTP itself."""

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import itertools

import pytest
from hypothesis import settings

import pgcluster
from opensync_lite import auth, create_app
from opensync_lite.db import is_postgres_url

# The suite generates the same examples on every run, so CI is repeatable; set
# HYPOTHESIS_PROFILE=explore to search new ones on each run locally.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

CLI = [sys.executable, "-m", "opensync_lite.cli"]


def make_key(app, user="local", label=""):
    with app.app_context():
        key, _ = auth.create_key(user, label)
    return key


class Api:
    """The Flask test client, authenticated with one key."""

    def __init__(self, client, key):
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path, body=None, **kwargs):
        if "data" not in kwargs:
            kwargs["json"] = body
        return self.client.post(path, headers=self.headers, **kwargs)

    def get(self, path, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)

    def delete(self, path, **kwargs):
        return self.client.delete(path, headers=self.headers, **kwargs)

    def session(self, ident):
        """GET /api/sessions/get, asserting it is found."""
        response = self.get("/api/sessions/get", query_string={"id": ident})
        assert response.status_code == 200, response.get_json()
        return response.get_json()


def pytest_configure(config):
    config.addinivalue_line("markers", "both_databases: run each test on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "alone: timed against other load; `make test` runs these after the parallel pass")


def pytest_generate_tests(metafunc):
    """Tests in modules marked ``both_databases`` run once per database; others on SQLite."""
    if "database_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database_kind", ["sqlite", "postgresql"])


@pytest.fixture
def database_kind():
    return "sqlite"


@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL server for the whole run. Without its binaries (or the driver) the
    PostgreSQL half skips, unless OPENSYNC_REQUIRE_POSTGRES=1 (CI) makes that a failure."""
    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg is not installed (pip install -e '.[postgres]')"
    if missing is None and pgcluster.binaries() is None:
        missing = "no PostgreSQL binaries (apt-get install postgresql)"
    if missing:
        if os.environ.get("OPENSYNC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"OPENSYNC_REQUIRE_POSTGRES=1 but {missing}")
        pytest.skip(missing)
    cluster = pgcluster.Cluster(pgcluster.binaries())
    yield cluster
    cluster.stop()


_database_numbers = itertools.count()


def _admin(url):
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def pg_database(pg_cluster):
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with _admin(pg_cluster.url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.database_url(name)
    with _admin(pg_cluster.url) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def db_path(tmp_path, database_kind, request):
    """Where the test's data lives: a SQLite file, or a new PostgreSQL database's URL.
    Everything that takes ``--db`` takes either."""
    if database_kind == "sqlite":
        return str(tmp_path / "opensync.db")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def app(db_path):
    app = create_app({"OPENSYNC_DB": db_path, "TESTING": True})
    yield app
    app.extensions["opensync"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(app, client):
    return Api(client, make_key(app))


@pytest.fixture
def other_api(app, client):
    """A second user's key on the same server."""
    return Api(client, make_key(app, user="mallory"))


def rows(db_path, sql, params=()):
    """Read the database directly, as a separate connection would (``?`` placeholders on
    either database)."""
    if is_postgres_url(db_path):
        with _admin(db_path) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params or None)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    conn = sqlite3.connect(db_path, isolation_level=None)  # autocommit, as on PostgreSQL
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def snapshot(db_path):
    """Every row of every data table: compare two snapshots to prove nothing was written."""
    return {t: rows(db_path, f"SELECT * FROM {t} ORDER BY id") for t in ("sessions", "messages", "parts")}


class LiveServer:
    """`opensync-lite serve` as a subprocess on a free port; its stderr goes to a file (a pipe
    nobody reads would fill up and block the server)."""

    def __init__(self, db_path, env=None, args=()):
        self.db_path = db_path
        self.log_path = tempfile.mkstemp(prefix="opensync-serve-", suffix=".log")[1]
        self.log = open(self.log_path, "a")
        # The server watches this machine's agent folders unless a test asks for it: the
        # tests' own histories live in their own folders.
        watch = [] if any(a.startswith("--watch") or a == "--no-watch" for a in args) else ["--no-watch"]
        self.proc = subprocess.Popen(
            CLI + ["serve", "--port", "0", "--db", db_path, *watch, *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.logs()}")
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        # The rest of stdout is advice; read it as it comes so the pipe never fills.
        self.banner = [line]
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.banner.append(line)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def create_key(self, user="local"):
        out = subprocess.run(
            CLI + ["keys", "create", "--user", user, "--db", self.db_path],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().splitlines()[-1]

    def stop(self):
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def live_server(db_path):
    server = LiveServer(db_path)
    yield server
    server.stop()


NODE_BIN = Path(__file__).parent / "node_modules" / ".bin"


def watch_import(kind, root, db_path, change, until_sql, seconds=20):
    """Run `opensync-lite import KIND ROOT --watch`, make ``change()`` once its first pass is
    done, and wait until ``until_sql`` counts one row; then stop it with Ctrl-C."""
    import signal
    import time

    proc = subprocess.Popen(CLI + ["import", kind, str(root), "--db", db_path, "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith("Imported")
        change()
        deadline = time.time() + seconds
        while rows(db_path, until_sql) != [(1,)]:
            assert time.time() < deadline, f"--watch did not import the change ({until_sql})"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        proc.stdout.close()


V6_MESSAGES_FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text_content, content='messages', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts (rowid, text_content) VALUES (new.id, new.text_content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN INSERT INTO messages_fts"
    " (messages_fts, rowid, text_content) VALUES ('delete', old.id, old.text_content); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text_content ON messages BEGIN INSERT INTO messages_fts"
    " (messages_fts, rowid, text_content) VALUES ('delete', old.id, old.text_content);"
    " INSERT INTO messages_fts (rowid, text_content) VALUES (new.id, new.text_content); END",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
]
V6_MESSAGE_VECTOR = [
    "ALTER TABLE messages DROP COLUMN search_vector",
    "ALTER TABLE messages DROP COLUMN tool_text", "ALTER TABLE messages DROP COLUMN thinking_text",
    "ALTER TABLE messages ADD COLUMN search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple',"
    " translate(left(text_content, 100000), '<>/\\.:@&;=' || chr(63) || '#~+-_', '                '))) STORED",
    "CREATE INDEX messages_search ON messages USING gin (search_vector)",
]  # chr(63) is `?`, which rows() would take for a placeholder


def downgrade_to_version_6(db_path):
    """Make a new database look as version 6 left it: messages without their tool and thinking
    text, searched by the text alone (the start-up fill forgotten)."""
    if "://" in db_path:
        for sql in V6_MESSAGE_VECTOR:
            rows(db_path, sql)
        rows(db_path, "UPDATE settings SET value = '6' WHERE name = 'schema_version'")
    else:
        for sql in ["DROP TRIGGER messages_fts_insert", "DROP TRIGGER messages_fts_delete", "DROP TRIGGER messages_fts_update",
                    "DROP TABLE messages_fts", "ALTER TABLE messages DROP COLUMN tool_text",
                    "ALTER TABLE messages DROP COLUMN thinking_text", *V6_MESSAGES_FTS]:
            rows(db_path, sql)
        rows(db_path, "PRAGMA user_version = 6")
    rows(db_path, "DELETE FROM settings WHERE name = 'part_texts'")


def downgrade_to_version_4(db_path):
    """Make a new database look as version 4 left it: what versions 5, 6 and 7 added dropped again."""
    downgrade_to_version_6(db_path)
    for sql in ("DROP TABLE signins", "DROP INDEX sessions_by_user_written", "ALTER TABLE sessions DROP COLUMN written_at",
                "ALTER TABLE import_responses DROP COLUMN cache_write_1h_tokens",
                "ALTER TABLE import_files DROP COLUMN lines", "ALTER TABLE import_files DROP COLUMN head"):
        rows(db_path, sql)
    if "://" in db_path:
        rows(db_path, "UPDATE settings SET value = '4' WHERE name = 'schema_version'")
    else:
        rows(db_path, "PRAGMA user_version = 4")


def downgrade_to_version_7(db_path):
    """Make a database look as version 7 left it: the schema is the same, only the number."""
    if "://" in db_path:
        rows(db_path, "UPDATE settings SET value = '7' WHERE name = 'schema_version'")
    else:
        rows(db_path, "PRAGMA user_version = 7")
