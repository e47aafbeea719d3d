"""What a new user meets in the first minutes: start-up errors, the hints the server prints,
the request log, file permissions, keys, backup and running at login."""

import configparser
import os
import plistlib
import re
import shlex
import socket
import sqlite3
import stat
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import CLI, LiveServer


def run(*args, env=None, **kwargs):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=60, **kwargs)


def test_port_taken_is_one_line_naming_the_port_and_the_fix(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--db", str(tmp_path / "data" / "x.db"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is already in use (another opensync-lite?): stop that program "
        "or choose another port with --port N or OPENSYNC_PORT=N."]
    assert not (tmp_path / "data").exists()  # nothing made before the refusal


@pytest.mark.parametrize("make_bad", ["not_a_database", "under_a_file", "a_folder"])
def test_bad_database_path_is_one_line_naming_it(tmp_path, make_bad):
    if make_bad == "not_a_database":
        path = tmp_path / "notes.db"
        path.write_text("my notes")
    elif make_bad == "under_a_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "deeper" / "x.db"
    else:
        path = tmp_path / "folder.db"
        path.mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for command in (["serve", "--port", "0"], ["keys", "list"], ["keys", "create"]):
        result = run(*command, "--db", str(path))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"Error: cannot open the database {path}:") and "--db PATH" in lines[0]
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing half-created


def test_a_failed_first_open_removes_what_it_created(tmp_path):
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute("PRAGMA user_version = 99").connection.close()
    result = run("keys", "list", "--db", str(newer))
    assert result.returncode == 1 and "newer than this opensync-lite" in result.stderr
    assert newer.exists()  # the user's file is never removed


