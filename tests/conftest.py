"""Fixtures: a real SQLite file per test, the Flask test client with a key, and a live
`opensync-lite serve` subprocess for tests that are about HTTP itself."""

import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import settings

from opensync_lite import auth, create_app

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


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "opensync.db")


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
    """Read the database file directly, as a separate connection would."""
    conn = sqlite3.connect(db_path)
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
        self.log_path = db_path + ".log"
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            CLI + ["serve", "--port", "0", "--db", db_path, *args],
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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(str(tmp_path / "live.db"))
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
