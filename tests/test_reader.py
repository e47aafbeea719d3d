"""The session reader's logic (dashboard/reader.py, tool_calls.py, markdown.py): every client's tool-call
shape summarised in one line, diffs, results paired with their calls, turns, compactions,
Markdown (the plain-text shortcut agrees with the parser), the resume command."""

import random

import pytest

from opensync_lite.dashboard import markdown, reader, tool_calls


def message(mid, role, text="", parts=(), **extra):
    return {"id": mid, "role": role, "text_content": text, "parts": list(parts), "extra": extra or None,
            "created_at": 1_760_000_000_000 + mid, "model": None}


def call(name, args, **more):
    return {"type": "tool-call", "content": {"name": name, "input": args, **more}}


@pytest.mark.parametrize("content, expected", [
    ({"name": "Bash", "input": {"command": "npm test\n# and more", "description": "tests"}}, ("Bash", "npm test # and more")),
    ({"toolName": "Edit", "args": {"file_path": "/home/dev/shop/src/lib/stripe.ts"}}, ("Edit", "src/lib/stripe.ts")),
    ({"toolName": "Read", "args": '{"file_path": "/elsewhere/a.py"}'}, ("Read", "/elsewhere/a.py")),  # args as JSON text
    ({"name": "read", "input": {"filePath": "/home/dev/shop/README.md"}}, ("read", "README.md")),  # OpenCode
    ({"name": "apply_patch", "input": {"input": "*** Begin Patch\n*** Update File: src/a.py\n@@\n-x\n+y\n"
                                                "*** Add File: src/b.py\n+z\n*** End Patch"}}, ("apply_patch", "src/a.py, src/b.py")),
    ({"name": "exec_command", "input": {"cmd": ["bash", "-lc", "ls -la"]}}, ("exec_command", "bash -lc 'ls -la'")),  # Codex
    ({"name": "Grep", "input": {"pattern": "TODO", "path": "/home/dev/shop/src"}}, ("Grep", "TODO in src")),
    ({"name": "Task", "input": {"description": "Review", "prompt": "Look for bugs"}}, ("Task", "Review")),
    ({"name": "TodoWrite", "input": {"todos": [{}, {}, {}]}}, ("TodoWrite", "3 items")),
    ({"name": "WebFetch", "input": {"url": "https://example.com/docs", "prompt": "summarise"}}, ("WebFetch", "https://example.com/docs")),
    ({"toolName": "Bash", "args": {"command": "x" * 300}}, ("Bash", "x" * 119 + "…")),
])
def test_each_shape_reads_as_name_and_what_it_worked_on(content, expected):
    items = reader.conversation([message(1, "assistant", parts=[{"type": "tool-call", "content": content}])], "/home/dev/shop")
    tool = items[0]["events"][0]
    assert (tool["name"], tool["summary"]) == expected


def test_edits_are_diffs():
    multi = tool_calls.diff("MultiEdit", {"file_path": "a.py", "edits": [{"old_string": "a", "new_string": "b"},
                                                                     {"old_string": "c\nd", "new_string": "c\ne"}]})
    assert (multi["added"], multi["removed"]) == (2, 2)
    assert '<span class="d-del">-a</span>' in multi["html"] and '<span class="d-add">+e</span>' in multi["html"]
    opencode = tool_calls.diff("edit", {"filePath": "a.py", "oldString": "<b>", "newString": "<i>"})
    assert '<span class="d-add">+&lt;i&gt;</span>' in opencode["html"]  # escaped
    write = tool_calls.diff("Write", {"file_path": "n.py", "content": "one\ntwo"})
    assert (write["added"], write["removed"]) == (2, 0)
    patch = tool_calls.diff("apply_patch", {"input": "*** Begin Patch\n*** Update File: a.py\n@@ def f\n-x\n+y\n*** End Patch"})
    assert '<span class="d-file">*** Update File: a.py</span>' in patch["html"] and (patch["added"], patch["removed"]) == (1, 1)
    assert tool_calls.diff("Bash", {"command": "ls"}) is None
    huge = tool_calls.diff("Write", {"file_path": "n.py", "content": "x\n" * 5000})
    assert huge["added"] == 5000 and huge["html"].count("<span") == tool_calls.DIFF_LINES + 1  # and a "… more lines" line


def test_results_join_their_calls_by_id_or_in_order_and_errors_are_marked():
    items = reader.conversation([
        message(1, "user", "Run it"),
        message(2, "assistant", parts=[call("Bash", {"command": "a"}, id="t1"), call("Bash", {"command": "b"}, id="t2")]),
        message(3, "user", parts=[{"type": "tool-result", "content": {"toolUseId": "t2", "content": "B\nout", "isError": True}},
                                  {"type": "tool-result", "content": {"toolUseId": "t1", "content": [
                                      {"type": "text", "text": "A out"}, {"type": "image"}]}}]),
        # The plugin's shape: a call without id, then its result as a bare string.
        message(4, "assistant", parts=[{"type": "tool-call", "content": {"toolName": "Read", "args": {"file_path": "x"}}},
                                       {"type": "tool-result", "content": "line 1\nline 2"}]),
        # OpenCode's error status, droid's inline result.
        message(5, "assistant", parts=[call("bash", {"command": "c"}, id="t3"),
                                       {"type": "tool-result", "content": {"toolUseId": "t3", "content": "boom"}, "extra": {"status": "error"}},
                                       {"type": "tool_use", "content": {"toolName": "Glob", "args": {"pattern": "*.py"}, "result": "a.py"}}]),
        message(6, "user", parts=[{"type": "tool-result", "content": {"toolUseId": "nowhere", "content": "lost"}}]),
    ])
    assert len(items) == 1 and items[0]["prompt"]["id"] == 1
    events = items[0]["events"]
    tools = [e for e in events if e["kind"] == "tool"]
    assert [(t["summary"], t["result"]["text"], t["result"]["error"]) for t in tools] == [
        ("a", "A out\n[image]", False), ("b", "B\nout", True), ("x", "line 1\nline 2", False), ("c", "boom", True),
        ("*.py", "a.py", False)]
    orphan = events[-1]
    assert orphan["kind"] == "result" and orphan["result"]["text"] == "lost"
    assert items[0]["tools"] == 5 and items[0]["failed"] == 2
    # Every message keeps its #m<id> anchor once, a result's at its call.
    assert tools[0]["anchor"] == 2 and tools[1]["more_anchors"] == [3] and tools[2]["anchor"] == 4


