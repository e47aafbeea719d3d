"""Importers: history already on disk, written through ``ingest`` like any sync. What they
share: the report, and remembering how far each file was read so a re-run reads only what is
new. Run them inside an app context (the CLI does)."""

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields

from marshmallow import ValidationError

from .. import schemas
from ..db import prepared_many, slot, write_transaction
from ..models import ImportFile

HEAD_BYTES = 4096  # a file's identity: the hash of (up to) its first 4 KiB, and of the 4 KiB before the offset read


@dataclass
class Report:
    files: int = 0
    files_unchanged: int = 0
    lines: int = 0
    sessions_created: int = 0
    sessions_updated: int = 0
    messages: int = 0
    problems: list = field(default_factory=list)  # "path:line: what"

    def problem(self, path, line, what):
        # A file name may hold a newline: escaped, it cannot forge a line of the report.
        self.problems.append(f"{printable(path)}:{line}: {printable(what)}")

    def summary(self, dry_run=False):
        head = "Would import" if dry_run else "Imported"
        return (f"{head} {self.messages} messages into {self.sessions_created} new and {self.sessions_updated} updated "
                f"sessions from {self.files} files ({self.files_unchanged} unchanged, {self.lines} lines read); "
                f"{len(self.problems)} lines skipped.")


# Every character str.splitlines() breaks a line on (\n, \r, \v, \f, \x1c-\x1e, NEL U+0085, U+2028,
# U+2029) and the other C0 and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value):
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


@dataclass
class FileState:
    """How far a file was read: its size and mtime then, the offset and line count reached, and
    its identity (``identity``: a file replaced by a longer one is not the one we read)."""
    size: int
    mtime_ns: int
    offset: int
    lines: int = 0
    head: str = ""


def head_hash(path, length):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(min(length, HEAD_BYTES))).hexdigest()


def identity(path, offset, st):
    """What tells the file read up to ``offset`` from another at the same path (kept in
    FileState.head): its device and inode (a file renamed over it is another), the hash of its
    first 4 KiB and that of the 4 KiB just before ``offset`` (a first line longer than 4 KiB,
    a pasted log, is shared by a file rewritten in place with other lines after it)."""
    with open(path, "rb") as f:
        head = f.read(min(offset, HEAD_BYTES))
        start = max(0, offset - HEAD_BYTES)
        f.seek(start)
        tail = f.read(offset - start)
    return (f"{st.st_dev}:{st.st_ino}:{hashlib.sha256(head).hexdigest()}:"
            f"{hashlib.sha256(tail).hexdigest()}")


def same_file(path, state, st):
    """Whether ``path`` (``st`` its os.stat) still starts with what ``state`` recorded reading:
    the same file, grown or not. A state of an older run holds the first 4 KiB's hash only."""
    if st.st_size < state.offset:
        return False
    if not state.head:
        return True
    if ":" not in state.head:
        return head_hash(path, state.offset) == state.head
    return identity(path, state.offset, st) == state.head


STATE_FIELDS = tuple(f.name for f in fields(FileState))  # ImportFile's columns of the same names


def read_state(user_id, path):
    """The FileState recorded for ``path``, or None."""
    return read_states(user_id, [path]).get(path)


STATE_CHUNK = 500  # paths per query when many files' states are read at once


def read_states(user_id, paths):
    """{path: FileState} of those of ``paths`` read before: a few queries for a whole run
    instead of one per file (a re-run over an unchanged history is mostly this)."""
    paths, found = list(paths), {}
    for i in range(0, len(paths), STATE_CHUNK):
        rows = ImportFile.select(ImportFile.path, *(getattr(ImportFile, name) for name in STATE_FIELDS)).where(
            ImportFile.user == user_id, ImportFile.path.in_(paths[i:i + STATE_CHUNK])).tuples()
        for path, *state in rows:  # tuples: a model object per row was a fifth of a watcher pass
            found[path] = FileState(*state)
    return found


def file_state(user_id, path):
    """(size, mtime_ns, offset) recorded for ``path``, or None."""
    state = read_state(user_id, path)
    return state and (state.size, state.mtime_ns, state.offset)


def save_file_states(user_id, states):
    """Record {path: FileState} in one transaction."""
    if not states:
        return
    with write_transaction(user_id):  # one statement for all (a run may end thousands of files)
        prepared_many("save_file_state", lambda: ImportFile.insert(
            user=slot("user"), path=slot("path"), **{name: slot(name) for name in STATE_FIELDS}).on_conflict(
            conflict_target=[ImportFile.user, ImportFile.path],
            update={getattr(ImportFile, name): slot(name) for name in STATE_FIELDS}),
            [{"user": user_id, "path": path, **asdict(s)} for path, s in states.items()])


def finish_run(importer, rows=()):
    """The end of an importer's run: its last session rows written, then how far each file was
    read remembered (after them: a run that fails before reads the files again). Returns the report."""
    if not importer.dry_run:
        if rows:
            from .. import ingest  # ingest imports the importers' bounds: import it when a run ends

            ingest.ingest_import(importer.user_id, rows, [], [])
        save_file_states(importer.user_id, importer.read_files)
    importer.read_files = {}
    return importer.report


def save_file_state(user_id, path, size, mtime_ns, offset):
    save_file_states(user_id, {path: FileState(size, mtime_ns, offset)})


def session_row(report, wire, first, last, stored, where=None):
    """A finished session's row for the write path: ``wire`` validated (an invalid one is
    reported under ``where`` and gives None), with its latest activity and its duration from the
    times its files gave (the session's stored start counts: a file may be its later part)."""
    try:
        data = schemas.session_in.load({k: v for k, v in wire.items() if v is not None})
    except ValidationError as err:
        report.problem(where or wire["externalId"], 0, f"invalid session ({', '.join(map(str, err.messages))})")
        return None
    if last is not None:
        data["updated_at"] = last  # the latest activity: the file's, not this run's
        if first is not None:
            start = first if stored is None else min(first, stored["created_at"])
            data["duration_ms"] = max(0, last - start)
    return data


def import_files(importer, files, progress=None):
    """Read ``files`` with ``importer`` (an agent's reader: its ``import_file`` and ``finish``),
    an unreadable one reported and passed over; ``progress(path)`` after each. Returns the
    report ``finish`` gives."""
    files = list(files)
    importer.known = read_states(importer.user_id, map(str, files))
    for path in files:
        try:
            importer.import_file(path)
        except OSError as err:
            importer.report.problem(path, 0, f"unreadable ({err.strerror or err})")
        if progress:
            progress(path)
    return importer.finish()
