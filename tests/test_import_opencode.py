"""`opensync-lite import opencode` on both of OpenCode's layouts, written by the test."""

import json
import sqlite3
import subprocess

import pytest

from conftest import CLI, rows, snapshot, watch_import

pytestmark = pytest.mark.both_databases

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def step(input_, output, reasoning, read, write, cost):
    return {"type": "step-finish", "tokens": {"input": input_, "output": output, "reasoning": reasoning,
                                              "cache": {"read": read, "write": write}}, "cost": cost}


def session_data(sid, title, parent=None, minutes=10):
    info = {"id": sid, "projectID": "p1", "directory": "/home/dev/shop", "title": title,
            "time": {"created": T0, "updated": T0 + minutes * 60_000}}
    if parent:
        info["parentID"] = parent
    return info


def messages_for(sid):
    """A user prompt and an assistant answer in two steps, with a tool call and reasoning."""
    user = {"id": f"{sid}-m1", "sessionID": sid, "role": "user", "time": {"created": T0 + 1000}}
    assistant = {"id": f"{sid}-m2", "sessionID": sid, "role": "assistant", "time": {"created": T0 + 2000},
                 "modelID": "claude-sonnet-4-20250514", "providerID": "anthropic", "cost": 0.02,
                 # Only the last step's tokens, as OpenCode records them:
                 "tokens": {"input": 50, "output": 20, "reasoning": 5, "cache": {"read": 300, "write": 0}}}
    parts = {
        user["id"]: [{"id": "p1", "type": "text", "text": f"Add a cart to {sid}"}],
        assistant["id"]: [
            {"id": "p2", "type": "step-start"},
            {"id": "p3", "type": "reasoning", "text": "Look at the models first"},
            {"id": "p4", "type": "tool", "tool": "read", "callID": "call_1",
             "state": {"status": "completed", "input": {"filePath": "cart.py"}, "output": "class Cart: ..."}},
            step(100, 40, 10, 1000, 200, 0.03),
            {"id": "p5", "type": "text", "text": "Done: the cart is in cart.py"},
            step(50, 20, 5, 300, 0, 0.02),
        ],
    }
    return [user, assistant], parts


def write_folders(root, sid, title, parent=None):
    storage = root / "storage"
    (storage / "session" / "p1").mkdir(parents=True, exist_ok=True)
    (storage / "session" / "p1" / f"{sid}.json").write_text(json.dumps(session_data(sid, title, parent)))
    messages, parts = messages_for(sid)
    for m in messages:
        (storage / "message" / sid).mkdir(parents=True, exist_ok=True)
        (storage / "message" / sid / f"{m['id']}.json").write_text(json.dumps(m))
        for i, p in enumerate(parts[m["id"]]):
            (storage / "part" / m["id"]).mkdir(parents=True, exist_ok=True)
            (storage / "part" / m["id"] / f"prt_{i:03d}.json").write_text(json.dumps({**p, "id": f"{m['id']}-{i:03d}"}))


def write_database(root, sid, title, parent=None):
    conn = sqlite3.connect(root / "opencode.db")
    conn.executescript("""
        CREATE TABLE IF NOT EXISTS session (id TEXT PRIMARY KEY, project_id TEXT, parent_id TEXT, directory TEXT,
            title TEXT, version TEXT, time_created INTEGER, time_updated INTEGER);
        CREATE TABLE IF NOT EXISTS message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER,
            time_updated INTEGER, data TEXT);
        CREATE TABLE IF NOT EXISTS part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, time_created INTEGER,
            time_updated INTEGER, data TEXT);
    """)
    info = session_data(sid, title, parent)
    conn.execute("INSERT INTO session VALUES (?, 'p1', ?, ?, ?, '1.2.0', ?, ?)",
                 (sid, parent, info["directory"], title, info["time"]["created"], info["time"]["updated"]))
    messages, parts = messages_for(sid)
    for m in messages:
        data = {k: v for k, v in m.items() if k not in ("id", "sessionID")}
        conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (m["id"], sid, m["time"]["created"], m["time"]["created"], json.dumps(data)))
        for i, p in enumerate(parts[m["id"]]):
            conn.execute("INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
                         (f"{m['id']}-{i:03d}", m["id"], sid, m["time"]["created"] + i, m["time"]["created"] + i, json.dumps(p)))
    conn.commit()
    conn.close()


@pytest.fixture
def opencode_root(tmp_path):
    root = tmp_path / "opencode"
    root.mkdir()
    write_folders(root, "ses_old", "Shop cart (old layout)")
    write_folders(root, "ses_both", "Shared session")
    write_database(root, "ses_both", "Shared session")
    write_database(root, "ses_child", "Subagent: find models", parent="ses_both")
    return root


