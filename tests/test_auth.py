import pytest
from click.testing import CliRunner

from opensync_lite.cli import main

from conftest import Api, make_key, rows

pytestmark = pytest.mark.both_databases

PROTECTED = [
    ("post", "/sync/session"),
    ("post", "/sync/message"),
    ("post", "/sync/batch"),
    ("get", "/sync/sessions/list"),
    ("get", "/api/sessions"),
    ("get", "/api/sessions/get?id=1"),
]


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic osk_abc", "Bearer not-a-key", "Bearer osk_" + "x" * 32],
)
def test_protected_routes_refuse_bad_keys(client, method, path, header):
    headers = {"Authorization": header} if header is not None else {}
    response = getattr(client, method)(path, headers=headers, json={"externalId": "s"})
    assert response.status_code == 401
    assert response.get_json()["error"]


def test_revoked_key_is_refused_at_once(app, client, db_path):
    key = make_key(app)
    api = Api(client, key)
    assert api.post("/sync/session", {"externalId": "a"}).status_code == 200
    result = CliRunner().invoke(main, ["keys", "revoke", key[:12], "--db", db_path])
    assert result.exit_code == 0, result.output
    response = api.post("/sync/session", {"externalId": "b"})
    assert response.status_code == 401
    assert rows(db_path, "SELECT external_id FROM sessions") == [("a",)]


def test_only_a_hash_of_the_key_is_stored(app, db_path, database_kind):
    key = make_key(app, label="laptop")
    if database_kind == "sqlite":  # every byte of the file and its log
        data = b""
        for suffix in ("", "-wal"):
            try:
                with open(db_path + suffix, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
    else:  # every value of every table, as text
        tables = [t for (t,) in rows(db_path, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        data = "".join(str(rows(db_path, f"SELECT * FROM {t}")) for t in tables).encode()
    assert key.encode() not in data
    assert key[4:].encode() not in data
    (stored,) = rows(db_path, "SELECT key_hash, prefix, label FROM api_keys")
    assert len(stored[0]) == 64 and stored[1] == key[:12] and stored[2] == "laptop"


def test_a_key_sees_only_its_users_data(api, other_api):
    api.post("/sync/session", {"externalId": "shared-id", "title": "mine", "source": "claude-code"})
    api.post("/sync/message", {"sessionExternalId": "shared-id", "externalId": "m1", "role": "user", "textContent": "secret"})
    own = api.session("shared-id")["session"]

    assert other_api.get("/api/sessions").get_json() == {"sessions": [], "total": 0, "nextCursor": None, "previousCursor": None}
    assert other_api.get("/sync/sessions/list").get_json() == {"sessionIds": []}
    for ident in (own["id"], "shared-id"):
        assert other_api.get("/api/sessions/get", query_string={"id": ident}).status_code == 404

    # The same externalId under another user is a separate session.
    other_api.post("/sync/session", {"externalId": "shared-id", "title": "theirs"})
    assert api.session("shared-id")["session"]["title"] == "mine"
    assert other_api.session("shared-id")["session"]["title"] == "theirs"
    assert api.session("shared-id")["messages"][0]["textContent"] == "secret"
    assert other_api.session("shared-id")["messages"] == []


def test_cli_keys_create_list_revoke(db_path):
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--user", "ana", "--label", "desk", "--db", db_path])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("osk_") and len(key) == 36

    listed = runner.invoke(main, ["keys", "list", "--db", db_path])
    assert listed.exit_code == 0
    assert key[:12] in listed.output and "ana" in listed.output and "desk" in listed.output
    assert key not in listed.output

    revoked = runner.invoke(main, ["keys", "revoke", "1", "--db", db_path])
    assert revoked.exit_code == 0, revoked.output
    (revoked_at,) = rows(db_path, "SELECT revoked_at FROM api_keys WHERE id = 1")[0]
    assert revoked_at is not None

    missing = runner.invoke(main, ["keys", "revoke", "osk_nomatch", "--db", db_path])
    assert missing.exit_code != 0 and "0 keys match" in missing.output
