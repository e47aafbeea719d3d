"""Sessions as eval datasets: DeepEval JSON, OpenAI evals JSONL, Promptfoo JSONL and plain text.

A session is read as turns: a user prompt, then what the assistant did (text, tool calls and
their results) until the next prompt; the last assistant text of a turn is its answer. Cases
are cut from the turns at one of three grains: every turn (with the conversation before it),
the whole session (the conversation up to its last prompt, and the last answer), or the final
turn alone. What the user graded a session (evalStatus) becomes its expectation: a golden or
correct answer is the expected output, an incorrect one is what must not come back.

Every case passes through one Redactor (secrets masked) after paths are optionally made
anonymous; the same code answers the download and its preview, so their counts agree (a
preview reads a bounded number of the file's first sessions, and says when that was not all).
"""

import json
import math
import re
import time
from collections import Counter

from flask import Response, stream_with_context

from . import queries
from .export import attachment, iso, printable, to_json
from .redact import Redactor

FORMATS = ("deepeval", "openai", "promptfoo", "text")
GRAINS = ("turn", "session", "final")
MEDIA = {"deepeval": ("application/json", "json"), "openai": ("application/x-ndjson", "jsonl"),
         "promptfoo": ("application/x-ndjson", "jsonl"), "text": ("text/plain", "txt")}
HOME = re.compile(r"(?:/home|/Users)/[^/\s\"']+|[A-Za-z]:\\\\Users\\\\[^\\\\\s\"']+")
SIMILARITY = 0.75  # promptfoo's `similar` threshold for a graded answer
# What one preview reads at most, whichever limit comes first: it runs on every load of the
# evals page, and reading and redacting 50 000 messages takes half a minute. Its answer says
# when it stopped early (partial, scanned, of).
PREVIEW_SESSIONS, PREVIEW_MESSAGES, PREVIEW_SECONDS = 500, 5000, 1.0


# --- a session as turns -----------------------------------------------------------------------

def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text(c) for c in content if _text(c))
    if isinstance(content, dict):
        for key in ("text", "content", "output", "stdout"):
            if key in content:
                return _text(content[key])
        return json.dumps(content, ensure_ascii=False)
    return "" if content is None else json.dumps(content)


def _call(content, fallback_id):
    """A tool call part as {id, name, arguments}."""
    content = content if isinstance(content, dict) else {}
    args = content.get("args", content.get("input", {}))
    return {"id": str(content.get("id") or content.get("toolCallId") or fallback_id),
            "name": str(content.get("toolName") or content.get("name") or content.get("tool") or "tool"),
            "arguments": args if isinstance(args, dict) else {"input": args}, "output": None}


def turns(messages, include_system=False):
    """(system texts, [turn]) where a turn is {prompt, steps, answer, tools}."""
    system, out, current = [], [], None
    for m in messages:
        role, text = m["role"], m["text_content"] or ""
        if role == "system":
            if include_system and text:
                system.append(text)
            continue
        parts = m.get("parts") or []
        calls = [_call(p["content"], f"{m['external_id']}-{i}") for i, p in enumerate(parts)
                 if p["type"] in ("tool-call", "tool_use")]
        results = [p["content"] for p in parts if p["type"] in ("tool-result", "tool_result")]
        if role == "user" and text.strip() and not calls and not results:
            current = {"prompt": text, "steps": [], "answer": None, "tools": []}
            out.append(current)
            continue
        if current is None:  # what came before the first prompt (a resumed session's tail)
            continue
        for call in calls:
            current["tools"].append(call)
        for result in results:
            _attach(current["tools"], result)
        if role == "tool" and text:
            current["tools"].append({"id": m["external_id"], "name": "tool", "arguments": {}, "output": text})
        if role == "assistant" and text.strip():
            current["answer"] = text
        current["steps"].append(m)
    return system, out


def _attach(calls, result):
    """Give a tool result to its call: by id when it names one, else to the last call waiting."""
    wanted = result.get("toolUseId") if isinstance(result, dict) else None
    waiting = [c for c in calls if c["output"] is None]
    target = next((c for c in waiting if c["id"] == wanted), None) if wanted else (waiting[-1] if waiting else None)
    if target is not None:
        target["output"] = _text(result.get("content") if isinstance(result, dict) and "content" in result else result)


# --- cases ------------------------------------------------------------------------------------

def cases(session, messages, options):
    """The eval cases of one session (made one at a time, as they are asked for: a long session
    cut per turn has as many cases as turns, each with the turns before it), and the reason it
    gave none (or None)."""
    system, found = turns(messages, options["system"])
    answered = [n for n, t in enumerate(found) if t["answer"]]
    if not found:
        return iter(()), "no user prompt"
    if not answered:
        return iter(()), "no assistant answer"
    grain = options["granularity"]
    if grain == "turn":
        picked = ((found[:n], found[n]) for n in answered)
    elif grain == "session":
        picked = iter([(found[:answered[-1]], found[answered[-1]])])
    else:
        picked = iter([([], found[answered[-1]])])
    return (_case(session, system, history, turn, options, n) for n, (history, turn) in enumerate(picked)), None


