"""The session reader: a session's messages as turns (the prompt, what the agent did, its
answer), tool calls as one-line summaries with their results beside them, edits as diffs,
compactions as dividers. The dashboard page, the HTML export and share pages render what
``conversation`` returns (templates ``_conversation.html``)."""

import difflib
import json
import re
import shlex
from functools import lru_cache

from flask import render_template
from markupsafe import Markup, escape
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from .. import files

SHELL = {"bash", "shell", "run_shell_command", "exec_command", "local_shell", "execute_command", "run_terminal_cmd",
         "terminal", "command"}
SEARCHES = {"grep", "glob", "search", "codebase_search", "find", "list", "ls", "list_dir", "file_search", "grep_search"}
SUBAGENT_TOOLS = {"task", "agent"}
SUMMARY_CHARS = 120
MAX_CHILDREN = 1000  # subagent sessions a page looks among for its Task calls' links
RESULT_CHARS = 50_000  # a tool output shown on the page; the downloads hold all of it
DIFF_LINES = 800
# Claude Code ends a Task call's result with the subagent's id ("agentId: a1b2c3 (for resuming ...)").
AGENT_ID = re.compile(r"\bagentId: ?([\w-]{3,64})")
META_TAG = re.compile(r"^\s*<([a-z][\w-]*)>")
COMMAND_NAME = re.compile(r"<command-name>\s*([^<]{1,200}?)\s*</command-name>")


def _markdown_parser():
    """CommonMark with tables and strikethrough; raw HTML is shown as text, unsafe link
    schemes (javascript:, data:, ...) are refused by the parser, links open apart and
    images become links (a page loads nothing from elsewhere)."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    default_link = md.renderer.rules.get("link_open")

    def link_open(tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer")
        if default_link:
            return default_link(tokens, idx, options, env)
        return md.renderer.renderToken(tokens, idx, options, env)

    def image(tokens, idx, options, env):
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = md.renderer.renderInlineAsText(token.children or [], options, env) or src or "image"
        return f'<a href="{escapeHtml(src)}" rel="noopener noreferrer">{escapeHtml(alt)}</a>'

    md.renderer.rules["link_open"] = link_open
    md.renderer.rules["image"] = image
    return md


MARKDOWN = _markdown_parser()


# Text with none of Markdown's marks renders as escaped paragraphs: most prompts and many
# answers skip the parser. Anything that could be a mark (emphasis, code, links, entities,
# raw HTML, headings, lists, quotes, indented code, hard breaks) goes through it.
MAYBE_MARKUP = re.compile(r"[\\`*_\[\]<>#|~!&\x00-\x08\x0b-\x1f\x7f]|^[^\S\n]|[^\S\n]$|^(?:[-+=]|\d{1,9}[.)])", re.M)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
CACHED_CHARS = 20_000  # longer texts are rendered each time rather than held


def _plain(text):
    paragraphs = [p for p in PARAGRAPH_BREAK.split(text.strip("\n")) if p]
    return "".join(f"<p>{escapeHtml(p)}</p>\n" for p in paragraphs)


@lru_cache(maxsize=4096)
def _rendered(text):
    return _plain(text) if not MAYBE_MARKUP.search(text) else MARKDOWN.render(text)


def markdown(text):
    """Markdown as safe HTML (see ``_markdown_parser``); a page rendered again after a sync
    reuses what its unchanged messages gave."""
    return Markup(_rendered(text) if len(text) <= CACHED_CHARS else _rendered.__wrapped__(text))


# --- tool calls -------------------------------------------------------------------------------

def _short(text):
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
        return _short(", ".join(shown))
    if not isinstance(args, dict):
        return _short(args) if isinstance(args, str) else ""
    if lower in SHELL or "command" in args or "cmd" in args:
        command = args.get("command", args.get("cmd"))
        if isinstance(command, list):
            command = " ".join(shlex.quote(str(c)) for c in command)
        if isinstance(command, str):
            return _short(command)
    if lower in SUBAGENT_TOOLS:
        return _short(args.get("description") or args.get("subagent_type") or args.get("prompt") or "")
    if lower in SEARCHES:
        pattern, where = args.get("pattern") or args.get("query"), args.get("path")
        if isinstance(pattern, str):
            return _short(pattern + (f" in {_shown_path(where, project)}" if isinstance(where, str) else ""))
    if lower == "todowrite" and isinstance(args.get("todos"), list):
        return f"{len(args['todos'])} item{'' if len(args['todos']) == 1 else 's'}"
    for key in ("url", "query", "description", "prompt", "path", "pattern", "name"):
        if isinstance(args.get(key), str):
            return _short(args[key])
    return _short(next((v for v in args.values() if isinstance(v, str)), ""))


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


def _pretty(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


def _cut(text):
    return text if len(text) <= RESULT_CHARS else f"{text[:RESULT_CHARS]}\n… {len(text) - RESULT_CHARS:,} more characters"


def _arguments(args):
    """A call's arguments to read: strings as themselves (real line breaks), the rest as JSON."""
    if isinstance(args, dict) and args and all(isinstance(v, (str, int, float, bool)) or v is None for v in args.values()):
        return [(key, _cut(value if isinstance(value, str) else _pretty(value))) for key, value in args.items()]
    return [("", _cut(args if isinstance(args, str) else _pretty(args)))]


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
        return _pretty(value)
    return "" if value is None else _pretty(value)


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


