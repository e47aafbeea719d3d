"""A tool call as the reader shows it: one line ("Bash · npm test", "Edit · src/a.ts"), its
arguments as text, the change it makes as a diff, its output as text with its error marked.
Every client's shape is read through ``files`` (the one reader of tool-call content)."""

import difflib
import json
import shlex
from functools import lru_cache

from markupsafe import Markup, escape

from .. import files

SHELL = {"bash", "shell", "run_shell_command", "exec_command", "local_shell", "execute_command", "run_terminal_cmd",
         "terminal", "command"}
SEARCHES = {"grep", "glob", "search", "codebase_search", "find", "list", "ls", "list_dir", "file_search", "grep_search"}
SUBAGENT_TOOLS = {"task", "agent"}
SUMMARY_CHARS = 120
RESULT_CHARS = 50_000  # a tool output shown on the page; the downloads hold all of it
DIFF_LINES = 800


def short(text):
    text = " ".join(str(text).split())
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


def _shown_path(path, project):
    where = files.located(path, project)
    return (where[1] or where[0]) if where else path


def summary(name, args, project=None):
    """What a call did, in a few words: "npm test" for Bash, the file for Edit or Read."""
    lower = name.lower()
    paths, _ = files.targets(lower, args)
    if paths:
        shown = [_shown_path(p, project) for p in paths]
        return short(", ".join(shown))
    if not isinstance(args, dict):
        return short(args) if isinstance(args, str) else ""
    if lower in SHELL or "command" in args or "cmd" in args:
        command = args.get("command", args.get("cmd"))
        if isinstance(command, list):
            command = " ".join(shlex.quote(str(c)) for c in command)
        if isinstance(command, str):
            return short(command)
    if lower in SUBAGENT_TOOLS:
        return short(args.get("description") or args.get("subagent_type") or args.get("prompt") or "")
    if lower in SEARCHES:
        pattern, where = args.get("pattern") or args.get("query"), args.get("path")
        if isinstance(pattern, str):
            return short(pattern + (f" in {_shown_path(where, project)}" if isinstance(where, str) else ""))
    if lower == "todowrite" and isinstance(args.get("todos"), list):
        return f"{len(args['todos'])} item{'' if len(args['todos']) == 1 else 's'}"
    for key in ("url", "query", "description", "prompt", "path", "pattern", "name"):
        if isinstance(args.get(key), str):
            return short(args[key])
    return short(next((v for v in args.values() if isinstance(v, str)), ""))


def _lines(text):
    return text.splitlines() if isinstance(text, str) else []


@lru_cache(maxsize=2048)
def _edit_hunks(old, new):
    out = []
    for line in difflib.unified_diff(_lines(old), _lines(new), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append((kind, line))
    return tuple(out)


def _hunks(old, new):
    """Unified-diff lines (kind, text) from an edit's old and new text."""
    return list(_edit_hunks(old if isinstance(old, str) else "", new if isinstance(new, str) else ""))


def _patch_lines(text):
    out = []
    for line in _lines(text):
        if line.startswith(("*** ", "diff ", "+++ ", "--- ", "index ")):
            kind = "file"
        else:
            kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append((kind, line))
    return out


def diff(name, args):
    """The change an Edit, MultiEdit, Write or apply_patch call makes, as (kind, line) pairs
    (kind: file, hunk, add, del, ctx) laid out as HTML, with the lines added and removed; or
    None for other calls."""
    lower = name.lower()
    if lower in files.PATCHES:
        text = args if isinstance(args, str) else next(
            (args[k] for k in files.PATCH_TEXT_KEYS if isinstance(args, dict) and isinstance(args.get(k), str)), None)
        lines = _patch_lines(text) if text else None
    elif not isinstance(args, dict):
        return None
    elif isinstance(args.get("edits"), list):  # MultiEdit
        lines = []
        for edit in args["edits"]:
            if isinstance(edit, dict):
                lines += _hunks(edit.get("old_string", edit.get("oldString")), edit.get("new_string", edit.get("newString")))
    elif any(k in args for k in ("old_string", "oldString", "old_str")):
        lines = _hunks(args.get("old_string", args.get("oldString", args.get("old_str"))),
                       args.get("new_string", args.get("newString", args.get("new_str"))))
    elif lower in files.CHANGES and isinstance(args.get("content", args.get("file_text")), str):  # Write, create
        lines = [("add", "+" + line) for line in _lines(args.get("content", args.get("file_text")))]
    else:
        return None
    if not lines:
        return None
    added = sum(1 for kind, _ in lines if kind == "add")
    removed = sum(1 for kind, _ in lines if kind == "del")
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [("hunk", f"… {len(lines) - DIFF_LINES:,} more lines")]
    # Laid out here rather than line by line in the template: a long session holds thousands.
    html = Markup("".join(f'<span class="d-{kind}">{escape(line)}</span>\n' for kind, line in lines))
    return {"html": html, "added": added, "removed": removed}


def pretty(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


def _cut(text):
    return text if len(text) <= RESULT_CHARS else f"{text[:RESULT_CHARS]}\n… {len(text) - RESULT_CHARS:,} more characters"


def arguments(args):
    """A call's arguments to read: strings as themselves (real line breaks), the rest as JSON."""
    if isinstance(args, dict) and args and all(isinstance(v, (str, int, float, bool)) or v is None for v in args.values()):
        return [(key, _cut(value if isinstance(value, str) else pretty(value))) for key, value in args.items()]
    return [("", _cut(args if isinstance(args, str) else pretty(args)))]


def _result_text(value):
    """A tool's output as text: strings as they are, content blocks joined, other shapes as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for block in value:
            if isinstance(block, dict) and block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type") == "image":
                texts.append("[image]")
            else:
                texts.append(_result_text(block))
        return "\n".join(texts)
    if isinstance(value, dict):
        for key in ("content", "output", "result", "text", "stdout", "error"):
            if key in value and value[key] is not None:
                return _result_text(value[key])
        return pretty(value)
    return "" if value is None else pretty(value)


def _is_error(content, extra):
    marks = [content if isinstance(content, dict) else {}, extra or {}]
    return any(m.get("isError") or m.get("is_error") or m.get("status") == "error" or m.get("success") is False
               or (m.get("error") not in (None, "", False) and "content" not in m and "output" not in m)
               for m in marks)


def result(content, extra=None):
    """{"text", "error", "cut"} of a tool-result part (or of a call's inline ``result``)."""
    text = _result_text(content)
    cut = max(0, len(text) - RESULT_CHARS)
    return {"text": text[:RESULT_CHARS] if cut else text, "error": _is_error(content, extra), "cut": cut}


def call_id(content):
    if isinstance(content, dict):
        for key in ("id", "toolUseId", "tool_use_id", "callID", "callId", "toolCallId"):
            if isinstance(content.get(key), str) and content[key]:
                return content[key]
    return None
