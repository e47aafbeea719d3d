"""Which files a message's tool calls read or changed: the rows of the file index
(``file_touches``), made by ``ingest`` as it stores the parts, and the path a user asks for.

Tool calls arrive in several shapes: the claude-code plugin's ``{toolName, args}``, the
importers' ``{name, input}`` (Claude Code and OpenCode), droid's ``tool_use`` parts. Paths come
from the arguments of the tools that take one file (Read, Edit, Write, ...), and from the
file headers of a patch (Codex's and OpenCode's apply_patch, unified diffs). Searches (Grep,
Glob, ls) name folders and patterns, not files they touched, so they are left out.
"""

import json
import posixpath
import re

TOOL_PART_TYPES = ("tool-call", "tool_use", "tool")
READS = {"read", "view", "notebookread", "read_file", "readfile", "open_file"}
CHANGES = {"edit", "multiedit", "write", "notebookedit", "create", "write_file", "edit_file",
           "create_file", "delete_file", "str_replace", "replace_file", "search_replace"}
PATCHES = {"apply_patch", "patch", "applypatch"}
# Where the tools put the one file they work on (Claude Code, OpenCode, Cursor, editors' tools).
PATH_KEYS = ("file_path", "filePath", "notebook_path", "target_file", "targetFile", "filename")
# `path` names a file only for tools known to take one (for Grep or ls it is a folder).
FILE_TOOLS_WITH_PATH = READS | CHANGES | {"str_replace_based_edit_tool", "str_replace_editor"}
PATCH_TEXT_KEYS = ("input", "patch", "patchText", "patch_text", "diff")
PATCH_HEADER = re.compile(
    r"^(?:\*\*\* (?:Add|Update|Delete) File: |\*\*\* Move to: |\+\+\+ (?:b/)?|--- (?:a/)?)(.+?)\s*$", re.M)
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
NEEDS_NORMALISING = re.compile(r"//|/\.{1,2}(?:/|$)|^\.{1,2}(?:/|$)|./$")
MAX_PATH = 4096


def tool_call(content):
    """(tool name as the client wrote it, its arguments) of a tool-call part's content, or
    None: the one reader of every client's shape (``{toolName, args}``, ``{name, input}``,
    ``{tool, ...}``; arguments sent as JSON text are parsed)."""
    if not isinstance(content, dict):
        return None
    name = content.get("toolName") or content.get("name") or content.get("tool")
    args = content.get("args", content.get("input"))
    if isinstance(args, str) and args[:1] in "{[":
        try:
            args = json.loads(args)
        except ValueError:
            pass
    return (name if isinstance(name, str) else ""), args


def _call(content):
    call = tool_call(content)
    return call and (call[0].lower(), call[1])


def _patch_paths(args):
    text = args if isinstance(args, str) else next(
        (args[k] for k in PATCH_TEXT_KEYS if isinstance(args, dict) and isinstance(args.get(k), str)), "")
    return [p for p in PATCH_HEADER.findall(text) if p != "/dev/null"]


def targets(name, args):
    """(the paths one call of tool ``name`` (lowercased) names, whether it changes them)."""
    if name in PATCHES:
        return _patch_paths(args), True
    if isinstance(args, dict):
        keys = PATH_KEYS + (("path",) if name in FILE_TOOLS_WITH_PATH else ())
        paths = [args[k] for k in keys if isinstance(args.get(k), str)][:1]
        return paths, name in CHANGES or (name.startswith("str_replace") and args.get("command") != "view")
    return [], False


def touched(parts):
    """{path as the tool named it: True if changed, False if only read} for a message's parts."""
    found = {}
    for part in parts or ():
        if not isinstance(part, dict) or part.get("type") not in TOOL_PART_TYPES:
            continue
        call = _call(part.get("content"))
        if call is None:
            continue
        paths, changed = targets(*call)
        for path in paths:
            path = path.strip()
            if path and len(path) <= MAX_PATH:
                found[path] = found.get(path, False) or changed
    return found


def normal(path):
    """A path in one spelling: forward slashes (Windows paths too), no `./` or doubled slashes."""
    path = path.strip()
    if WINDOWS_DRIVE.match(path) or ("\\" in path and "/" not in path):
        path = path.replace("\\", "/")
    if not path:
        return ""
    if NEEDS_NORMALISING.search(path):  # most paths are clean already: normpath only when needed
        path = posixpath.normpath(path)
    return "" if path == "." else path


def is_absolute(path):
    return path.startswith("/") or bool(WINDOWS_DRIVE.match(path))


def located(path, project_path):
    """(path, path relative to the project or None) for a path a tool named in a session
    whose project folder is ``project_path``: a relative path is taken as the project's."""
    path, project = normal(path), normal(project_path or "")
    if not path:
        return None
    if not is_absolute(path):
        return (posixpath.join(project, path) if project else path), path
    if project and path.startswith(project.rstrip("/") + "/"):
        return path, path[len(project.rstrip("/")) + 1:]
    return path, None


def rows(message_id, session_id, user_id, parts, project_path):
    """The file_touches rows for one message."""
    out = {}
    for raw, changed in touched(parts).items():
        where = located(raw, project_path)
        if where:
            path, relative = where
            previous = out.get(path)
            out[path] = {"message": message_id, "session": session_id, "user": user_id, "path": path,
                         "rel_path": relative, "changed": changed or bool(previous and previous["changed"])}
    return list(out.values())
