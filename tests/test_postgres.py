"""What is PostgreSQL's own: the schema kept in step with SQLite's, its version record, its
search indexes in use, URLs on the command line, and `migrate` between the two."""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import CLI, LiveServer, make_key, rows
from opensync_lite import create_app, db

# Each database's own search machinery, outside the comparison.
SEARCH_ONLY = {"sqlite": ("sessions_fts", "messages_fts"),
               "postgresql": ("sessions_search", "messages_search", "search_vector")}


def _sqlite_schema(path):
    tables = [t for (t,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
              if not t.startswith(("sqlite_", *SEARCH_ONLY["sqlite"]))]
    schema = {}
    for table in tables:
        info = rows(path, f"PRAGMA table_info({table})")
        columns = [(name, bool(notnull or pk)) for _, name, _, notnull, _, pk in info]
        primary = tuple(name for _, name, *_, pk in sorted(info, key=lambda r: r[5]) if pk)
        unique, indexes = set(), {}
        for _, name, is_unique, origin, _ in rows(path, f"PRAGMA index_list({table})"):
            cols = tuple(c for _, _, c in rows(path, f"PRAGMA index_info({name})"))
            if origin == "c":
                indexes[name] = (cols, bool(is_unique))
            elif origin == "u":
                unique.add(cols)
        foreign = {(c, t, to, on_delete) for _, _, t, c, to, _, on_delete, _ in rows(path, f"PRAGMA foreign_key_list({table})")}
        schema[table] = {"columns": columns, "primary": primary, "unique": unique, "indexes": indexes, "foreign": foreign}
    return schema


def _postgres_schema(url):
    tables = [t for (t,) in rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    schema = {}
    for table in tables:
        columns = [(name, nullable == "NO") for name, nullable in rows(
            url, "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ?"
                 " ORDER BY ordinal_position", (table,)) if name not in SEARCH_ONLY["postgresql"]]
        constraints = rows(url, """
            SELECT c.contype, c.conname, array_agg(a.attname ORDER BY k.n), max(f.relname), max(c.confdeltype)
            FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            LEFT JOIN pg_class f ON f.oid = c.confrelid
            WHERE c.conrelid = ?::regclass GROUP BY c.contype, c.conname""", (table,))
        primary = next(tuple(cols) for kind, _, cols, _, _ in constraints if kind == "p")
        unique = {tuple(cols) for kind, _, cols, _, _ in constraints if kind == "u"}
        deletes = {"c": "CASCADE", "a": "NO ACTION"}
        foreign = {(cols[0], to, "id", deletes[rule]) for kind, _, cols, to, rule in constraints if kind == "f"}
        owned = {name for _, name, _, _, _ in constraints}
        indexes = {}
        for name, is_unique, cols in rows(url, """
                SELECT i.relname, x.indisunique,
                       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k + 1, true) FROM generate_subscripts(x.indkey, 1) k ORDER BY k)
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = ?::regclass""", (table,)):
            if name not in owned and name not in SEARCH_ONLY["postgresql"]:
                indexes[name] = (tuple(c.strip('"') for c in cols), is_unique)
        schema[table] = {"columns": columns, "primary": primary, "unique": unique, "indexes": indexes, "foreign": foreign}
    return schema


def test_the_two_schemas_do_not_drift(tmp_path, pg_database):
    """schema.sql and schema_postgres.sql hold the same tables, columns (in order, with their
    NOT NULLs), keys, foreign keys and indexes; only the search machinery differs."""
    sqlite_app = create_app({"OPENSYNC_DB": str(tmp_path / "s.db")})
    postgres_app = create_app({"OPENSYNC_DB": pg_database})
    for app in (sqlite_app, postgres_app):
        app.extensions["opensync"].close()
    sqlite_schema, postgres_schema = _sqlite_schema(str(tmp_path / "s.db")), _postgres_schema(pg_database)
    assert sorted(sqlite_schema) == sorted(postgres_schema)
    for table, described in sqlite_schema.items():
        assert described == postgres_schema[table], table
    assert "sessions_by_user_source" in postgres_schema["sessions"]["indexes"]


def test_the_drift_test_sees_a_missing_column(tmp_path, pg_database):
    create_app({"OPENSYNC_DB": pg_database}).extensions["opensync"].close()
    rows(pg_database, "SELECT 1")  # connected
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("ALTER TABLE sessions DROP COLUMN end_reason")
        conn.execute("DROP INDEX sessions_by_user_cost")
    create_app({"OPENSYNC_DB": str(tmp_path / "s.db")}).extensions["opensync"].close()
    sqlite_schema, postgres_schema = _sqlite_schema(str(tmp_path / "s.db")), _postgres_schema(pg_database)
    assert sqlite_schema["sessions"]["columns"] != postgres_schema["sessions"]["columns"]
    assert set(sqlite_schema["sessions"]["indexes"]) - set(postgres_schema["sessions"]["indexes"]) == {"sessions_by_user_cost"}


def test_the_schema_version_is_recorded_and_a_newer_one_refused(pg_database):
    create_app({"OPENSYNC_DB": pg_database}).extensions["opensync"].close()
    assert rows(pg_database, "SELECT value FROM settings WHERE name = 'schema_version'") == [(str(db.SCHEMA_VERSION),)]
    rows(pg_database, "UPDATE settings SET value = ? WHERE name = 'schema_version'", (str(db.SCHEMA_VERSION + 1),))
    with pytest.raises(db.SchemaTooNew):
        create_app({"OPENSYNC_DB": pg_database})


def test_processes_starting_together_create_the_schema_once(pg_database):
    """Several processes starting at once on an empty database: one creates the schema, the
    others wait for it on the lock and find it done."""
    starts = [subprocess.Popen(CLI + ["keys", "list", "--db", pg_database], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [proc.communicate(timeout=60)[1] for proc in starts]
    assert [proc.returncode for proc in starts] == [0] * 4, errors
    assert rows(pg_database, "SELECT COUNT(*) FROM users WHERE name = 'local'") == [(1,)]


def test_search_uses_the_gin_indexes(pg_database):
    """What the search module matches is what the GIN indexes hold."""
    from opensync_lite.search import postgres as search

    app = create_app({"OPENSYNC_DB": pg_database})
    try:
        with app.app_context():
            database = app.extensions["opensync"]
            database.execute_sql("SET enable_seqscan = off")
            sql = (f"EXPLAIN SELECT id FROM sessions AS s WHERE {search.SESSION_VECTOR} @@ {search.QUERY}"
                   f" UNION SELECT m.id FROM messages AS m WHERE {search.MESSAGE_VECTOR} @@ {search.QUERY}")
            plan = "\n".join(r[0] for r in database.execute_sql(sql, ("'word'", "'word'")).fetchall())
    finally:
        app.extensions["opensync"].close()
    assert "sessions_search" in plan and "messages_search" in plan, plan


@pytest.mark.parametrize("text, words", [
    ("see https://example.com/parser/tokenizer.py", ["example", "tokenizer", "py"]),
    ("Vec<String> and snake_case_name", ["string", "snake", "case"]),
    ("mail me at dev@example.org", ["dev", "org"]),
])
def test_postgres_finds_the_words_fts5_finds(tmp_path, pg_database, text, words):
    """Words inside URLs, paths, tags and snake_case are found on both databases."""
    for database in (str(tmp_path / "s.db"), pg_database):
        app = create_app({"OPENSYNC_DB": database, "TESTING": True})
        try:
            client, key = app.test_client(), make_key(app)
            headers = {"Authorization": f"Bearer {key}"}
            client.post("/sync/message", json={"sessionExternalId": "s", "externalId": "m", "role": "user",
                                               "textContent": text}, headers=headers)
            for word in words:
                found = client.get(f"/api/search?q={word}", headers=headers).get_json()["results"]
                assert [r["externalId"] for r in found] == ["s"], (database, word)
                assert "<mark>" in found[0]["snippet"], (database, word, found[0]["snippet"])
        finally:
            app.extensions["opensync"].close()


# --- URLs on the command line -------------------------------------------------------------------

def _cli(*args, env=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_every_command_takes_a_postgres_url(pg_database):
    assert _cli("keys", "create", "--db", pg_database, "--source", "opencode").returncode == 0
    listed = _cli("keys", "list", env={"OPENSYNC_DB": pg_database})
    assert listed.returncode == 0 and "opencode" in listed.stdout
    listed = _cli("keys", "list", env={"DATABASE_URL": pg_database})
    assert listed.returncode == 0 and "opencode" in listed.stdout
    server = LiveServer(pg_database)
    try:
        assert "database: postgresql://" in server.banner[0]
    finally:
        server.stop()
    # A pooled URL, with worker processes that each open their own pool after the fork.
    pooled = LiveServer(pg_database.replace("postgresql://", "postgresql+pool://"), args=["--workers", "2"])
    try:
        key = pooled.create_key()
        for n in range(20):
            request = urllib.request.Request(pooled.url + "/sync/session", data=json.dumps({"externalId": f"p{n}"}).encode(),
                                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            assert urllib.request.urlopen(request).status == 200
    finally:
        pooled.stop()
    assert rows(pg_database, "SELECT COUNT(*) FROM sessions WHERE external_id LIKE 'p%'") == [(20,)]


def test_a_password_is_never_printed(pg_database):
    url = pg_database.replace("postgres@", "postgres:hunter2@")  # trust auth: any password is taken
    server = LiveServer(url)
    try:
        assert "hunter2" not in "".join(server.banner) and ":***@" in server.banner[0]
    finally:
        server.stop()


def test_without_the_driver_the_error_names_the_extra(pg_database):
    blocked = ("import sys; sys.modules['psycopg'] = None; from opensync_lite.cli import main; "
               "main(['keys', 'list', '--db', sys.argv[1]])")
    result = subprocess.run([CLI[0], "-c", blocked, pg_database], capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install 'opensync-lite[postgres]'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql://nobody@127.0.0.1:1/none"])
def test_a_database_that_cannot_be_used_is_one_line(tmp_path, url):
    result = _cli("keys", "list", "--db", url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not any(tmp_path.iterdir()) and not os.path.exists("mysql:")


# --- migrate ------------------------------------------------------------------------------------

def _fill(database):
    app = create_app({"OPENSYNC_DB": database, "TESTING": True})
    client, key = app.test_client(), make_key(app)
    make_key(app, user="alice")
    headers = {"Authorization": f"Bearer {key}"}
    for i, source in enumerate(["claude-code", "opencode", None, "cursor"]):
        client.post("/sync/session", json={"externalId": f"s{i}", "title": f"session {i}", "model": "claude-sonnet-4-5",
                                           "promptTokens": 100 * i, "completionTokens": 10, "createdAt": 1_700_000_000_000 + i,
                                           **({"source": source} if source else {})}, headers=headers)
        client.post("/sync/batch", json={"messages": [
            {"sessionExternalId": f"s{i}", "externalId": f"m{j}", "role": "user", "textContent": f"tokenizer {i} {j}",
             "parts": [{"type": "text", "content": f"p{j}"}, {"type": "tool-call", "content": {"n": j}},
                       {"type": "tool-call", "content": {"toolName": "Edit", "args": {"file_path": f"/w/src/f{j}.py"}}}]}
            for j in range(3)]}, headers=headers)
    client.patch("/api/sessions/s1", json={"starred": True, "tags": ["parser", "kept"], "note": "n", "evalStatus": "golden"},
                 headers=headers)
    client.patch("/api/sessions/s2", json={"tags": ["parser"]}, headers=headers)
    app.extensions["opensync"].close()
    return key


def _everything(database):
    return {
        "users": rows(database, "SELECT name FROM users ORDER BY name"),
        "keys": rows(database, "SELECT key_hash, default_source FROM api_keys ORDER BY key_hash"),
        "sessions": rows(database, "SELECT u.name, s.external_id, s.source, s.title, s.prompt_tokens, s.cost, s.cost_status,"
                                   " s.message_count, s.created_at, s.updated_at FROM sessions s JOIN users u ON u.id = s.user_id"
                                   " ORDER BY s.external_id"),
        "messages": rows(database, "SELECT s.external_id, m.external_id, m.text_content, m.created_at FROM messages m"
                                   " JOIN sessions s ON s.id = m.session_id ORDER BY 1, 2"),
        "curations": rows(database, "SELECT s.external_id, c.starred, c.note, c.eval_status FROM curations c"
                                    " JOIN sessions s ON s.id = c.session_id ORDER BY 1"),
        "tags": rows(database, "SELECT s.external_id, t.name FROM session_tags st JOIN tags t ON t.id = st.tag_id"
                               " JOIN sessions s ON s.id = st.session_id ORDER BY 1, 2"),
        "files": rows(database, "SELECT s.external_id, m.external_id, f.path, CASE WHEN f.changed THEN 1 ELSE 0 END"
                                " FROM file_touches f JOIN messages m ON m.id = f.message_id JOIN sessions s ON s.id = f.session_id"
                                " ORDER BY 1, 2, 3"),
        "parts": rows(database, 'SELECT m.external_id, p.type, p.content, p."order" FROM parts p'
                                " JOIN messages m ON m.id = p.message_id JOIN sessions s ON s.id = m.session_id"
                                ' ORDER BY s.external_id, m.external_id, p."order"'),
    }


def test_migrate_copies_a_local_store_once(tmp_path, pg_database):
    local = str(tmp_path / "local.db")
    key = _fill(local)
    first = _cli("migrate", "--from", f"sqlite:///{local}", "--to", pg_database)
    assert first.returncode == 0, first.stderr
    assert "sessions                  4 copied;         4 in the source,         4 in the target" in first.stdout
    assert _everything(pg_database) == _everything(local)
    assert len(_everything(local)["files"]) == 12  # the file index came along (rebuilt in the target)
    again = _cli("migrate", "--from", local, "--to", pg_database)
    assert again.returncode == 0 and "messages                  0 copied;        12 in the source,        12 in the target" in again.stdout
    assert "curations                 0 copied;         2 in the source,         2 in the target" in again.stdout
    assert "session_tags              0 copied;         3 in the source,         3 in the target" in again.stdout
    assert "session_tags              3 copied" in first.stdout
    assert _everything(pg_database) == _everything(local)

    # The same key works against the server, and the copied sessions search and page there.
    app = create_app({"OPENSYNC_DB": pg_database, "TESTING": True})
    try:
        client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
        assert client.get("/api/sessions?source=opencode", headers=headers).get_json()["total"] == 1
        found = client.get("/api/search?q=tokenizer&limit=50", headers=headers).get_json()["results"]
        assert sorted(r["externalId"] for r in found) == ["s0", "s1", "s2", "s3"]  # one result a session
        assert sorted(int(m["messageId"]) for r in found for m in r["matches"]) == sorted(
            int(i) for (i,) in rows(pg_database, "SELECT id FROM messages"))  # each message's match
        # A new message on the server after the copy: a later migrate keeps it, and the count.
        client.post("/sync/message", json={"sessionExternalId": "s0", "externalId": "live", "role": "user"}, headers=headers)
    finally:
        app.extensions["opensync"].close()
    assert _cli("migrate", "--from", local, "--to", pg_database).returncode == 0
    assert rows(pg_database, "SELECT message_count FROM sessions WHERE external_id = 's0'") == [(4,)]


def test_migrate_merges_into_a_server_that_has_other_users_and_sessions(tmp_path, pg_database):
    """Ids differ between the two stores: rows are matched by name and externalId, never by id."""
    server = create_app({"OPENSYNC_DB": pg_database, "TESTING": True})
    bob = make_key(server, user="bob")
    client = server.test_client()
    client.post("/sync/message", json={"sessionExternalId": "s0", "externalId": "bob-1", "role": "user"},
                headers={"Authorization": f"Bearer {bob}"})
    server.extensions["opensync"].close()
    local = str(tmp_path / "local.db")
    _fill(local)
    assert _cli("migrate", "--from", local, "--to", pg_database).returncode == 0
    assert rows(pg_database, "SELECT u.name, COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id GROUP BY u.name"
                             " ORDER BY u.name") == [("bob", 1), ("local", 4)]
    assert rows(pg_database, "SELECT s.message_count FROM sessions s JOIN users u ON u.id = s.user_id"
                             " WHERE u.name = 'bob'") == [(1,)]


def test_migrate_refuses_the_same_database_twice(tmp_path):
    result = _cli("migrate", "--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "a.db"))
    assert result.returncode == 1 and "same database" in result.stderr


def _fill_many(database, sessions=4, messages=2000):
    """A store big enough that copying it takes a while: every message has a text part, a
    tool call without a file and an Edit of a file (so a file-index row)."""
    app = create_app({"OPENSYNC_DB": database, "TESTING": True})
    client, headers = app.test_client(), {"Authorization": f"Bearer {make_key(app)}"}
    for i in range(sessions):
        for start in range(0, messages, 500):
            response = client.post("/sync/batch", headers=headers, json={"messages": [
                {"sessionExternalId": f"big{i}", "externalId": f"m{j}", "role": "assistant", "textContent": f"step {j}",
                 "parts": [{"type": "text", "content": f"step {j}"}, {"type": "tool-call", "content": {"n": j}},
                           {"type": "tool-call", "content": {"toolName": "Edit", "args": {"file_path": f"/w/f{j % 97}.py"}}}]}
                for j in range(start, min(start + 500, messages))]})
            assert response.status_code == 200, response.get_json()
    app.extensions["opensync"].close()


def _per_message(database):
    """{(session, message): (parts, file-index rows)} of every stored message."""
    return {(s, m): (parts, touches) for s, m, parts, touches in rows(database, """
        SELECT s.external_id, m.external_id,
               (SELECT COUNT(*) FROM parts p WHERE p.message_id = m.id),
               (SELECT COUNT(*) FROM file_touches f WHERE f.session_id = s.id AND f.message_id = m.id)
        FROM messages m JOIN sessions s ON s.id = m.session_id""")}


def _target(kind, tmp_path, request):
    return str(tmp_path / "target.db") if kind == "sqlite" else request.getfixturevalue("pg_database")


def _stored_messages(database):
    """How many messages the target holds yet (None while it is not made)."""
    if not db.is_postgres_url(database) and not os.path.exists(database):
        return None  # a SQLite connection would make the file
    try:
        return rows(database, "SELECT COUNT(*) FROM messages")[0][0]
    except Exception:  # the schema is being made
        return None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_migrate_killed_mid_copy_leaves_whole_messages_and_a_rerun_completes_it(tmp_path, kind, request):
    """SIGKILL while messages are being copied: every message in the target has all its parts
    and its file-index rows, and running it again makes the target equal the source."""
    local, target = str(tmp_path / "local.db"), _target(kind, tmp_path, request)
    _fill_many(local)
    source = _per_message(local)
    with open(tmp_path / "first.out", "w") as out:
        run = subprocess.Popen(CLI + ["migrate", "--from", local, "--to", target], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not _stored_messages(target) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL, (tmp_path / "first.out").read_text()
    halfway = _per_message(target)
    assert 0 < len(halfway) < len(source)  # it was killed in the middle of the messages
    assert {key: counts for key, counts in halfway.items() if counts != source[key]} == {}

    again = _cli("migrate", "--from", local, "--to", target)
    assert again.returncode == 0, again.stderr
    assert _per_message(target) == source
    assert _everything(target) == _everything(local)
    copied = len(source) - len(halfway)
    assert f"{'messages':<17} {copied:>9} copied;" in again.stdout and "Repaired" not in again.stdout


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_rerun_repairs_what_an_older_interrupted_migrate_left(tmp_path, kind, request):
    """An older version copied messages and their parts in two transactions and built the file
    index at the end: killed in between, it left messages without parts or without index rows.
    A re-run puts them back, and says so rather than "0 copied"."""
    local, target = str(tmp_path / "local.db"), _target(kind, tmp_path, request)
    _fill(local)
    assert _cli("migrate", "--from", local, "--to", target).returncode == 0
    session = "(SELECT id FROM sessions WHERE external_id = ?)"
    lost = rows(target, f"SELECT COUNT(*) FROM parts WHERE message_id IN (SELECT id FROM messages WHERE session_id = {session})",
                ("s1",))[0][0]
    rows(target, f"DELETE FROM parts WHERE message_id IN (SELECT id FROM messages WHERE session_id = {session})", ("s1",))
    rows(target, f"DELETE FROM file_touches WHERE session_id IN ({session}, {session})", ("s1", "s2"))
    broken = {key for key, counts in _per_message(target).items() if counts != _per_message(local)[key]}
    assert lost == 9 and len(broken) == 6  # s1's three messages lost everything, s2's three their index rows

    again = _cli("migrate", "--from", local, "--to", target)
    assert again.returncode == 0, again.stderr
    assert _everything(target) == _everything(local) and _per_message(target) == _per_message(local)
    assert f"{'parts':<17} {lost:>9} copied;" in again.stdout
    assert f"{'file_touches':<17} {len(broken):>9} copied;" in again.stdout
    assert f"Repaired {len(broken)} messages" in again.stdout, again.stdout

    third = _cli("migrate", "--from", local, "--to", target)  # nothing left to repair
    assert f"{'parts':<17} {0:>9} copied;" in third.stdout and "Repaired" not in third.stdout, third.stdout
