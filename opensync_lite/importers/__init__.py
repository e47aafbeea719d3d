"""Importers: history already on disk, written through ``ingest`` like any sync. What they
share: the report, and remembering how far each file was read so a re-run reads only what is
new. Run them inside an app context (the CLI does)."""

from dataclasses import dataclass, field

from ..db import write_transaction
from ..models import ImportFile


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
        self.problems.append(f"{path}:{line}: {what}")

    def summary(self, dry_run=False):
        head = "Would import" if dry_run else "Imported"
        return (f"{head} {self.messages} messages into {self.sessions_created} new and {self.sessions_updated} updated "
                f"sessions from {self.files} files ({self.files_unchanged} unchanged, {self.lines} lines read); "
                f"{len(self.problems)} lines skipped.")


def file_state(user_id, path):
    """(size, mtime_ns, offset) recorded for ``path``, or None."""
    row = ImportFile.get_or_none(ImportFile.user == user_id, ImportFile.path == path)
    return row and (row.size, row.mtime_ns, row.offset)


def save_file_state(user_id, path, size, mtime_ns, offset):
    with write_transaction(user_id):
        ImportFile.insert(user=user_id, path=path, size=size, mtime_ns=mtime_ns, offset=offset).on_conflict(
            conflict_target=[ImportFile.user, ImportFile.path],
            update={ImportFile.size: size, ImportFile.mtime_ns: mtime_ns, ImportFile.offset: offset},
        ).execute()
