"""This program's commands as the person running the server can type them: the path they
started it by when `opensync-lite` is not on PATH (e.g. `.venv/bin/opensync-lite` after
`make run`), and the server's database when it is not the default one."""

import os
import shlex

from flask import current_app

from .. import config, db
from .views import bp


def cli_command(*words, database=True):
    """``words`` after the program, with ``--db`` when this server's database needs naming."""
    from ..cli import _command  # the CLI imports the app: import it only when a page asks

    program = _command()
    if not program.endswith(("opensync-lite", "opensync_lite.cli")):
        program = "opensync-lite"  # embedded in another program: the package's own command
    line = " ".join((program, *words))
    path = current_app.config.get("OPENSYNC_DB")
    if database and path and path != config.default_db_path() and "OPENSYNC_DB" not in os.environ:
        line += f" --db {shlex.quote(db.display_url(str(path)))}"
    return line


@bp.app_context_processor
def _commands():
    return {"cli_command": cli_command}