def _call_id(content):
    if isinstance(content, dict):
        for key in ("id", "toolUseId", "tool_use_id", "callID", "callId", "toolCallId"):
            if isinstance(content.get(key), str) and content[key]:
                return content[key]
    return None


# --- turns ------------------------------------------------------------------------------------

def _is_compaction(m):
    extra = m.get("extra") or {}
    return bool(extra.get("isCompactSummary") or extra.get("compaction") or m.get("role") == "summary")


def _meta(text):
    """The label of a user message the client wrote itself (a command echo, a reminder), or None."""
    tag = META_TAG.match(text)
    if not tag:
        return None
    command = COMMAND_NAME.search(text)
    return f"Command · {command.group(1)}" if command else tag.group(1).replace("-", " ").capitalize()


class _Builder:
    def __init__(self, project, children):
        self.project = project
        self.children = children  # {agent id or title: child session}
        self.items, self.turn, self.turns = [], None, 0
        self.open_calls = {}  # call id -> tool event waiting for its result
        self.unanswered = []  # tool events without an id, waiting in order
        self.anchored = set()  # messages whose #m<id> anchor is placed (on their first item)

    def _anchor(self, m):
        if m["id"] in self.anchored:
            return None
        self.anchored.add(m["id"])
        return m["id"]

    def new_turn(self, prompt=None):
        self.turns += 1
        self.turn = {"kind": "turn", "number": self.turns, "prompt": prompt, "events": [], "answer": None,
                     "prompt_anchor": bool(prompt and self._anchor(prompt))}
        self.items.append(self.turn)
        self.unanswered = []

    def add(self, event):
        if self.turn is None:
            self.new_turn()
        event["anchor"] = self._anchor(event["message"])
        self.turn["events"].append(event)

    def message(self, m):
        text = m.get("text_content") or ""
        role = m.get("role")
        parts = m.get("parts") or []
        if _is_compaction(m):
            self.items.append({"kind": "compaction", "message": m, "text": text, "anchor": self._anchor(m)})
            self.turn = None
            return
        if role == "user" and text.strip() and not _meta(text):
            self.new_turn(m)
            self._parts(m, parts, skip_text=text)
            return
        if role == "user" and text.strip():
            self.add({"kind": "meta", "message": m, "label": _meta(text), "text": text})
            self._parts(m, parts, skip_text=text)
            return
        if role == "tool" and text.strip() and not parts:  # cursor's shell output, as its own message
            self._result(m, text, m.get("extra"))
            return
        if role == "system" and text.strip():
            self.add({"kind": "meta", "message": m, "label": "System message", "text": text})
            self._parts(m, parts, skip_text=text)
            return
        shown = False
        if text.strip() and not any(p.get("type") == "text" and p.get("content") == text for p in parts):
            self.add({"kind": "text", "message": m, "html": markdown(text), "text": text})
            shown = True
        if not self._parts(m, parts) and not shown and role not in ("user", "assistant"):
            self.add({"kind": "meta", "message": m, "label": role or "message", "text": text})

    def _parts(self, m, parts, skip_text=None):
        """Add a message's parts as events; returns whether any was added."""
        added = False
        for part in parts:
            kind = str(part.get("type") or "").lower()
            content, extra = part.get("content"), part.get("extra") or {}
            if kind == "text":
                if isinstance(content, str) and content.strip() and content != skip_text:
                    self.add({"kind": "text", "message": m, "html": markdown(content), "text": content})
                    added = True
            elif kind in ("thinking", "reasoning"):
                self.add({"kind": "thinking", "message": m,
                          "text": content if isinstance(content, str) else _pretty(content)})
                added = True
            elif kind in files.TOOL_PART_TYPES or kind in ("function_call", "tool_call"):
                self._call(m, content, extra)
                added = True
            elif "result" in kind or "output" in kind:
                self._result(m, content, extra)
                added = True
            else:
                self.add({"kind": "other", "message": m, "type": part.get("type"), "text": _pretty(content)})
                added = True
        return added

    def _call(self, m, content, extra):
        call = files.tool_call(content) or ("", content)
        name, args = call[0] or str(extra.get("toolName") or "tool"), call[1]
        event = {"kind": "tool", "message": m, "name": name, "summary": summary(name, args, self.project),
                 "diff": diff(name, args), "args": _arguments(args), "result": None,
                 "subagent": None, "prompt": args.get("prompt") if isinstance(args, dict) else None}
        if isinstance(content, dict) and content.get("result") is not None:  # droid's {toolName, args, result}
            event["result"] = result(content["result"], extra)
        elif isinstance(content, dict) and isinstance(content.get("state"), dict):  # a raw OpenCode tool part
            state = content["state"]
            if state.get("status") in ("completed", "error"):
                event["result"] = result(state.get("output", state.get("error")), state)
        call_id = _call_id(content)
        if event["result"] is None:
            if call_id:
                self.open_calls[call_id] = event
            else:
                self.unanswered.append(event)
        self._link_subagent(event)
        self.add(event)

    def _result(self, m, content, extra):
        call_id = _call_id(content)
        event = self.open_calls.pop(call_id, None) if call_id else None
        if event is None and not call_id and self.unanswered:
            event = self.unanswered.pop(0)
        if event is None:
            self.add({"kind": "result", "message": m, "result": result(content, extra)})
            return
        event["result"] = result(content, extra)
        anchor = self._anchor(m)
        if anchor:  # the result's own message is found (by search links) at its call
            event.setdefault("more_anchors", []).append(anchor)
        self._link_subagent(event)

    def _link_subagent(self, event):
        if event["name"].lower() not in SUBAGENT_TOOLS or event["subagent"]:
            return
        found = event["result"] and AGENT_ID.search(event["result"]["text"])
        child = found and self.children.get(("agent", found.group(1)))
        if not child and isinstance(event["prompt"], str):
            child = self.children.get(("title", " ".join(event["prompt"].split())[:100]))
        event["subagent"] = child or None

    def finish(self):
        """Each turn's last text is its answer, shown apart from the steps before it."""
        for item in self.items:
            if item["kind"] != "turn":
                continue
            events = item["events"]
            last = next((i for i in range(len(events) - 1, -1, -1) if events[i]["kind"] == "text"), None)
            if last is not None and all(e["kind"] != "tool" for e in events[last + 1:]):
                item["answer"] = events.pop(last)
            tools = [e for e in events if e["kind"] == "tool"]
            item["tools"] = len(tools)
            item["failed"] = sum(1 for e in tools if e["result"] and e["result"]["error"])
        return self.items


