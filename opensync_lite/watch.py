"""The watcher inside `serve`: the agents' own files on this machine are the truth, so the
server reads them as they change (Claude Code's transcripts, Codex's rollouts, Gemini CLI's chats, pi's sessions, Copilot
CLI's session state, Qwen Code's chats, Cline's sessions, OpenCode's storage), while a
plugin keeps a session live. The OS's file events (watchdog: inotify, FSEvents, ...) say
which files changed, so a pass reads only those, from where the last one stopped (the
importers remember each file's offset); a slow full pass now and then catches what events
missed (a folder made while the watcher was down, a network filesystem without events)."""

import logging
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from . import auth, budgets
from .importers import agents, opencode

log = logging.getLogger("opensync_lite.watch")

SETTLE_S = 0.2  # events come in bursts (one per written block): read once they pause
FULL_PASS_S = 300
PENDING_POLL_S = 1.0  # how often a folder that is not there yet is looked for


class _Changes(FileSystemEventHandler):
    """Collects the paths that changed, for the watcher's thread to take."""

    def __init__(self, wake):
        self.paths, self.lock, self.wake = set(), threading.Lock(), wake

    def on_any_event(self, event):
        if event.is_directory and event.event_type != "moved":
            return
        with self.lock:
            self.paths.add(event.src_path)
            if getattr(event, "dest_path", None):
                self.paths.add(event.dest_path)
        self.wake.set()

    def take(self):
        with self.lock:
            paths, self.paths = self.paths, set()
        return paths


# Agents whose history is files appended to: the importer reads the files that changed
# (Gemini CLI's, pi's and Copilot CLI's whole, as a record there replaces or completes an earlier one).
FILE_AGENTS = {agent.name: agent for agent in agents.FILE_AGENTS.values()}


class Watcher:
    """Imports what changes in ``watching`` ({agent name: [folders]}: those of FILE_AGENTS, and
    OpenCode's data folder, read whole) for ``user_name``, in a thread of its own."""

    def __init__(self, app, user_name, watching):
        self.app, self.user_name = app, user_name
        self.roots = {name: [Path(r) for r in folders] for name, folders in watching.items() if folders}
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.changes = _Changes(self.wake)
        self.observer, self.pending = None, []
        self.thread = threading.Thread(target=self._run, name="opensync-watch", daemon=True)
        self.passes = 0  # completed passes (tests wait on it)

    def folders(self):
        return [folder for folders in self.roots.values() for folder in folders]

    def start(self):
        self.observer = Observer()
        self.pending = []  # folders not there yet (an agent installed after the server started)
        for folder in self.folders():
            if folder.is_dir():
                self.observer.schedule(self.changes, str(folder), recursive=True)
            else:
                self.pending.append(folder)
        self.observer.daemon = True
        self.observer.start()
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.wake.set()
        if self.observer is not None:
            self.observer.stop()
        self.thread.join(timeout=10)

    def _run(self):
        with self.app.app_context():
            user_id = auth.get_or_create_user(self.user_name).id
            full_due = 0.0
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= full_due:
                        self._pass(user_id, None)
                        full_due = time.monotonic() + FULL_PASS_S
                    else:
                        self._pass(user_id, self.changes.take())
                except Exception:  # noqa: BLE001 - a bad pass is logged; the next one tries again
                    log.exception("watch pass failed")
                self.passes += 1
                wait = max(0.0, min(FULL_PASS_S, full_due - time.monotonic()))
                self.wake.wait(timeout=min(wait, PENDING_POLL_S) if self.pending else wait)
                if self._appeared():
                    full_due = 0.0
                if self.stopping.is_set():
                    break
                time.sleep(SETTLE_S)
                self.wake.clear()

    def _appeared(self):
        """Start watching the pending folders that now exist; whether any did."""
        appeared = [f for f in self.pending if f.is_dir()]
        for folder in appeared:
            self.observer.schedule(self.changes, str(folder), recursive=True)
            self.pending.remove(folder)
            log.info("watching %s", folder)
        return bool(appeared)

    def _pass(self, user_id, changed):
        """Import the changed files (``None``: every file); what they add wakes the budgets."""
        wrote = False
        for name, agent in FILE_AGENTS.items():
            roots = self.roots.get(name)
            if not roots:
                continue
            if changed is None:
                files = agent.find(roots)
            else:
                inside = [Path(p) for p in changed if p.endswith(agent.suffixes)]
                files = sorted(p for p in inside if p.is_file() and any(root in p.parents for root in roots))
            if files:
                wrote |= self._log(name, agent.run(user_id, files))
        for source, name in agents.DATABASE_AGENTS.items():
            for root in self.roots.get(name, ()):
                if root.is_dir() and (changed is None or any(Path(p).is_relative_to(root) for p in changed)):
                    wrote |= self._log(name, opencode.run(user_id, root, source=source))
        if wrote:
            budgets.notifier(self.app).wake(user_id)

    @staticmethod
    def _log(name, report):
        if report.messages or report.sessions_created or report.problems:
            log.info("%s: %s", name, report.summary())
        for problem in report.problems[:20]:
            log.warning("%s: skipped %s", name, problem)
        return bool(report.messages or report.sessions_created)