def _case(session, system, history, turn, options, n):
    return {
        "name": f"{session['title'] or session['external_id']} #{n + 1}" if options["granularity"] == "turn"
        else (session["title"] or session["external_id"]),
        "system": system,
        "history": [[t["prompt"], t["answer"] or ""] for t in history],  # [prompt, answer] pairs
        "prompt": turn["prompt"],
        "answer": turn["answer"],
        "tools": turn["tools"] if options["tools"] else [],
        "usage": _usage(turn["steps"]),
        "metadata": {"sessionId": str(session["id"]), "externalId": session["external_id"], "title": session["title"],
                     "source": session["source"],
                     "model": session["model"], "project": session["project_name"], "evalStatus": session.get("eval_status"),
                     "tags": session.get("tags", []), "starred": session.get("starred", False),
                     "createdAt": iso(session["created_at"])},
    }


def _usage(steps):
    """What answering one turn took, as its messages recorded it (OpenSync's evals show it)."""
    total = lambda name: sum(m.get(name) or 0 for m in steps)  # noqa: E731
    return {"prompt_tokens": total("prompt_tokens"), "completion_tokens": total("completion_tokens"),
            "duration_ms": total("duration_ms") if any(m.get("duration_ms") for m in steps) else None}


def _anonymise(value, project_path):
    """Paths without the user's name or project folder: the project becomes `<project>`, any
    home folder `~`."""
    if isinstance(value, str):
        if project_path and len(project_path) > 1:
            value = value.replace(project_path.rstrip("/"), "<project>")
        return HOME.sub("~", value)
    if isinstance(value, list):
        return [_anonymise(v, project_path) for v in value]
    if isinstance(value, dict):
        return {k: _anonymise(v, project_path) for k, v in value.items()}
    return value


def _clean(case, session, options, redactor):
    if options["anonymize"]:
        case = _anonymise(case, session["project_path"])
    return redactor.value(case)


# --- formats ----------------------------------------------------------------------------------

def _expectation(case):
    """The answer a golden or correct session gave, which a model should give again."""
    return case["answer"] if case["metadata"]["evalStatus"] in ("golden", "correct") else None


def _deepeval(case):
    """One LLMTestCase's fields (deepeval.test_case.LLMTestCase, names as its JSON loader takes them)."""
    return {"name": case["name"], "input": case["prompt"], "actual_output": case["answer"],
           "expected_output": _expectation(case),
           "context": [f"System: {s}" for s in case["system"]]
           + [t for prompt, answer in case["history"] for t in (f"User: {prompt}", f"Assistant: {answer}")],
           # A list even when empty: DeepEval's JSON loader iterates it.
           "tools_called": [{"name": t["name"], "input_parameters": t["arguments"], "output": t["output"]}
                            for t in case["tools"]],
           "tags": case["metadata"]["tags"] or None,
           "metadata": case["metadata"]}


def _chat(case):
    """OpenAI chat messages: the conversation before the answer."""
    messages = [{"role": "system", "content": s} for s in case["system"]]
    for prompt, answer in case["history"]:
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": case["prompt"]})
    if case["tools"]:
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": to_json(t["arguments"])}}
            for t in case["tools"]]})
        messages += [{"role": "tool", "tool_call_id": t["id"], "content": t["output"] or ""} for t in case["tools"]]
    return messages


def _openai(case):
    """A sample of openai/evals (Match, Includes, model-graded): chat `input` and the `ideal` answer."""
    return {"input": _chat(case), "ideal": case["answer"], "metadata": case["metadata"]}


def _promptfoo(case):
    """A promptfoo test case: the prompt and conversation as vars, the graded answer as an assertion."""
    test = {"description": case["name"], "vars": {"prompt": case["prompt"], "messages": _chat(case)},
            "metadata": {**{k: v for k, v in case["metadata"].items() if v not in (None, [])}, "answer": case["answer"]}}
    if _expectation(case) is not None:
        test["assert"] = [{"type": "similar", "value": case["answer"], "threshold": SIMILARITY}]
    elif case["metadata"]["evalStatus"] == "incorrect":
        test["assert"] = [{"type": "not-similar", "value": case["answer"], "threshold": SIMILARITY}]
    return test


