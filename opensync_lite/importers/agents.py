"""Every agent whose own history can be brought in, named once: `import <kind>`, `import all`
and serve's watcher all read this table."""

from dataclasses import dataclass
from typing import Callable

from . import claude_code, cline, codex, copilot, gemini, pi, qwen


@dataclass(frozen=True)
class FileAgent:
    name: str  # as reports and the log name it
    files_are: str  # what its files are called, for "no … found"
    default_roots: Callable  # (existing=True) -> its own folders (all of them, existing or not, with False)
    find: Callable  # folders -> its files in them
    run: Callable  # (user_id, files, dry_run, progress) -> Report
    suffixes: tuple = (".jsonl",)  # the endings of a changed file its reader takes


def _one(default_root):
    return lambda existing=True: [default_root()]


# kind (as `import` names it): the agent; in the order reports list them
FILE_AGENTS = {
    "claude-code": FileAgent("Claude Code", "transcripts", claude_code.default_roots, claude_code.transcripts, claude_code.run),
    "codex": FileAgent("Codex", "sessions", _one(codex.default_root), codex.rollouts, codex.run),
    "gemini": FileAgent("Gemini CLI", "chats", _one(gemini.default_root), gemini.chats, gemini.run),
    "pi": FileAgent("pi", "sessions", _one(pi.default_root), pi.sessions, pi.run),
    "copilot": FileAgent("Copilot CLI", "session state", _one(copilot.default_root), copilot.sessions, copilot.run),
    "qwen": FileAgent("Qwen Code", "chats", _one(qwen.default_root), qwen.chats, qwen.run),
    "cline": FileAgent("Cline", "sessions", _one(cline.default_root), cline.sessions, cline.run, (".json",)),
}
# kind: name, of the agents whose history is a database the OpenCode importer reads
DATABASE_AGENTS = {"opencode": "OpenCode", "kilo": "Kilo"}