def test_turns_answers_compactions_and_commands():
    items = reader.conversation([
        message(1, "user", "<command-name>/clear</command-name>"),
        message(2, "user", "First"),
        message(3, "assistant", "Looking."),
        message(4, "assistant", parts=[call("Read", {"file_path": "a"})]),
        message(5, "assistant", "All **done**."),
        message(6, "user", "Summary of the story so far", isCompactSummary=True),
        message(7, "user", "Second"),
        message(8, "assistant", parts=[call("Bash", {"command": "ls"})]),
    ])
    assert [i["kind"] for i in items] == ["turn", "turn", "compaction", "turn"]
    assert items[0]["prompt"] is None and items[0]["events"][0]["label"] == "Command · /clear"
    assert items[1]["number"] == 2 and items[1]["prompt"]["text_content"] == "First"
    assert str(items[1]["answer"]["html"]) == "<p>All <strong>done</strong>.</p>\n"
    assert [e["kind"] for e in items[1]["events"]] == ["text", "tool"]  # "Looking." is a step, not the answer
    assert items[2]["text"] == "Summary of the story so far"
    assert items[3]["answer"] is None  # it ended on a call
    assert reader.outline(items) == [(2, "First"), (3, "Second")]


def test_tool_and_system_messages_fold_and_long_arguments_are_cut():
    items = reader.conversation([
        message(1, "user", "ls please"),
        message(2, "assistant", parts=[{"type": "tool-call", "content": {"toolName": "run_terminal_cmd", "args": {"command": "ls"}}}]),
        message(3, "tool", "a.py\nb.py"),  # cursor sends a shell command's output as a role-tool message
        message(4, "system", "Context was trimmed"),
        message(5, "assistant", parts=[call("Write", {"file_path": "big.txt", "content": 7}), call("Lookup", {"blob": "y" * 60_000})]),
    ])
    events = items[0]["events"]
    assert events[0]["summary"] == "ls" and events[0]["result"]["text"] == "a.py\nb.py"
    assert events[1]["kind"] == "meta" and events[1]["label"] == "System message"
    (_, blob), = events[3]["args"]
    assert len(blob) < 60_000 and blob.endswith("… 10,000 more characters")


def test_task_calls_find_their_subagent_by_agent_id_then_by_prompt():
    children = [{"id": 10, "external_id": "s/agent-abc", "title": "Something else"},
                {"id": 11, "external_id": "s/agent-def", "title": "Find the flaky test"}]
    items = reader.conversation([message(1, "assistant", parts=[
        call("Task", {"prompt": "Review"}, id="t1"),
        {"type": "tool-result", "content": {"toolUseId": "t1", "content": [{"type": "text", "text": "ok\nagentId: abc (for resuming)"}]}},
        call("Task", {"prompt": "Find the   flaky\ntest"}, id="t2"),
        call("Task", {"prompt": "Unknown"}, id="t3")])], children=children)
    assert [e["subagent"] and e["subagent"]["id"] for e in items[0]["events"]] == [10, 11, None]


def test_markdown_is_sanitised():
    html = str(markdown.markdown('<script>x()</script> <b onclick="y">b</b> [a](javascript:alert(1)) [d](https://e.org) '
                               '![pic](https://tracker.example/p.png)'))
    assert "<script" not in html and "<b " not in html and "javascript:" not in html.split("[a]")[0]
    assert '<a href="https://e.org" rel="noopener noreferrer">d</a>' in html
    assert "<img" not in html and '<a href="https://tracker.example/p.png" rel="noopener noreferrer">pic</a>' in html


def test_plain_text_shortcut_renders_as_the_parser_does():
    """Text the shortcut takes (no Markdown marks) must come out exactly as markdown-it renders it."""
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\n", "\n\n", "\t", "\r", "\x0b", "\x0c", "\u00a0", "\u2028", "\u3000", "1", "9.", "2)", "-",
                "x", '"', "'", "é", "  ", "\r\n", "\x00", "=", "+", ".", ")", "\n \n", "http://a.b", "\ufeff", "*", "&", "<"]
    taken = 0
    for _ in range(60_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        if not markdown.MAYBE_MARKUP.search(text):
            taken += 1
            assert markdown._plain(text) == markdown.MARKDOWN.render(text), repr(text)
    assert taken > 5_000  # the shortcut is really exercised


def test_resume_command_and_branch():
    session = {"source": "claude-code", "external_id": "abc-123", "project_path": "/home/dev/my shop", "parent_external_id": None,
               "extra": {"gitBranch": "feature/x"}}
    assert reader.resume_command(session) == "cd '/home/dev/my shop' && claude --resume abc-123"
    assert reader.resume_command({**session, "project_path": None}) == "claude --resume abc-123"
    assert reader.resume_command({**session, "source": "opencode"}) is None
    assert reader.resume_command({**session, "external_id": "abc-123/agent-x", "parent_external_id": "abc-123"}) is None
    assert reader.git_branch(session) == "feature/x" and reader.git_branch({**session, "extra": None}) is None