def _child_keys(children):
    keys = {}
    for child in children:
        external = child.get("external_id") or ""
        if "/agent-" in external:
            keys[("agent", external.rsplit("/agent-", 1)[1])] = child
        if child.get("title"):
            keys.setdefault(("title", " ".join(child["title"].split())[:100]), child)
    return keys


def conversation(messages, project=None, children=()):
    """The session as a list of items: turns {number, prompt, events, answer} and
    compactions {message, text}. ``children``: the session's subagent sessions, for the links
    of the calls that started them."""
    builder = _Builder(project, _child_keys(children))
    for m in messages:
        builder.message(m)
    return builder.finish()


def context(messages, session, children=(), scripted=False):
    """The values ``_conversation.html`` renders; ``scripted``: the page runs reader.js (the
    dashboard does; the export's policy forbids any script, so it has no script-only buttons)."""
    items = conversation(messages, session.get("project_path"), children)
    return {"items": items, "outline": outline(items), "message_count": len(messages), "scripted": scripted}


def render_conversation(session, messages, children=()):
    """The conversation's HTML for the session page (the export includes the same template)."""
    return render_template("dashboard/_conversation.html", **context(messages, session, children, scripted=True))


def outline(items):
    """(turn number, the prompt's first words) of each turn that has a prompt."""
    return [(item["number"], _short(item["prompt"]["text_content"])[:80]) for item in items
            if item["kind"] == "turn" and item["prompt"]]


def resume_command(session):
    """``cd <project> && claude --resume <id>`` for a Claude Code session (not a subagent's,
    which cannot be resumed), or None."""
    if session.get("source") != "claude-code" or session.get("parent_external_id") or "/" in session["external_id"]:
        return None
    command = f"claude --resume {shlex.quote(session['external_id'])}"
    path = session.get("project_path")
    return f"cd {shlex.quote(path)} && {command}" if path else command


def git_branch(session):
    branch = (session.get("extra") or {}).get("gitBranch")
    return branch if isinstance(branch, str) and branch.strip() else None
