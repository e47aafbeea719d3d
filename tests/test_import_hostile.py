"""`opensync-lite import claude-code` on transcripts that are wrong in the ways real files are:
a line whose timestamp is no date or whose cwd is no string, a FIFO or a device named *.jsonl,
a line too long to hold, a transcript replaced by a longer, different file, a path holding a
newline. Each is skipped and reported with its real line number; nothing else of the run is lost."""

import json
import os
import subprocess
from datetime import timedelta

import pytest

from claude_history import START, Writer, stamp, write
from conftest import CLI, rows
from opensync_lite.importers import claude_code

pytestmark = pytest.mark.both_databases


def run_import(db_path, root, timeout=60):
    result = subprocess.run(CLI + ["import", "claude-code", str(root), "--db", db_path],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def conversation(w, session, prompt, cwd="/home/dev/alpha", at=START):
    lines = w.user(session, at, prompt, cwd)
    lines += w.response(session, at + timedelta(seconds=5), cwd, "claude-sonnet-4-20250514",
                        [{"type": "text", "text": f"Done: {prompt}"}])
    return lines


def sessions(db_path):
    return {r[0]: r[1:] for r in rows(db_path, "SELECT external_id, title, project_path, created_at FROM sessions")}


@pytest.fixture
def w():
    import random
    return Writer(random.Random(7))


def skipped(result):
    return [line for line in result.stderr.splitlines() if line.startswith("skipped ")]


def test_bad_timestamp_and_cwd_lines_are_skipped_and_the_run_keeps_every_session(tmp_path, db_path, w):
    root = tmp_path / "projects"
    good = root / "-home-dev-alpha" / "good.jsonl"
    bad = root / "-home-dev-alpha" / "bad.jsonl"
    write(good, conversation(w, "good", "Fix the parser"))
    lines = conversation(w, "bad", "Add a test")
    lines.append({**lines[0], "uuid": "u-bad-time", "timestamp": "yesterday-ish"})  # line 3
    lines.append({**lines[0], "uuid": "u-bad-cwd", "cwd": {"path": "/x"}})  # line 4
    write(bad, lines)

    result = run_import(db_path, root)
    problems = skipped(result)
    assert len(problems) == 2, result.stderr
    assert problems[0].startswith(f"skipped {bad}:3: ") and "timestamp" in problems[0]
    assert problems[1].startswith(f"skipped {bad}:4: ") and "cwd" in problems[1]
    stored = sessions(db_path)
    at = int(START.timestamp() * 1000)
    assert stored["good"] == ("Fix the parser", "/home/dev/alpha", at)
    assert stored["bad"] == ("Add a test", "/home/dev/alpha", at)
    assert "u-bad-time" not in {r[0] for r in rows(db_path, "SELECT external_id FROM messages")}

    # Lines appended later are numbered from the file's start, not from where the last run stopped.
    write(bad, conversation(w, "bad", "More", at=START + timedelta(hours=1))
          + [{**lines[0], "uuid": "u-bad-again", "timestamp": "2026-13-45T99:00:00Z"}])
    again = skipped(run_import(db_path, root))
    assert len(again) == 1 and again[0].startswith(f"skipped {bad}:7: ")


def test_a_fifo_and_a_device_named_jsonl_do_not_hang_the_run(tmp_path, db_path, w):
    root = tmp_path / "projects"
    write(root / "-home-dev-alpha" / "s1.jsonl", conversation(w, "s1", "Fix the parser"))
    os.mkfifo(root / "-home-dev-alpha" / "pipe.jsonl")  # nobody ever writes to it
    os.symlink("/dev/zero", root / "-home-dev-alpha" / "zero.jsonl")
    result = run_import(db_path, root, timeout=30)
    assert set(sessions(db_path)) == {"s1"}
    assert "Imported" in result.stdout


def test_a_line_too_long_to_hold_is_skipped_and_the_lines_after_it_are_read(tmp_path, db_path, w):
    path = tmp_path / "projects" / "-home-dev-alpha" / "long.jsonl"
    first, *rest = conversation(w, "long", "Read the huge log")
    write(path, [first])
    with open(path, "a", encoding="utf-8") as f:  # one tool output past the bound, as one line
        f.write(json.dumps({"type": "user", "sessionId": "long", "uuid": "u-huge", "timestamp": stamp(START),
                            "message": {"role": "user", "content": "x" * (claude_code.MAX_LINE + 10)}}) + "\n")
    write(path, rest)
    result = run_import(db_path, path.parent.parent)
    (problem,) = skipped(result)
    assert problem.startswith(f"skipped {path}:2: a line of ") and f"more than {claude_code.MAX_LINE}" in problem
    messages = {r[0]: r[1] for r in rows(db_path, "SELECT external_id, role FROM messages")}
    assert "u-huge" not in messages and list(messages.values()).count("assistant") == 1
    assert sessions(db_path)["long"][0] == "Read the huge log"


def test_a_transcript_replaced_by_a_longer_different_file_is_read_from_its_start(tmp_path, db_path, w):
    path = tmp_path / "projects" / "-home-dev-alpha" / "s.jsonl"
    write(path, conversation(w, "old", "The old work"))
    run_import(db_path, path.parent.parent)
    replacement = conversation(w, "new", "The new work") + conversation(w, "new", "And then more",
                                                                        at=START + timedelta(minutes=5))
    path.write_text("".join(json.dumps(line) + "\n" for line in replacement), encoding="utf-8")
    assert path.stat().st_size > len(json.dumps(replacement[0]))  # longer than what was read before
    run_import(db_path, path.parent.parent)
    new = {r[0] for r in rows(db_path, "SELECT m.external_id FROM messages m JOIN sessions s ON s.id = m.session_id "
                                       "WHERE s.external_id = 'new'")}
    assert new == {line["uuid"] for line in replacement}  # its first lines too
    assert sessions(db_path)["new"][0] == "The new work"


def test_a_path_with_a_newline_cannot_forge_a_report_line(tmp_path, db_path, w):
    folder = tmp_path / "projects" / "evil\nskipped /etc/passwd:1: forged"
    path = folder / "s.jsonl"
    write(path, conversation(w, "s", "Fine") + [{"type": "user", "sessionId": "s", "timestamp": "never"}])
    result = run_import(db_path, tmp_path / "projects")
    lines = skipped(result)
    assert len(lines) == 1 and "\\x0askipped /etc/passwd:1: forged/s.jsonl:3: " in lines[0]
    assert not any(line.startswith("skipped /etc/passwd") for line in result.stderr.splitlines())


LONG_PROMPT = "Please review this log:\n" + "x" * 5000  # a first line over 4 KiB, as a pasted log makes


def test_a_transcript_replaced_by_another_file_with_the_same_long_first_line_is_read_from_its_start(tmp_path, db_path, w):
    path = tmp_path / "projects" / "-home-dev-alpha" / "s.jsonl"
    first = w.user("S", START, LONG_PROMPT, "/home/dev/alpha")
    write(path, first + w.response("S", START + timedelta(seconds=5), "/home/dev/alpha", "claude-sonnet-4-20250514",
                                   [{"type": "text", "text": "old answer"}]))
    run_import(db_path, path.parent.parent)
    # Replaced (written aside, then renamed over it) by a longer, different file, same first line.
    new = w.user("S", START + timedelta(seconds=1), "A different second prompt " + "y" * 300, "/home/dev/alpha") \
        + w.response("S", START + timedelta(seconds=9), "/home/dev/alpha", "claude-sonnet-4-20250514",
                     [{"type": "text", "text": "new answer"}])
    aside = path.with_suffix(".tmp")
    aside.write_text("".join(json.dumps(line) + "\n" for line in first + new), encoding="utf-8")
    os.replace(aside, path)
    result = run_import(db_path, path.parent.parent)
    assert skipped(result) == []
    stored = {r[0] for r in rows(db_path, "SELECT external_id FROM messages")}
    assert {line["uuid"] for line in first + new} <= stored


def test_a_transcript_rewritten_in_place_after_its_first_4_kib_is_read_from_its_start(tmp_path, db_path, w):
    path = tmp_path / "projects" / "-home-dev-alpha" / "s.jsonl"
    first = w.user("S", START, LONG_PROMPT, "/home/dev/alpha")
    write(path, first + w.response("S", START + timedelta(seconds=5), "/home/dev/alpha", "claude-sonnet-4-20250514",
                                   [{"type": "text", "text": "old answer " + "o" * 200}]))
    run_import(db_path, path.parent.parent)
    inode = path.stat().st_ino
    new = w.user("S", START + timedelta(seconds=1), "Another prompt " + "z" * 400, "/home/dev/alpha") \
        + w.response("S", START + timedelta(seconds=9), "/home/dev/alpha", "claude-sonnet-4-20250514",
                     [{"type": "text", "text": "new answer"}])
    with open(path, "r+b") as f:  # the same file (its inode), other bytes after the first line
        f.write("".join(json.dumps(line) + "\n" for line in first + new).encode())
        f.truncate()
    assert path.stat().st_ino == inode
    result = run_import(db_path, path.parent.parent)
    assert skipped(result) == []
    stored = {r[0] for r in rows(db_path, "SELECT external_id FROM messages")}
    assert {line["uuid"] for line in first + new} <= stored


@pytest.mark.parametrize("field, value", [("cwd", "/x" * 2500), ("cwd", "/home/dev/al\x00pha"),
                                          ("gitBranch", "b" * 300), ("cwd", "/home/" + "n" * 2000)])
def test_a_value_past_its_bound_on_one_line_is_dropped_and_the_session_keeps_its_title_and_project(
        tmp_path, db_path, w, field, value):
    path = tmp_path / "projects" / "-home-dev-alpha" / "a.jsonl"
    lines = conversation(w, "A", "Prompt A")
    lines.insert(0, {**lines[0], "uuid": "u-bad", field: value})  # line 1, before any good cwd
    write(path, lines)
    result = run_import(db_path, path.parent.parent)
    (problem,) = skipped(result)
    assert problem.startswith(f"skipped {path}:1: ") and field in problem
    assert sessions(db_path)["A"] == ("Prompt A", "/home/dev/alpha", int(START.timestamp() * 1000))
    assert "u-bad" in {r[0] for r in rows(db_path, "SELECT external_id FROM messages")}  # the rest of the line is kept
    branches = rows(db_path, "SELECT extra FROM sessions WHERE external_id = 'A'")
    assert value not in str(branches)


def test_the_offsets_are_saved_only_after_the_sessions_are_written(tmp_path, db_path, w, monkeypatch):
    from opensync_lite import auth, create_app, ingest
    from opensync_lite.importers import claude_code as importer
    path = tmp_path / "projects" / "-home-dev-alpha" / "a.jsonl"
    write(path, conversation(w, "A", "Prompt A"))
    app = create_app({"OPENSYNC_DB": db_path, "TESTING": True})
    real = ingest.ingest_import

    def failing(user_id, sessions, messages, responses):
        if sessions:
            raise RuntimeError("the disk is full")
        return real(user_id, sessions, messages, responses)

    try:
        with app.app_context(), app.extensions["opensync"].connection_context():
            user_id = auth.get_or_create_user("local").id
            monkeypatch.setattr(ingest, "ingest_import", failing)
            with pytest.raises(RuntimeError):
                importer.run(user_id, importer.transcripts([path.parent.parent]))
            assert rows(db_path, "SELECT COUNT(*) FROM import_files") == [(0,)]
            monkeypatch.setattr(ingest, "ingest_import", real)
            report = importer.run(user_id, importer.transcripts([path.parent.parent]))
    finally:
        app.extensions["opensync"].close()
    assert report.files == 1 and report.files_unchanged == 0 and report.lines == 2  # read again
    assert sessions(db_path)["A"][:2] == ("Prompt A", "/home/dev/alpha")
    assert rows(db_path, "SELECT COUNT(*) FROM import_files") == [(1,)]


@pytest.mark.parametrize("breaker", ["\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c", "\u2028"])
def test_a_path_with_any_line_break_cannot_forge_a_report_line(tmp_path, db_path, w, breaker):
    folder = tmp_path / "projects" / f"evil{breaker}skipped /etc/passwd:1: forged"
    write(folder / "s.jsonl", conversation(w, "s", "Fine") + [{"type": "user", "sessionId": "s", "timestamp": "never"}])
    result = run_import(db_path, tmp_path / "projects")
    lines = skipped(result)  # str.splitlines(): it breaks on each of them
    assert len(lines) == 1 and f"\\x{ord(breaker):02x}skipped /etc/passwd:1: forged/s.jsonl:3: " in lines[0]
    assert not any(line.startswith("skipped /etc/passwd") for line in result.stderr.splitlines())



def test_recorded_costs_past_the_bound_stop_at_it(tmp_path, db_path, w):
    from opensync_lite.schemas import MAX_COST
    path = tmp_path / "projects" / "-home-dev-alpha" / "s.jsonl"
    lines = w.user("S", START, "Price me", "/home/dev/alpha")
    for i in range(2):  # each within the bound, their sum not
        lines += w.response("S", START + timedelta(seconds=5 + i * 10), "/home/dev/alpha", "claude-sonnet-4-20250514",
                            [{"type": "text", "text": f"r{i}"}], cost=6e8)
    write(path, lines)
    run_import(db_path, path.parent.parent)
    assert rows(db_path, "SELECT cost FROM sessions WHERE external_id = 'S'") == [(MAX_COST,)]