def _plain(case):
    lines = [f"=== {case['name']} ({case['metadata']['source'] or 'unknown'}, {case['metadata']['externalId']})"]
    lines += [f"SYSTEM: {s}" for s in case["system"]]
    for prompt, answer in case["history"]:
        lines += [f"USER: {prompt}", f"ASSISTANT: {answer}"]
    lines.append(f"USER: {case['prompt']}")
    for t in case["tools"]:
        lines.append(f"TOOL {t['name']}: {to_json(t['arguments'])}")
        if t["output"]:
            lines.append(f"RESULT: {t['output']}")
    lines.append(f"ASSISTANT: {case['answer']}")
    return printable("\n".join(lines)) + "\n\n"


RENDER = {"deepeval": _deepeval, "openai": _openai, "promptfoo": _promptfoo, "text": _plain}


# --- export -----------------------------------------------------------------------------------

class Export:
    """One export: the sessions a loaded ``schemas.EvalsQuery`` selects (its filters), cut and
    written as it says (its options), read one at a time, with running counts."""

    def __init__(self, user_id, query):
        self.user_id, self.query = user_id, query
        self.redactor = Redactor(query["redact"])
        self.sessions = 0
        self.cases = 0
        self.skipped = Counter()
        self.warnings = []

    def all_cases(self, budget=None):
        """The file's cases, in its order; with a ``budget``, those of its first sessions only."""
        return (case for _, case in self.session_cases(budget))

    def session_cases(self, budget=None):
        """The same, each beside its session's row (OpenSync's formats show more of it)."""
        budget = budget or Budget()
        rows = queries.iter_sessions(self.user_id, self.query, sort="created_at", descending=False,
                                     limit=budget.sessions)
        for batch in _batches(rows, 200):
            for session in queries.with_curation(batch):
                if not budget.left():
                    return
                messages = budget.take(queries.session_messages(session["id"], budget.message_limit()))
                self.sessions += 1
                found, reason = cases(session, messages, self.query)
                if reason:
                    self.skipped[reason] += 1
                    if len(self.warnings) < 20:  # shown like a case: masked, and counted
                        self.warnings.append(self.redactor.text(f"{session['title'] or session['external_id']}: {reason}"))
                for n, case in enumerate(found):
                    if not budget.in_time():
                        self.sessions -= n == 0  # stopped before any of its cases: not scanned
                        return
                    self.cases += 1
                    yield session, _clean(case, session, self.query, self.redactor)

    def chunks(self):
        """The file, a case at a time."""
        fmt = self.query["format"]
        render = RENDER[fmt]
        if fmt == "deepeval":  # one JSON array
            yield "["
            for n, case in enumerate(self.all_cases()):
                yield ("," if n else "") + "\n" + to_json(render(case))
            yield "\n]\n"
        elif fmt == "text":
            yield from (render(case) for case in self.all_cases())
        else:  # JSON Lines
            yield from (to_json(render(case)) + "\n" for case in self.all_cases())

    def download(self):
        mimetype, suffix = MEDIA[self.query["format"]]
        name = f"evals-{self.query['format']}-{self.query['granularity']}.{suffix}"
        return Response(stream_with_context(self.chunks()), mimetype=mimetype, headers=attachment(name))

    def preview(self, samples=2):
        """The counts the download would have, and its first cases: ``sessions`` (and ``of``) is
        every session it reads, counted in SQL; the other counts are those of the first
        ``scanned`` sessions, all of them unless the preview's budget ran out first (``partial``)."""
        of = queries.count_sessions(self.user_id, self.query)
        budget = Budget(PREVIEW_SESSIONS, PREVIEW_MESSAGES, PREVIEW_SECONDS)
        first = []
        for case in self.all_cases(budget):
            if len(first) < samples:
                first.append(RENDER[self.query["format"]](case))
        return {"sessions": of, "cases": self.cases, "partial": budget.stopped or self.sessions < of,
                "scanned": self.sessions, "of": of, "skipped": dict(self.skipped), "warnings": self.warnings,
                "redacted": {"total": self.redactor.total, "byKind": dict(self.redactor.counts)}, "samples": first}


class Budget:
    """How much of the file one pass may read: so many sessions, messages and seconds (none
    of them bounded by default). ``stopped`` says that it ended the pass early."""

    def __init__(self, sessions=None, messages=math.inf, seconds=math.inf):
        self.sessions, self.messages = sessions, messages
        self.deadline = time.monotonic() + seconds
        self.stopped = False

    def message_limit(self):
        """How many messages to read of the next session: one more than may be used, to tell
        that it had more."""
        return None if self.messages == math.inf else self.messages + 1

    def take(self, messages):
        if len(messages) > self.messages:  # a session longer than what is left: its first messages only
            messages, self.stopped = messages[:self.messages], True
        self.messages -= len(messages)
        return messages

    def left(self):
        """Whether another session may be read."""
        if self.messages <= 0 or not self.in_time():
            self.stopped = True
        return not self.stopped

    def in_time(self):
        if time.monotonic() > self.deadline:
            self.stopped = True
            return False
        return True


def _batches(rows, size):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
