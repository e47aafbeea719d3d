"""A Claude Code history for the session reader's tests, shaped as Claude Code writes it: one
line per content block, tool results as user lines with tool_result blocks (a string, a list
of text blocks, an error), a compaction (its compact_boundary line and the isCompactSummary
user line), a Task call whose result names its subagent (agentId) and the subagent's own
transcript, a git branch, Markdown with raw HTML in the answer."""

from datetime import timedelta

from claude_history import MODELS, START, Writer, stamp, write

import random

SESSION = "reader-main"
PROJECT = "/home/dev/shop"
BRANCH = "feature/stripe"
AGENT = "rev42"
FIRST_PROMPT = "Add Stripe checkout to src/lib/stripe.ts\nand keep the tests green."
SECOND_PROMPT = "Now add a webhook handler"
SUBAGENT_PROMPT = "Review the checkout code in src/lib/stripe.ts for bugs"
READ_OUTPUT = "export const stripe = {};\nexport function pay() {}\n"
FAILED_OUTPUT = "FAIL src/lib/stripe.test.ts\n  expected 10 tokens, got 9"
ANSWER = ("## Done\n\n- **Checkout** added in `src/lib/stripe.ts`\n- Tests: `npm test`\n\n"
          "| file | change |\n|---|---|\n| stripe.ts | new |\n\n"
          "<script>window.pwned = 1</script> <img src=x onerror=\"window.pwned = 2\"> "
          "[docs](https://stripe.com/docs) [bad](javascript:window.pwned=3)")
COMPACT_SUMMARY = "This session is being continued from a previous conversation. Summary: checkout added."


class _Lines:
    def __init__(self, writer, session, cwd, extra):
        self.w, self.session, self.cwd, self.extra = writer, session, cwd, extra
        self.t = START + timedelta(days=40)
        self.lines = []

    def tick(self):
        self.t += timedelta(seconds=20)
        return self.t

    def prompt(self, text, **extra):
        self.lines += self.w.user(self.session, self.tick(), text, self.cwd, **self.extra, **extra)

    def blocks(self, *blocks):
        self.lines += self.w.response(self.session, self.tick(), self.cwd, MODELS[0], list(blocks), **self.extra)

    def result(self, tool_id, content, error=False):
        block = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
        if error:
            block["is_error"] = True
        self.lines += self.w.user(self.session, self.tick(), [block], self.cwd, **self.extra)

    def call(self, name, args, content, error=False):
        tool_id = self.w.uid("toolu_")
        self.blocks({"type": "tool_use", "id": tool_id, "name": name, "input": args})
        self.result(tool_id, content, error)


def write_reader_history(home, long_turns=0):
    """The history under ``home``/.claude/projects; ``long_turns``: also a session of that many
    prompts (each with a tool call and an answer). Returns the projects folder."""
    w = Writer(random.Random(5))
    projects = home / ".claude" / "projects"
    folder = projects / "-home-dev-shop"
    s = _Lines(w, SESSION, PROJECT, {"gitBranch": BRANCH})
    s.prompt(FIRST_PROMPT)
    s.blocks({"type": "thinking", "thinking": "Read the file, then edit it."},
             {"type": "text", "text": "I'll look at the file first."})
    s.call("Read", {"file_path": f"{PROJECT}/src/lib/stripe.ts"}, READ_OUTPUT)
    s.call("Edit", {"file_path": f"{PROJECT}/src/lib/stripe.ts", "old_string": "export function pay() {}",
                    "new_string": "export function pay(amount) {\n  return stripe.charge(amount);\n}"},
           "The file src/lib/stripe.ts has been updated.")
    s.call("Bash", {"command": "npm test", "description": "Run the tests"}, FAILED_OUTPUT, error=True)
    s.call("Task", {"description": "Review the checkout", "prompt": SUBAGENT_PROMPT, "subagent_type": "general-purpose"},
           [{"type": "text", "text": "No bugs found."},
            {"type": "text", "text": f"agentId: {AGENT} (for resuming to continue this agent's work if needed)"}])
    s.blocks({"type": "text", "text": ANSWER})
    s.lines.append({"type": "system", "subtype": "compact_boundary", "sessionId": SESSION, "uuid": w.uid("c"),
                    "timestamp": stamp(s.tick()), "cwd": PROJECT, "compactMetadata": {"trigger": "auto", "preTokens": 150000}})
    s.prompt(COMPACT_SUMMARY, isCompactSummary=True)
    s.prompt(SECOND_PROMPT)
    s.call("Write", {"file_path": f"{PROJECT}/src/webhook.ts", "content": "export function hook(event) {\n  return event.type;\n}"},
           "File created successfully at: src/webhook.ts")
    s.blocks({"type": "text", "text": "Webhook added."})
    write(folder / f"{SESSION}.jsonl", s.lines)
    sub = _Lines(w, SESSION, PROJECT, {"isSidechain": True, "agentId": AGENT})
    sub.prompt(SUBAGENT_PROMPT)
    sub.blocks({"type": "text", "text": "No bugs found."})
    write(folder / SESSION / "subagents" / f"agent-{AGENT}.jsonl", sub.lines)
    if long_turns:
        long = _Lines(w, "reader-long", PROJECT, {})
        for n in range(long_turns):
            long.prompt(f"Step {n}: tidy module {n}")
            long.call("Bash", {"command": f"pytest tests/test_{n}.py"}, f"{n} passed\nok")
            long.blocks({"type": "text", "text": f"Module {n} is **tidy**."})
        write(folder / "reader-long.jsonl", long.lines)
    return projects
