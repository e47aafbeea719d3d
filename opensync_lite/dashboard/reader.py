"""The session reader: a session's messages as turns (the prompt, what the agent did, its
answer), tool calls with their results beside them, compactions as dividers. The dashboard
page, the HTML export and share pages render what ``context`` returns (``_conversation.html``)."""

import re
import shlex

from flask import render_template

from .. import files
from .markdown import markdown
from .tool_calls import SUBAGENT_TOOLS, arguments, call_id, diff, pretty, result, short, summary

MAX_CHILDREN = 1000  # subagent sessions a page looks among for its Task calls' links
# Claude Code ends a Task call's result with the subagent's id ("agentId: a1b2c3 (for resuming ...)").
AGENT_ID = re.compile(r"\bagentId: ?([\w-]{3,64})")
META_TAG = re.compile(r"^\s*<([a-z][\w-]*)>")
COMMAND_NAME = re.compile(r"<command-name>\s*([^<]{1,200}?)\s*</command-name>")


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
                          "text": content if isinstance(content, str) else pretty(content)})
                added = True
            elif kind in files.TOOL_PART_TYPES or kind in ("function_call", "tool_call"):
                self._call(m, content, extra)
                added = True
            elif "result" in kind or "output" in kind:
                self._result(m, content, extra)
                added = True
            else:
                self.add({"kind": "other", "message": m, "type": part.get("type"), "text": pretty(content)})
                added = True
        return added

    def _call(self, m, content, extra):
        call = files.tool_call(content) or ("", content)
        name, args = call[0] or str(extra.get("toolName") or "tool"), call[1]
        event = {"kind": "tool", "message": m, "name": name, "summary": summary(name, args, self.project),
                 "diff": diff(name, args), "args": arguments(args), "result": None,
                 "subagent": None, "prompt": args.get("prompt") if isinstance(args, dict) else None}
        if isinstance(content, dict) and content.get("result") is not None:  # droid's {toolName, args, result}
            event["result"] = result(content["result"], extra)
        elif isinstance(content, dict) and isinstance(content.get("state"), dict):  # a raw OpenCode tool part
            state = content["state"]
            if state.get("status") in ("completed", "error"):
                event["result"] = result(state.get("output", state.get("error")), state)
        ident = call_id(content)
        if event["result"] is None:
            if ident:
                self.open_calls[ident] = event
            else:
                self.unanswered.append(event)
        self._link_subagent(event)
        self.add(event)

    def _result(self, m, content, extra):
        ident = call_id(content)
        event = self.open_calls.pop(ident, None) if ident else None
        if event is None and not ident and self.unanswered:
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


# The session page shows a long conversation this many messages at a time (its part).
PART_MESSAGES = 1000


def context(messages, session, children=(), scripted=False, part=None):
    """The values ``_conversation.html`` renders; ``scripted``: the page runs reader.js (the
    dashboard does; the export's policy forbids any script, so it has no script-only buttons);
    ``part``: which messages of how many these are, with links to the parts before and after."""
    items = conversation(messages, session.get("project_path"), children)
    return {"items": items, "outline": outline(items), "message_count": len(messages), "scripted": scripted,
            "part": part}


def render_conversation(session, messages, children=(), part=None):
    """The conversation's HTML for the session page (the export includes the same template)."""
    return render_template("dashboard/_conversation.html", **context(messages, session, children, True, part))


def outline(items):
    """(turn number, the prompt's first words) of each turn that has a prompt."""
    return [(item["number"], short(item["prompt"]["text_content"])[:80]) for item in items
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