def test_new_database_and_folder_are_private(tmp_path):
    path = tmp_path / "private" / "opensync.db"
    result = run("keys", "create", "--db", str(path), env={}, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for name in ("opensync.db", "opensync.db-wal", "opensync.db-shm"):
        candidate = path.parent / name
        if candidate.exists():
            assert stat.S_IMODE(candidate.stat().st_mode) == 0o600, name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_hints_print_a_command_that_runs(tmp_path):
    server = LiveServer(str(tmp_path / "hint.db"))
    try:
        time.sleep(0.3)
        hint = re.search(r"create one with `(.+?)`", server.logs()).group(1)
        banner = "".join(server.banner)
    finally:
        server.stop()
    assert "keys create" in hint and f"--db {tmp_path / 'hint.db'}" in hint
    assert hint.split(" keys create")[0] in banner
    created = subprocess.run(shlex.split(hint), capture_output=True, text=True, timeout=60)
    assert created.returncode == 0 and created.stdout.strip().splitlines()[-1].startswith("osk_")


def test_one_log_line_per_request_without_keys_or_queries(tmp_path):
    server = LiveServer(str(tmp_path / "log.db"))
    try:
        key = server.create_key()
        for path in ("/health", "/api/sessions?q=secretword", "/nope"):
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"})
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError:
                pass
        time.sleep(0.3)
        logs = server.logs()
    finally:
        server.stop()
    lines = [line for line in logs.splitlines() if "opensync_lite.requests" in line]
    assert len(lines) == 3, logs
    assert re.search(r"GET /health 200 [\d.]+ms user=-$", lines[0])
    assert re.search(r"GET /api/sessions 200 [\d.]+ms user=1$", lines[1])
    assert re.search(r"GET /nope 404 [\d.]+ms user=-$", lines[2])
    assert key not in logs and "secretword" not in logs


def test_quiet_turns_the_request_log_off(tmp_path):
    server = LiveServer(str(tmp_path / "quiet.db"), args=["--quiet"])
    try:
        urllib.request.urlopen(server.url + "/health", timeout=10).read()
        time.sleep(0.3)
        assert "opensync_lite.requests" not in server.logs()
    finally:
        server.stop()


def test_serve_help_names_every_environment_variable():
    out = run("serve", "--help").stdout
    for name in ("OPENSYNC_DB", "OPENSYNC_HOST", "OPENSYNC_PORT", "OPENSYNC_DURABILITY", "OPENSYNC_MAX_BODY",
                 "OPENSYNC_THREADS"):
        assert name in out, name


def test_max_body_option_is_enforced(tmp_path):
    server = LiveServer(str(tmp_path / "body.db"), args=["--max-body", "2048"])
    try:
        key = server.create_key()
        body = b'{"externalId": "big", "title": "' + b"x" * 4000 + b'"}'
        request = urllib.request.Request(server.url + "/sync/session", data=body, method="POST", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 413
    finally:
        server.stop()


def test_keys_edge_cases(tmp_path):
    db = str(tmp_path / "keys.db")
    assert "must not be empty" in run("keys", "create", "--user", " ", "--db", db).stderr
    run("keys", "create", "--db", db)
    assert run("keys", "revoke", "1", "--db", db).stdout.startswith("Revoked key")
    again = run("keys", "revoke", "1", "--db", db)
    assert again.returncode == 0 and "already revoked on" in again.stdout and "UTC" in again.stdout
    header = run("keys", "list", "--db", db).stdout.splitlines()[0]
    assert "CREATED (UTC)" in header and "LAST USED (UTC)" in header


def test_revoke_prefix_is_case_sensitive(app):
    from opensync_lite import auth
    from opensync_lite.models import ApiKey

    with app.app_context():
        _, first = auth.create_key("local")
        _, second = auth.create_key("local")
        ApiKey.update(prefix="osk_AbCdEfGh").where(ApiKey.id == first.id).execute()
        ApiKey.update(prefix="osk_abcdefgh").where(ApiKey.id == second.id).execute()
        assert [k.id for k in auth.find_keys("osk_AbCdEfGh")] == [first.id]
        assert [k.id for k in auth.find_keys("osk_abcd")] == [second.id]


def test_backup_while_serving_is_complete_and_consistent(tmp_path):
    server = LiveServer(str(tmp_path / "busy.db"))
    key = server.create_key()
    stop = threading.Event()
    acknowledged = []

    def write():
        i = 0
        while not stop.is_set():
            body = ('{"sessionExternalId": "s%d", "externalId": "m%d", "role": "user", "textContent": "hello"}'
                    % (i % 5, i)).encode()
            request = urllib.request.Request(server.url + "/sync/message", data=body, method="POST", headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).read()
            acknowledged.append(i)
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(1.0)
        count_before = len(acknowledged)
        result = run("backup", str(tmp_path / "copy.db"), "--db", server.db_path)
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join()
        server.stop()
    assert result.returncode == 0, result.stderr
    copy = sqlite3.connect(tmp_path / "copy.db")
    try:
        messages = copy.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        assert messages >= count_before > 0  # everything acknowledged before the backup, WAL included
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counted = copy.execute("SELECT SUM(message_count) FROM sessions").fetchone()[0]
        assert counted == messages  # one consistent moment, not a torn copy
    finally:
        copy.close()
    assert f"{messages} messages" in result.stdout
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600
    refused = run("backup", str(tmp_path / "copy.db"), "--db", server.db_path)
    assert refused.returncode == 1 and "--force" in refused.stderr


def test_backup_of_a_missing_database_is_refused(tmp_path):
    result = run("backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "none.db"))
    assert result.returncode == 1 and "no database at" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_systemd_unit_runs_the_server(tmp_path):
    db = tmp_path / "svc.db"
    unit = run("service", "--systemd", "--port", "8765", "--db", str(db)).stdout
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(unit)
    assert parser["Install"]["WantedBy"] == "default.target"
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[argv.index("--db") + 1] == str(db) and os.path.isabs(argv[0])
    argv[argv.index("--port") + 1] = "0"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening on http://127.0.0.1:" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == 0


def test_launchd_plist_is_valid(tmp_path):
    plist = plistlib.loads(run("service", "--launchd", "--db", str(tmp_path / "a&b.db")).stdout.encode())
    assert plist["Label"] == "dev.opensync-lite" and plist["RunAtLoad"] is True
    arguments = plist["ProgramArguments"]
    assert arguments[arguments.index("--db") + 1] == str(tmp_path / "a&b.db")


def test_database_urls(tmp_path):
    relative = run("keys", "create", "--db", "sqlite:///rel.db", cwd=tmp_path)
    assert relative.returncode == 0 and (tmp_path / "rel.db").exists()
    absolute = tmp_path / "abs" / "x.db"
    assert run("keys", "create", "--db", f"sqlite:///{absolute}").returncode == 0 and absolute.exists()
    for url, says in (("postgresql://user:pw@127.0.0.1:1/opensync", "cannot open the database postgresql://user:***@"),
                      ("mysql://x/y", "not supported")):
        result = run("serve", "--port", "0", "--db", url, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and says in lines[0], lines
    made = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")]
    assert not any(":" in name or "postgresql" in name or "mysql" in name for name in made), made  # never a file named after a URL
