import subprocess

from opensync_lite import config, db

from conftest import CLI


def test_default_db_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.default_db_path() == str(tmp_path / "xdg" / "opensync-lite" / "opensync.db")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.default_db_path() == str(tmp_path / "home" / ".local" / "share" / "opensync-lite" / "opensync.db")


def test_serve_uses_opensync_db_env_and_prints_how_to_connect(tmp_path):
    db = tmp_path / "nested" / "dir" / "env.db"
    proc = subprocess.Popen(
        CLI + ["serve", "--port", "0"], env={"OPENSYNC_DB": str(db), "PATH": ""}, stdout=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()
        rest = proc.stdout.readline() + proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first and str(db) in first
        assert "CLAUDE_SYNC_CONVEX_URL=http://127.0.0.1:" in rest and "CLAUDE_SYNC_API_KEY" in rest
        assert db.exists()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_serve_says_when_there_is_no_key_yet(tmp_path):
    from conftest import LiveServer

    fresh = LiveServer(str(tmp_path / "fresh.db"))
    fresh.stop()  # right after start: the stop signal is already handled, so a clean exit
    assert fresh.proc.returncode == 0
    assert "No API key yet" in fresh.logs()
    keyed = LiveServer(str(tmp_path / "keyed.db"))
    keyed.create_key()
    keyed.stop()
    again = LiveServer(keyed.db_path)
    again.stop()
    assert keyed.logs().count("No API key yet") == 1  # the first start only, before the key
    assert "No API key yet" not in again.logs()


def test_serve_warns_when_listening_on_all_interfaces(tmp_path):
    proc = subprocess.Popen(
        CLI + ["serve", "--host", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "y.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "warning: listening on all interfaces" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_durability_full_sets_synchronous_full(tmp_path):
    from opensync_lite import create_app

    for durability, expected in (("normal", 1), ("full", 2)):
        app = create_app({"OPENSYNC_DB": str(tmp_path / f"{durability}.db"), "OPENSYNC_DURABILITY": durability})
        database = app.extensions["opensync"]
        with database.connection_context():
            assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == expected
            assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
            assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
            assert database.execute_sql("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION


def test_version_flag():
    out = subprocess.run(CLI + ["--version"], capture_output=True, text=True, check=True).stdout
    assert "opensync-lite" in out