def run_import(db_path, root, *args):
    result = subprocess.run(CLI + ["import", "opencode", str(root), "--db", db_path, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_both_layouts_tokens_cost_and_parts(api, db_path, opencode_root):
    result = run_import(db_path, opencode_root)
    assert "3 new" in result.stdout
    sessions = {s["externalId"]: s for s in api.get("/api/sessions").get_json()["sessions"]}
    assert set(sessions) == {"ses_old", "ses_both", "ses_child"}
    s = sessions["ses_both"]
    # Two steps: 150 input, 60 output + 15 reasoning, 1300 cache read, 200 cache write.
    assert (s["inputTokens"], s["outputTokens"], s["cacheReadTokens"], s["cacheWriteTokens"]) == (150, 75, 1300, 200)
    assert s["promptTokens"] == 150 + 1300 + 200 and s["completionTokens"] == 75
    assert s["cost"] == pytest.approx(0.05) and s["costEstimated"] is False
    assert s["source"] == "opencode" and s["model"] == "claude-sonnet-4-20250514" and s["provider"] == "anthropic"
    assert s["projectName"] == "shop" and s["createdAt"] == T0 and s["durationMs"] == 600_000
    assert sessions["ses_child"]["parentExternalId"] == "ses_both"
    detail = api.session("ses_both")
    assert [m["externalId"] for m in detail["messages"]] == ["ses_both-m1", "ses_both-m2"]  # once, from both layouts
    answer = detail["messages"][1]
    assert answer["textContent"] == "Done: the cart is in cart.py"
    assert [p["type"] for p in answer["parts"]] == ["thinking", "tool-call", "tool-result", "text"]
    assert answer["parts"][1]["content"] == {"id": "call_1", "name": "read", "input": {"filePath": "cart.py"}}
    assert answer["outputTokens"] == 75


def test_rerun_is_a_no_op_and_the_plugins_sessions_are_claimed(api, db_path, opencode_root):
    # The opencode plugin synced ses_old live, without a source.
    api.post("/sync/session", {"externalId": "ses_old", "title": "Shop cart (old layout)", "cost": 0.05})
    api.post("/sync/message", {"sessionExternalId": "ses_old", "externalId": "ses_old-m1", "role": "user",
                               "textContent": "Add a cart to ses_old"})
    run_import(db_path, opencode_root)
    old = api.session("ses_old")
    assert old["session"]["source"] == "opencode"
    assert [m["externalId"] for m in old["messages"]] == ["ses_old-m1", "ses_old-m2"]
    before = snapshot(db_path)
    again = run_import(db_path, opencode_root)
    assert "0 new and 0 updated" in again.stdout and snapshot(db_path) == before


def test_dry_run_and_a_broken_file(api, db_path, opencode_root):
    (opencode_root / "storage" / "session" / "p1" / "broken.json").write_text("{nope")
    before = snapshot(db_path)
    result = run_import(db_path, opencode_root, "--dry-run")
    assert result.stdout.startswith("Would import") and "broken.json" in result.stderr
    assert snapshot(db_path) == before


def test_watch_picks_up_a_new_session(api, db_path, opencode_root):
    watch_import("opencode", opencode_root, db_path, lambda: write_database(opencode_root, "ses_new", "Arrived while watching"),
                 "SELECT COUNT(*) FROM sessions WHERE external_id = 'ses_new'")


def test_the_files_its_tools_read_are_indexed(api, db_path, opencode_root):
    run_import(db_path, opencode_root)
    found = api.get("/api/files?path=cart.py").get_json()
    sessions = {s["externalId"] for s in api.get("/api/sessions").get_json()["sessions"]}
    # Every imported session's assistant read cart.py in its project folder.
    assert {s["externalId"] for s in found["sessions"]} == sessions
    assert found["files"][0]["path"] == "/home/dev/shop/cart.py" and found["files"][0]["changedSessions"] == 0


def test_the_plugins_resend_of_a_prompt_keeps_the_files_text_and_model(api, db_path, opencode_root):
    """opencode-sync resends every message under OpenCode's own ids (wire/opencode-sync-plugin-0.3.6.jsonl,
    `sync --force`): after an import its copy of a prompt, like that of an answer, changes nothing."""
    run_import(db_path, opencode_root)
    before = api.session("ses_both")["messages"]
    assert before[0]["textContent"] == "Add a cart to ses_both" and before[0]["model"] is None
    api.post("/sync/message", {"sessionExternalId": "ses_both", "externalId": "ses_both-m1", "role": "user",
                               "textContent": "Add a c\ufffdrt t", "model": "gpt-4o"})
    api.post("/sync/message", {"sessionExternalId": "ses_both", "externalId": "ses_both-m2", "role": "assistant",
                               "textContent": "Done", "model": "gpt-4o", "promptTokens": 8, "completionTokens": 512,
                               "durationMs": 28000})
    after = api.session("ses_both")["messages"]
    assert [(m["externalId"], m["role"], m["textContent"], m["model"], m["promptTokens"], m["outputTokens"], m["parts"])
            for m in after] == [(m["externalId"], m["role"], m["textContent"], m["model"], m["promptTokens"],
                                 m["outputTokens"], m["parts"]) for m in before]
    assert rows(db_path, "SELECT message_count FROM sessions WHERE external_id = 'ses_both'") == [(2,)]
