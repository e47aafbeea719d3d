"""`opensync-lite import opencode` on histories that are wrong in the ways files on disk can be:
JSON that is no object, JSON nested past any parser's depth (in files and in opencode.db), ids that
are no strings, costs of Infinity, NaN or 1e308 and token counts past any real session, a FIFO or
a device named *.json, a file or a database row too large to read whole. Each is skipped and
reported by name; the rest of the run is imported, and the API keeps answering strict JSON."""

import json
import os
import sqlite3
import subprocess

import pytest

from conftest import CLI
from opensync_lite import schemas
from opensync_lite.importers import opencode
from test_import_opencode import step, write_database, write_folders

pytestmark = pytest.mark.both_databases

DEEP = 200_000  # far past Python's recursion limit


def run_import(db_path, root, timeout=60):
    result = subprocess.run(CLI + ["import", "opencode", str(root), "--db", db_path],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def skipped(result):
    return [line for line in result.stderr.splitlines() if line.startswith("skipped ")]


def reported(result, name):
    """The report lines naming ``name`` (a path or an id)."""
    return [line for line in skipped(result) if str(name) in line]


def _no_constants(name):
    raise AssertionError(f"not JSON: {name}")


def strict(response):
    """The body as strict JSON: Infinity, -Infinity and NaN are not JSON."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data(as_text=True), parse_constant=_no_constants)


def imported(api):
    return {s["externalId"]: s for s in strict(api.get("/api/sessions"))["sessions"]}


def tokens(s):
    return s["inputTokens"], s["outputTokens"], s["cacheReadTokens"], s["cacheWriteTokens"]


GOOD_TOKENS = (150, 75, 1300, 200)  # the two steps test_import_opencode's sessions hold


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "opencode"
    root.mkdir()
    write_folders(root, "ses_good", "Good, in folders")
    write_database(root, "ses_db", "Good, in the database")
    return root


def test_json_that_is_no_object_is_skipped_and_the_rest_imported(api, db_path, root):
    storage = root / "storage"
    (storage / "session" / "p1" / "ses_list.json").write_text(json.dumps([{"id": "ses_list"}]))
    (storage / "session" / "p1" / "ses_number.json").write_text("42")
    write_folders(root, "ses_parts", "A message and a part that are no objects")
    bad_message = storage / "message" / "ses_parts" / "msg_string.json"
    bad_message.write_text(json.dumps("hello"))
    bad_part = storage / "part" / "ses_parts-m2" / "prt_999.json"
    bad_part.write_text(json.dumps([1, 2, 3]))

    result = run_import(db_path, root)
    for name in ("ses_list.json", "ses_number.json", bad_message, bad_part):
        assert len(reported(result, name)) == 1, result.stderr
    sessions = imported(api)
    assert set(sessions) == {"ses_good", "ses_db", "ses_parts"}
    assert tokens(sessions["ses_good"]) == tokens(sessions["ses_db"]) == tokens(sessions["ses_parts"]) == GOOD_TOKENS
    # The message beside the bad part keeps its other parts.
    answer = api.session("ses_parts")["messages"][1]
    assert answer["textContent"] == "Done: the cart is in cart.py"


def test_json_nested_too_deeply_in_files_and_in_the_database(api, db_path, root):
    storage = root / "storage"
    deep = "[" * DEEP + "]" * DEEP
    (storage / "session" / "p1" / "ses_deep.json").write_text(deep)
    write_folders(root, "ses_deep_message", "A message nested too deeply")
    deep_message = storage / "message" / "ses_deep_message" / "msg_deep.json"
    deep_message.write_text('{"a":' * DEEP + "1" + "}" * DEEP)
    write_database(root, "ses_deep_part", "A part nested too deeply")
    conn = sqlite3.connect(root / "opencode.db")
    conn.execute("INSERT INTO part VALUES ('prt_deep', 'ses_deep_part-m2', 'ses_deep_part', 1, 1, ?)", (deep,))
    conn.execute("INSERT INTO message VALUES ('msg_db_deep', 'ses_deep_part', 1, 1, ?)", ('{"x":' * DEEP + "0" + "}" * DEEP,))
    conn.commit()
    conn.close()

    result = run_import(db_path, root)
    assert len(reported(result, "ses_deep.json")) == 1, result.stderr
    assert len(reported(result, deep_message)) == 1, result.stderr
    assert len(reported(result, "prt_deep")) == 1 and len(reported(result, "msg_db_deep")) == 1, result.stderr
    assert all("opencode.db" in line for line in reported(result, "prt_deep") + reported(result, "msg_db_deep")), result.stderr
    sessions = imported(api)
    assert set(sessions) == {"ses_good", "ses_db", "ses_deep_message", "ses_deep_part"}
    for sid in ("ses_good", "ses_db", "ses_deep_message", "ses_deep_part"):
        assert tokens(sessions[sid]) == GOOD_TOKENS, sid
    assert len(api.session("ses_deep_part")["messages"]) == 2


def test_ids_that_are_no_strings(api, db_path, root):
    storage = root / "storage"
    write_folders(root, "ses_number_id", "Its file names it, its id is a number")
    path = storage / "session" / "p1" / "ses_number_id.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "id": 7}))
    write_folders(root, "ses_ids", "Messages with ids of every type")
    for name, value in (("msg_null", None), ("msg_list", ["a", "b"]), ("msg_int", 12)):
        (storage / "message" / "ses_ids" / f"{name}.json").write_text(
            json.dumps({"id": value, "sessionID": "ses_ids", "role": "user"}))
    conn = sqlite3.connect(root / "opencode.db")
    # SQLite keeps a BLOB even in a TEXT column: an id no string compares with.
    conn.execute("INSERT INTO session (id, title, time_created, time_updated) VALUES (x'0102', 'blob id', 1, 2)")
    conn.execute("INSERT INTO message VALUES (x'0304', 'ses_db', 1, 1, '{\"role\": \"user\"}')")
    conn.commit()
    conn.close()

    result = run_import(db_path, root)
    assert len(reported(result, path)) == 1, result.stderr
    for name in ("msg_null", "msg_list", "msg_int"):
        assert len(reported(result, f"{name}.json")) == 1, result.stderr
    assert len([line for line in skipped(result) if "opencode.db" in line]) == 2, result.stderr
    sessions = imported(api)
    assert set(sessions) == {"ses_good", "ses_db", "ses_ids"}
    assert tokens(sessions["ses_ids"]) == tokens(sessions["ses_db"]) == GOOD_TOKENS
    assert [m["externalId"] for m in api.session("ses_ids")["messages"]] == ["ses_ids-m1", "ses_ids-m2"]
    assert len(api.session("ses_db")["messages"]) == 2


def _usage_session(root, sid, steps):
    """A folder-layout session whose one assistant message holds ``steps``."""
    write_folders(root, sid, f"Usage {sid}")
    parts = root / "storage" / "part" / f"{sid}-m2"
    for old in parts.glob("*.json"):
        if json.loads(old.read_text())["type"] == "step-finish":
            old.unlink()
    for i, s in enumerate(steps):
        # json.dumps writes Infinity and NaN, as a careless writer would.
        (parts / f"prt_9{i:02d}.json").write_text(json.dumps({**s, "id": f"{sid}-step{i}"}))


def test_absurd_costs_and_token_counts_stay_in_bounds_and_the_api_answers_json(api, db_path, root):
    big = schemas.MAX_COUNT * 9 // 10
    _usage_session(root, "ses_inf", [step(10, 1, 0, 0, 0, float("inf")), step(10, 1, 0, 0, 0, 0.5)])
    _usage_session(root, "ses_nan", [step(10, 1, 0, 0, 0, float("nan")), step(10, 1, 0, 0, 0, 0.25)])
    _usage_session(root, "ses_1e308", [step(10, 1, 0, 0, 0, 1e308), step(10, 1, 0, 0, 0, 1e308)])
    # Each cost within the bounds, their sum past them: the session's cost stops at MAX_COST.
    _usage_session(root, "ses_dear", [step(10, 1, 0, 0, 0, schemas.MAX_COST * 0.6)] * 2)
    # A count past any bound is not recorded; counts within it summing past it stop at MAX_COUNT.
    _usage_session(root, "ses_huge", [step(10**30, 1, 0, 0, 0, 0.1), step(-5, 2, 0, 0, 0, 0.1)])
    _usage_session(root, "ses_many", [step(big, big, 0, big, big, 0.1), step(big, big, 0, big, big, 0.1)])

    result = run_import(db_path, root)
    assert skipped(result) == [], result.stderr
    sessions = imported(api)
    assert set(sessions) == {"ses_good", "ses_db", "ses_inf", "ses_nan", "ses_1e308", "ses_dear", "ses_huge", "ses_many"}
    assert sessions["ses_inf"]["cost"] == pytest.approx(0.5) and sessions["ses_nan"]["cost"] == pytest.approx(0.25)
    assert tokens(sessions["ses_inf"]) == (20, 2, 0, 0)
    assert sessions["ses_1e308"]["cost"] <= schemas.MAX_COST and tokens(sessions["ses_1e308"]) == (20, 2, 0, 0)
    assert sessions["ses_dear"]["cost"] == schemas.MAX_COST and sessions["ses_dear"]["costEstimated"] is False
    assert tokens(sessions["ses_huge"]) == (0, 3, 0, 0)
    assert tokens(sessions["ses_many"]) == (schemas.MAX_COUNT,) * 4
    assert sessions["ses_many"]["promptTokens"] == schemas.MAX_COUNT
    many = api.session("ses_many")["messages"][1]
    assert many["inputTokens"] == many["promptTokens"] == schemas.MAX_COUNT
    assert tokens(sessions["ses_good"]) == GOOD_TOKENS

    stats = strict(api.get("/api/stats"))
    assert json.dumps(stats, allow_nan=False)
    exported = api.get("/api/export/sessions?format=json")
    assert len(strict(exported)) == 8  # a JSON array of the sessions


def test_a_fifo_a_device_and_a_huge_file_named_json_are_skipped(api, db_path, root):
    storage = root / "storage"
    os.mkfifo(storage / "session" / "p1" / "ses_fifo.json")  # nobody ever writes to it
    os.mkfifo(storage / "message" / "ses_good" / "msg_fifo.json")
    os.symlink("/dev/zero", storage / "part" / "ses_good-m2" / "prt_zero.json")
    huge = storage / "session" / "p1" / "ses_huge.json"
    with open(huge, "wb") as f:  # sparse: no disk, but too large to read whole
        f.truncate(opencode.MAX_FILE + 1)

    conn = sqlite3.connect(root / "opencode.db")  # a row of opencode.db too large to fetch
    conn.execute("INSERT INTO part VALUES ('prt_huge', 'ses_db-m2', 'ses_db', 1, 1, zeroblob(?))", (opencode.MAX_FILE + 1,))
    conn.commit()
    conn.close()

    result = run_import(db_path, root, timeout=30)
    huge_row = reported(result, "prt_huge")
    assert len(huge_row) == 1 and "opencode.db" in huge_row[0] and "MiB" in huge_row[0], result.stderr
    for name in ("ses_fifo.json", "msg_fifo.json", "prt_zero.json"):
        assert len(reported(result, name)) == 1 and "not a regular file" in reported(result, name)[0], result.stderr
    assert len(reported(result, "ses_huge.json")) == 1 and "MiB" in reported(result, "ses_huge.json")[0], result.stderr
    sessions = imported(api)
    assert set(sessions) == {"ses_good", "ses_db"}
    assert tokens(sessions["ses_good"]) == tokens(sessions["ses_db"]) == GOOD_TOKENS
