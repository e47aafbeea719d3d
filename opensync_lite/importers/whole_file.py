"""The shape shared by the agents whose session file is an append log read whole each time it
changes, since a later record completes or replaces an earlier one (pi, Copilot CLI, Qwen
Code): each file is one session; only the messages its new lines shaped are written again,
and each response is counted once (the largest copy wins).

A subclass names its ``SOURCE``, the problem of a file naming no session (``NO_ID``), a fresh
per-file ``reader()`` (``take(entry, offset)`` returns a problem or None; ``id``, ``first``,
``last`` once read), ``_session(path, reader, before)`` (its messages through
``valid_messages``, its responses through ``keep_response``, then ``self.sessions.append``
of ``(path, reader, …)``) and ``session_wire(path, reader, stored)``, the session as a sync
body."""

import os
import stat as stats
from pathlib import Path

from marshmallow import ValidationError

from .. import ingest, queries, schemas
from . import FileState, Report, finish_run, head_hash, session_row
from .claude_code import LineTooLong, read_lines

BATCH_MESSAGES = 500  # written a batch of whole files at a time (a file's records only make sense together)


def title_for(given, prompt, stored):
    """A name the user gave, else the first prompt unless the stored session has a title."""
    return given or (prompt if stored is None or stored["title"] in (None, "", ingest.PLACEHOLDER_TITLE) else None)


class WholeFileImporter:
    SOURCE = None
    NO_ID = "no record names this file's session"

    def __init__(self, user_id, dry_run=False):
        self.user_id, self.dry_run = user_id, dry_run
        self.report = Report()
        self.sessions, self.messages, self.responses, self.read_files = [], [], {}, {}
        self.known = {}

    def import_file(self, path):
        self._read_file(Path(path))
        if len(self.messages) >= BATCH_MESSAGES:
            self.flush()

    def _read_file(self, path):
        st = os.stat(path)
        if not stats.S_ISREG(st.st_mode):
            self.report.problem(path, 0, "not a regular file")
            return
        state = self.known.get(str(path))
        before = 0  # what a previous run wrote: the messages only lines before this shaped
        if state is not None:
            if (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
                self.report.files_unchanged += 1
                return
            if st.st_size >= state.offset and (not state.head or head_hash(path, state.offset) == state.head):
                before = state.offset
        self.report.files += 1
        reader, lines, read_to = self.reader(), 0, 0
        with open(path, "rb") as f:
            for lines, read_to, entry in read_lines(f, 0):
                self.report.lines += 1
                if isinstance(entry, Exception):
                    self.report.problem(path, lines, entry if isinstance(entry, LineTooLong) else f"not JSON ({entry})")
                elif not isinstance(entry, dict):
                    self.report.problem(path, lines, "not a JSON object")
                elif (why := reader.take(entry, read_to)) is not None:
                    self.report.problem(path, lines, why)
        if reader.id is None:
            self.report.problem(path, 0, self.NO_ID)
        else:
            self._session(path, reader, before)
        self.read_files[str(path)] = FileState(st.st_size, st.st_mtime_ns, read_to, lines, head_hash(path, read_to))

    def valid_messages(self, path, session_id, messages, before):
        """The externalIds of ``messages`` (sync bodies, each with ``_end``: the offset past its
        last line) that validate; those shaped by lines after ``before`` are queued (and marked
        ``_new``), the rest a run before wrote."""
        valid = set()
        for wire in messages:
            end = wire.pop("_end")
            try:
                data = schemas.message_in.load({"sessionExternalId": session_id, "source": self.SOURCE,
                                                **{k: v for k, v in wire.items() if v is not None}})
            except ValidationError as err:
                self.report.problem(path, 0, f"invalid message {wire['externalId']} ({', '.join(map(str, err.messages))})")
                continue
            valid.add(wire["externalId"])
            if end > before:
                self.messages.append(data)
                wire["_new"] = True
        return valid

    def keep_response(self, response):
        earlier = self.responses.get(response["key"])
        if earlier is None or ingest._size(response) > ingest._size(earlier):
            self.responses[response["key"]] = response

    def flush(self):
        """Write the sessions read so far, their messages and their usage, in one transaction."""
        rows, written = [], []
        for path, reader, *more in self.sessions:
            stored = queries.find_session(self.user_id, external_id=reader.id)
            data = session_row(self.report, self.session_wire(path, reader, stored), reader.first, reader.last, stored,
                               where=path)
            if data is None:
                continue
            rows.append(data)
            written.append((reader, stored, *more))
            self.report.sessions_updated += stored is not None
            self.report.sessions_created += stored is None
        self.report.messages += len(self.messages)
        if not self.dry_run and (rows or self.messages):
            ingest.ingest_import(self.user_id, rows, self.messages, list(self.responses.values()))
            self.written(written)
        self.sessions, self.messages, self.responses = [], [], {}

    def written(self, sessions):
        """After a write: ``sessions`` as (reader, the stored row before, …)."""

    def finish(self):
        """Write what is left, then remember how far each file was read."""
        self.flush()
        return finish_run(self)
