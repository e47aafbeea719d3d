"""Another Flask app mounts opensync-lite under a prefix with its own database path."""

import pytest
from flask import Flask

import opensync_lite

from conftest import make_key, rows

pytestmark = pytest.mark.both_databases


def test_host_app_mounts_opensync_under_a_prefix(db_path, monkeypatch):
    """On a file the host names, or on PostgreSQL through OPENSYNC_DB in the environment."""
    host = Flask("host")
    if "://" in db_path:
        monkeypatch.setenv("OPENSYNC_DB", db_path)
    else:
        host.config["OPENSYNC_DB"] = db_path

    @host.get("/")
    def home():
        return "host home"

    opensync_lite.init_app(host, url_prefix="/opensync")
    client = host.test_client()
    headers = {"Authorization": f"Bearer {make_key(host)}"}

    assert client.get("/").get_data(as_text=True) == "host home"
    assert client.get("/opensync/health").get_json()["status"] == "ok"
    response = client.post("/opensync/sync/session", json={"externalId": "e1", "source": "cursor"}, headers=headers)
    assert response.status_code == 200
    got = client.get("/opensync/api/sessions/get?id=e1", headers=headers).get_json()
    assert got["session"]["source"] == "cursor"
    # Errors inside the mount are ours (JSON); the host's own routes are untouched.
    bad = client.post("/opensync/sync/session", json={"title": "no id"}, headers=headers)
    assert bad.status_code == 400 and "externalId" in bad.get_json()["fields"]
    assert client.post("/opensync/sync/session", json={"externalId": "x"}).status_code == 401
    assert client.get("/sync/session").status_code == 404  # nothing leaks to the root
    assert rows(db_path, "SELECT external_id, source FROM sessions") == [("e1", "cursor")]
    host.extensions["opensync"].close()


def test_two_apps_in_one_process_keep_their_own_files(tmp_path):
    a = opensync_lite.create_app({"OPENSYNC_DB": str(tmp_path / "a.db")})
    b = opensync_lite.create_app({"OPENSYNC_DB": str(tmp_path / "b.db")})
    for app, name in ((a, "in-a"), (b, "in-b")):
        headers = {"Authorization": f"Bearer {make_key(app)}"}
        assert app.test_client().post("/sync/session", json={"externalId": name}, headers=headers).status_code == 200
    assert rows(str(tmp_path / "a.db"), "SELECT external_id FROM sessions") == [("in-a",)]
    assert rows(str(tmp_path / "b.db"), "SELECT external_id FROM sessions") == [("in-b",)]
    for app in (a, b):
        app.extensions["opensync"].close()
