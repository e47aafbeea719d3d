"""The ``opensync-lite`` command: serve, manage API keys, back up, run at login."""

import errno
import logging
import os
import shlex
import shutil
import socket
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import peewee

from . import __version__, auth, config, create_app, db
from . import server as server_

db_option = click.option(
    "--db",
    "db_path",
    envvar=["OPENSYNC_DB", "DATABASE_URL"],
    show_envvar=True,
    default=config.default_db_path,
    show_default="$XDG_DATA_HOME/opensync-lite/opensync.db",
    help="SQLite database file (a path or sqlite:///path), or postgresql://user:pass@host:5432/name.",
)


def _command():
    """This program as the user can run it again from the same shell: `opensync-lite` when
    that is what PATH finds, else the path they used (e.g. .venv/bin/opensync-lite)."""
    argv0 = sys.argv[0]
    if not argv0 or Path(argv0).name in ("cli.py", "__main__.py", "-c"):
        return f"{shlex.quote(sys.executable)} -m opensync_lite.cli"
    found = shutil.which("opensync-lite")
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return "opensync-lite"
    path = os.path.abspath(argv0)
    relative = os.path.relpath(path)
    return shlex.quote(relative if not relative.startswith("..") else path)


def _missing_ancestor(path):
    """The outermost of ``path`` and its folders that does not exist yet, or None."""
    path = Path(path).expanduser().absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _app(db_path, routes=True, **settings):
    """The app on ``db_path`` (without ``routes``, the database alone, for a command that serves
    nothing); a database that cannot be opened is one line naming it and the fix, and whatever
    this attempt created (a SQLite file, its folders) is removed again."""
    shown = db.display_url(db_path)
    try:
        created = None if db.is_postgres_url(db_path) else _missing_ancestor(db.sqlite_path(db_path))
    except db.UnsupportedDatabase as err:
        raise click.ClickException(f"{err}.") from None
    try:
        return create_app({"OPENSYNC_DB": db_path, **settings}, routes=routes)
    except (db.SchemaTooNew, db.MissingDriver) as err:
        raise click.ClickException(f"{shown}: {err}.") from None
    except (OSError, sqlite3.Error, peewee.DatabaseError) as err:
        if created is not None:
            for leftover in (created, *(Path(f"{created}{s}") for s in ("-wal", "-shm"))):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                elif leftover.exists():
                    leftover.unlink()
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, OSError) and err.strerror:
            reason = f"{err.strerror} ({err.filename})" if err.filename else err.strerror
        fix = ("Check the server, user, password and database name in the URL" if db.is_postgres_url(db_path)
               else "Give a writable SQLite file with --db PATH (or OPENSYNC_DB)")
        raise click.ClickException(f"cannot open the database {shown}: {reason}. {fix}.") from None


def _when(ms):
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _user_name(ctx, param, value):
    if not value.strip():
        raise click.BadParameter("must not be empty.")
    return value


def _check_port_free(host, port):
    """Refuse early, in one line, when another program holds the port (before any file is
    made), rather than with waitress's traceback."""
    if port == 0:
        return
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as waitress binds
            pass
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use (another opensync-lite?): stop that program "
                f"or choose another port with --port N or OPENSYNC_PORT=N."
            ) from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {err.strerror or err}.") from None


@click.group()
@click.version_option(__version__, prog_name="opensync-lite")
def main():
    """opensync-lite: a local OpenSync server for coding-agent sessions."""


@main.command()
@click.option("--host", envvar="OPENSYNC_HOST", show_envvar=True, default=config.DEFAULT_HOST, show_default=True)
@click.option("--port", envvar="OPENSYNC_PORT", show_envvar=True, default=config.DEFAULT_PORT,
              type=click.IntRange(0, 65535), show_default=True, help="0 picks a free port.")
@click.option("--threads", envvar="OPENSYNC_THREADS", show_envvar=True, default=8, type=click.IntRange(1, 256),
              show_default=True, help="Worker threads.")
@click.option(
    "--durability",
    type=click.Choice(["normal", "full"]),
    envvar="OPENSYNC_DURABILITY",
    show_envvar=True,
    default="normal",
    show_default=True,
    help="normal: WAL with synchronous=NORMAL; full: synchronous=FULL (survives power loss).",
)
@click.option("--max-body", envvar="OPENSYNC_MAX_BODY", show_envvar=True, default=config.DEFAULT_MAX_BODY,
              type=click.IntRange(1024), show_default=True, help="Largest request body, in bytes.")
@click.option("--workers", envvar="OPENSYNC_WORKERS", show_envvar=True, default=1, type=click.IntRange(1, 64),
              show_default=True, help="Server processes sharing the port (one core each).")
@click.option("--connection-limit", envvar="OPENSYNC_CONNECTION_LIMIT", show_envvar=True,
              default=server_.Limits.connection_limit, type=click.IntRange(10, 100_000), show_default=True,
              help="Open connections accepted at once (per worker).")
@click.option("--channel-timeout", envvar="OPENSYNC_CHANNEL_TIMEOUT", show_envvar=True,
              default=server_.Limits.channel_timeout, type=click.IntRange(1, 3600), show_default=True,
              help="Seconds a connection may stay silent before it is closed.")
@click.option("--read-timeout", envvar="OPENSYNC_READ_TIMEOUT", show_envvar=True,
              default=server_.Limits.read_timeout, type=click.IntRange(1, 3600), show_default=True,
              help="Seconds a request (headers and body) may take to arrive whole.")
@click.option("--watch/--no-watch", envvar="OPENSYNC_WATCH", show_envvar=True, default=True, show_default=True,
              help="Read the agents' own files on this machine as they change (Claude Code's transcripts, "
                   "Codex's rollouts, Gemini CLI's chats, pi's sessions, Copilot CLI's session state, Qwen Code's chats, "
                   "Cline's sessions, OpenCode's storage).")
@click.option("--watch-claude", "watch_claude", multiple=True, envvar="OPENSYNC_WATCH_CLAUDE", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A Claude Code projects folder to watch [default: ~/.claude/projects, $CLAUDE_CONFIG_DIR].")
@click.option("--watch-opencode", envvar="OPENSYNC_WATCH_OPENCODE", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="OpenCode's data folder to watch [default: $XDG_DATA_HOME/opencode].")
@click.option("--watch-kilo", envvar="OPENSYNC_WATCH_KILO", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Kilo's data folder to watch [default: $XDG_DATA_HOME/kilo].")
@click.option("--watch-codex", "watch_codex", multiple=True, envvar="OPENSYNC_WATCH_CODEX", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A Codex sessions folder to watch [default: $CODEX_HOME/sessions, ~/.codex/sessions].")
@click.option("--watch-gemini", "watch_gemini", multiple=True, envvar="OPENSYNC_WATCH_GEMINI", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A Gemini CLI chats folder to watch [default: ~/.gemini/tmp].")
@click.option("--watch-pi", "watch_pi", multiple=True, envvar="OPENSYNC_WATCH_PI", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A pi sessions folder to watch [default: $PI_CODING_AGENT_DIR/sessions, ~/.pi/agent/sessions].")
@click.option("--watch-copilot", "watch_copilot", multiple=True, envvar="OPENSYNC_WATCH_COPILOT", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A GitHub Copilot CLI session-state folder to watch [default: $COPILOT_HOME/session-state, "
                   "~/.copilot/session-state].")
@click.option("--watch-qwen", "watch_qwen", multiple=True, envvar="OPENSYNC_WATCH_QWEN", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A Qwen Code projects folder to watch [default: $QWEN_RUNTIME_DIR/projects, $QWEN_HOME/projects, ~/.qwen/projects].")
@click.option("--watch-cline", "watch_cline", multiple=True, envvar="OPENSYNC_WATCH_CLINE", show_envvar=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A Cline sessions folder to watch [default: $CLINE_DATA_DIR/sessions, ~/.cline/data/sessions].")
@click.option("--sharing/--no-sharing", envvar="OPENSYNC_SHARING", show_envvar=True, default=False, show_default=True,
              help="Allow share links (/s/..., no sign-in) to sessions.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, envvar="OPENSYNC_ALLOWED_HOSTS", show_envvar=True,
              metavar="NAME", help="A Host name the dashboard answers besides loopback ones and --host (a LAN name, "
              "a proxy's); repeat it or give a comma list. The sync and API routes answer any name.")
@click.option("--webhook-allow-private/--no-webhook-allow-private", envvar="OPENSYNC_WEBHOOK_ALLOW_PRIVATE", show_envvar=True,
              default=False, show_default=True, help="Let budget alert webhooks and ntfy topics point at loopback "
              "or private addresses (a receiver on this machine or LAN). Off, only public addresses are allowed.")
@click.option("--desktop-alerts/--no-desktop-alerts", envvar="OPENSYNC_DESKTOP_ALERTS", show_envvar=True, default=False,
              show_default=True, help="Let users turn on desktop budget alerts (notify-send or osascript on this machine).")
@click.option("--embed/--no-embed", envvar="OPENSYNC_EMBED", show_envvar=True, default=True, show_default=True,
              help="Embed sessions in the background as they arrive, for semantic and hybrid search (needs the "
                   "semantic extra or OPENSYNC_EMBED_URL; without either it stays off).")
@click.option("--quiet", "-q", is_flag=True, help="No line per request in the log.")
@db_option
def serve(host, port, threads, durability, max_body, workers, connection_limit, channel_timeout, read_timeout,
          watch, watch_claude, watch_opencode, watch_codex, watch_gemini, watch_pi, watch_copilot, watch_qwen, watch_cline,
          sharing, allowed_hosts, webhook_allow_private, desktop_alerts, embed, quiet, db_path, watch_kilo=None):
    """Serve the sync API and the dashboard with waitress. Logs one line per request (method,
    path, status, time, user id; never a key or a body) unless --quiet."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # waitress warns for every request that waits for a free thread: noise under normal bursts.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.getLogger("opensync_lite.requests").setLevel(logging.WARNING if quiet else logging.INFO)
    _check_port_free(host, port)
    settings = {"OPENSYNC_DURABILITY": durability, "OPENSYNC_MAX_BODY": max_body, "OPENSYNC_SHARING": sharing,
                "OPENSYNC_LISTEN_HOST": host, "OPENSYNC_ALLOWED_HOSTS": config.host_list(*allowed_hosts),
                "OPENSYNC_WEBHOOK_ALLOW_PRIVATE": webhook_allow_private, "OPENSYNC_DESKTOP_ALERTS": desktop_alerts}
    app = _app(db_path, **settings)
    if host in ("0.0.0.0", "::", ""):
        click.echo(
            f"warning: listening on all interfaces ({host or '*'}): anyone who can reach this machine "
            "can try keys against it. Use 127.0.0.1 unless you mean it.",
            err=True,
        )
    try:
        listener = socket.create_server((host, port))  # bound once, shared by every worker
    except OSError as err:  # taken between the check and now
        raise click.ClickException(f"cannot listen on {host}:{port}: {err.strerror or err}; try --port N.") from None
    limits = server_.Limits(threads, connection_limit, channel_timeout, read_timeout)
    watching = _watched(watch, watch_claude, watch_opencode, watch_codex, watch_gemini, watch_pi, watch_copilot, watch_qwen,
                        watch_cline, watch_kilo)
    server_.raise_open_files_limit(connection_limit)
    if workers == 1:
        server = server_.make_server(app, listener, limits)
        if watching:
            _start_watcher(app, watching)
        if embed:
            _start_embedder(app)
        stopping = server_.stop_on_signals(server)  # before we announce ourselves: an early stop drains too
    me = _command()
    db_arg = "" if "OPENSYNC_DB" in os.environ or db_path == config.default_db_path() else f" --db {shlex.quote(db.display_url(db_path))}"
    with app.app_context():
        if not auth.has_active_key():
            click.echo(f"No API key yet: create one with `{me} keys create{db_arg}`.", err=True)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{listener.getsockname()[1]}"
    click.echo(f"opensync-lite {__version__} listening on {url} (database: {db.display_url(db_path)})")
    click.echo(f"Point claude-code-sync at it (key from `{me} keys create{db_arg}`):")
    click.echo(f"  export CLAUDE_SYNC_CONVEX_URL={url} CLAUDE_SYNC_API_KEY=osk_...")
    with app.app_context():
        link = _signin_link(url, config.DEFAULT_USER)
    click.echo(f"Dashboard (this sign-in link works once, for 10 minutes; `{me} open{db_arg}` makes another):")
    click.echo(f"  {link}")
    if watching:
        names = ", ".join(f"{path} ({name}{'' if Path(path).is_dir() else ', once it exists'})"
                          for name, paths in watching.items() for path in paths)
        click.echo(f"Watching {names} for sessions as they are written (--no-watch turns it off).")
    sys.stdout.flush()
    if workers == 1:
        server_.serve_until_stopped(server, stopping)
    else:
        database = app.extensions[db.EXTENSION]
        database.close()  # no connection crosses a fork (nor sits in a pool that would)
        if hasattr(database, "close_all"):
            database.close_all()
        def worker(index):
            worker_app = _app(db_path, **settings)
            if watching and index == 0:  # one process reads the files
                _start_watcher(worker_app, watching)
            if embed and index == 0:  # and one embeds
                _start_embedder(worker_app)
            return server_.make_server(worker_app, listener, limits)

        server_.prefork(listener, workers, worker)


def _watched(watch, claude_roots, opencode_root, codex_roots=(), gemini_roots=(), pi_roots=(), copilot_roots=(), qwen_roots=(),
             cline_roots=(), kilo_root=None):
    """{agent: [folders]} the server should watch: those given, else the agents' own default
    folders (watched from when they appear)."""
    if not watch:
        return {}
    from .importers import agents, opencode

    given = {"claude-code": claude_roots, "codex": codex_roots, "gemini": gemini_roots, "pi": pi_roots,
             "copilot": copilot_roots, "qwen": qwen_roots, "cline": cline_roots, "opencode": opencode_root, "kilo": kilo_root}
    watching = {agent.name: list(given[kind]) or agent.default_roots(existing=False)
                for kind, agent in agents.FILE_AGENTS.items()}
    watching.update({name: [given[kind] or opencode.default_root(kind)] for kind, name in agents.DATABASE_AGENTS.items()})
    return {name: folders for name, folders in watching.items() if folders}


def _start_watcher(app, watching):
    from .watch import Watcher

    return Watcher(app, config.DEFAULT_USER, watching).start()


def _start_embedder(app):
    try:
        from .semantic.worker import Embedder
    except ImportError:  # numpy missing: the semantic extra is not installed
        click.echo("Semantic search is off: pip install 'opensync-lite[semantic]' turns it on.", err=True)
        return None
    return Embedder(app).start()


def _signin_link(url, user_name):
    from urllib.parse import urlencode

    return f"{url}/signin?{urlencode({'token': auth.create_signin_token(user_name)})}"


@main.command("open")
@click.option("--url", envvar="OPENSYNC_URL", show_envvar=True, default=None,
              help="The running server's address [default: http://OPENSYNC_HOST:OPENSYNC_PORT].")
@click.option("--user", "user_name", default=config.DEFAULT_USER, show_default=True, callback=_user_name)
@click.option("--no-browser", is_flag=True, help="Only print the link.")
@db_option
def open_dashboard(url, user_name, no_browser, db_path):
    """Open the dashboard of a running server with a new one-time sign-in link."""
    import webbrowser

    if url is None:
        host = os.environ.get("OPENSYNC_HOST", config.DEFAULT_HOST)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{os.environ.get('OPENSYNC_PORT', config.DEFAULT_PORT)}"
    app = _app(db_path, routes=False)
    with app.app_context():
        link = _signin_link(url.rstrip("/"), user_name)
    click.echo(f"Sign-in link (works once, for 10 minutes):\n  {link}")
    if not no_browser and not webbrowser.open(link):
        click.echo("No browser could be started here: open the link yourself.", err=True)


@main.group()
def keys():
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--user", "user_name", default=config.DEFAULT_USER, show_default=True, callback=_user_name)
@click.option("--label", default="", help="A note to tell keys apart.")
@click.option("--source", default=None,
              help="Source of the sessions synced with this key that name none (e.g. opencode, whose plugin sends none).")
@db_option
def keys_create(user_name, label, source, db_path):
    """Create a key. It is printed once, alone on the last line, and never stored in clear."""
    app = _app(db_path, routes=False)
    with app.app_context():
        key, row = auth.create_key(user_name, label, source)
    click.echo(f"Created key {row.prefix}… for user {user_name!r}. Store it now: it is not shown again.")
    click.echo(key)


@keys.command("list")
@db_option
def keys_list(db_path):
    """List keys: id, prefix, label, user, created, last used, revoked (times in UTC)."""
    from .models import ApiKey, User

    app = _app(db_path, routes=False)
    with app.app_context():
        rows = list(ApiKey.select(ApiKey, User).join(User).order_by(ApiKey.id))
    click.echo(f"{'ID':>4}  {'PREFIX':<14}{'USER':<12}{'LABEL':<20}{'SOURCE':<14}{'CREATED (UTC)':<18}"
               f"{'LAST USED (UTC)':<18}REVOKED (UTC)")
    for r in rows:
        click.echo(
            f"{r.id:>4}  {r.prefix:<14}{r.user.name:<12}{r.label[:19]:<20}{(r.default_source or '-')[:13]:<14}"
            f"{_when(r.created_at):<18}{_when(r.last_used_at):<18}{_when(r.revoked_at)}"
        )


@keys.command("revoke")
@click.argument("prefix_or_id")
@db_option
def keys_revoke(prefix_or_id, db_path):
    """Revoke the key with this id or prefix; it is refused from the next request on."""
    app = _app(db_path, routes=False)
    with app.app_context():
        matches = auth.find_keys(prefix_or_id)
        if len(matches) != 1:
            raise click.ClickException(
                f"{len(matches)} keys match {prefix_or_id!r}; give the id or a longer prefix."
            )
        (key,) = matches
        if key.revoked_at is not None:
            click.echo(f"Key {key.prefix}… (id {key.id}) was already revoked on {_when(key.revoked_at)} UTC.")
            return
        auth.revoke_key(key)
    click.echo(f"Revoked key {key.prefix}… (id {key.id}).")


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@db_option
def backup(out, force, db_path):
    """Copy the database to OUT, consistent even while a server is writing to it.

    Restore by stopping the server and copying OUT over the database file (removing its
    -wal and -shm files), or by serving OUT itself with --db OUT."""
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to replace it.")
    try:
        sessions, messages = db.backup(db_path, out)
    except (OSError, sqlite3.Error) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise click.ClickException(f"cannot back up {db_path} to {out}: {reason}.") from None
    click.echo(f"Backed up {db_path} to {out}: {sessions} sessions, {messages} messages.")


IMPORT_KINDS = ["claude-code", "opencode", "kilo", "codex", "gemini", "pi", "copilot", "qwen", "cline", "all"]


@main.command("import")
@click.argument("kind", type=click.Choice(IMPORT_KINDS))
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--user", "user_name", default=config.DEFAULT_USER, show_default=True, callback=_user_name)
@click.option("--dry-run", is_flag=True, help="Read and report; write nothing.")
@click.option("--watch", is_flag=True, help="Keep importing what is new every few seconds until Ctrl-C.")
@db_option
def import_history(kind, paths, user_name, dry_run, watch, db_path):
    """Import history already on disk. claude-code: the transcripts under $CLAUDE_CONFIG_DIR,
    ~/.claude and ~/.config/claude (projects/). opencode: $XDG_DATA_HOME/opencode (opencode.db
    and the older storage/ folders). codex: $CODEX_HOME/sessions or ~/.codex/sessions (the
    rollout-*.jsonl files). kilo: $XDG_DATA_HOME/kilo (kilo.db). gemini: ~/.gemini/tmp (the Gemini CLI's chats/session-* files).
    pi: $PI_CODING_AGENT_DIR/sessions or ~/.pi/agent/sessions. copilot: $COPILOT_HOME/session-state
    or ~/.copilot/session-state (GitHub Copilot CLI's <session>/events.jsonl). qwen: $QWEN_RUNTIME_DIR/projects,
    $QWEN_HOME/projects or ~/.qwen/projects (Qwen Code's chats/*.jsonl). cline:
    $CLINE_DATA_DIR/sessions or ~/.cline/data/sessions. all: every one of these whose
    history is found here, each from its default folder. Re-runs read only what is new."""
    from .importers import opencode
    from .importers.agents import DATABASE_AGENTS, FILE_AGENTS
    if kind == "all" and paths:
        raise click.UsageError("`import all` reads each agent's own folder; give PATH with one agent's name instead.")
    runs = []  # (agent's name, run(bar) -> report)
    for name in (IMPORT_KINDS[:-1] if kind == "all" else [kind]):
        if name in DATABASE_AGENTS:
            root, label = (paths[0] if paths else opencode.default_root(name)), DATABASE_AGENTS[name]
            if root.is_dir():  # no count ahead: no bar
                runs.append((label, lambda bar, root=root, name=name: opencode.run(user_id, root, dry_run, source=name)))
            elif kind != "all":
                raise click.ClickException(f"no {label} data at {root}; give its folder as PATH.")
            continue
        agent = FILE_AGENTS[name]
        label, files_are, find, read = agent.name, agent.files_are, agent.find, agent.run
        roots = list(paths) or agent.default_roots()
        if not any(Path(r).exists() for r in roots):
            if kind == "all":
                continue
            where = f" at {roots[0]}" if roots else " found (~/.claude/projects)"
            raise click.ClickException(f"no {label} {files_are}{where}; give the folder as PATH.")

        def run(bar, roots=roots, find=find, read=read):  # the folders are walked once per pass, also for the bar
            files = find(roots)
            if not bar:
                return read(user_id, files, dry_run)
            with click.progressbar(length=len(files), label="Importing", file=sys.stderr) as progress:
                return read(user_id, files, dry_run, lambda _: progress.update(1))

        runs.append((label, run))
    if not runs:
        raise click.ClickException("no agent's history found here (Claude Code, OpenCode, Kilo, Codex, Gemini CLI, pi, "
                                   "Copilot CLI, Qwen Code, Cline).")
    app = _app(db_path, routes=False)
    with app.app_context():
        user_id = auth.get_or_create_user(user_name).id
        while True:
            for label, run in runs:
                report = run(bar=sys.stderr.isatty() and not watch)
                for problem in report.problems[:50]:
                    click.echo(f"skipped {problem}", err=True)
                if len(report.problems) > 50:
                    click.echo(f"… and {len(report.problems) - 50} more skipped", err=True)
                if not watch or report.messages or report.sessions_created:
                    click.echo(f"{label}: {report.summary(dry_run)}" if kind == "all" else report.summary(dry_run))
            if not watch:
                return
            sys.stdout.flush()
            try:
                time.sleep(3)
            except KeyboardInterrupt:
                return


@main.command()
@click.option("--user", "user_name", default=config.DEFAULT_USER, show_default=True, callback=_user_name)
@db_option
def reprice(user_name, db_path):
    """Price estimated and unpriced sessions again with the installed price data
    (`pip install -U genai-prices` brings new prices); clients' own costs are never touched."""
    from . import ingest

    app = _app(db_path)
    with app.app_context():
        count = ingest.reprice(auth.get_or_create_user(user_name).id)
    click.echo(f"Repriced {count} sessions.")


@main.command()
@click.option("--user", "user_name", default=None, help="Only this user's sessions [default: every user's].")
@db_option
def embed(user_name, db_path):
    """Embed the sessions not embedded yet (or changed since) for semantic and hybrid search;
    `serve` does the same in the background as sessions arrive. Needs the semantic extra
    (`pip install 'opensync-lite[semantic]'`) or an endpoint in OPENSYNC_EMBED_URL."""
    from .semantic import Unavailable, encoder_for

    app = _app(db_path)
    with app.app_context():
        try:
            from .semantic import store, worker

            encoder = encoder_for(app.config)
        except (ImportError, Unavailable) as err:
            raise click.ClickException(getattr(err, "message", None) or
                                       "semantic search needs the semantic extra: pip install 'opensync-lite[semantic]'.") from None
        user_id = auth.get_or_create_user(user_name).id if user_name else None
        total = store.pending_count(encoder.name, user_id)
        started = time.perf_counter()
        try:
            if sys.stderr.isatty():
                with click.progressbar(length=total, label="Embedding", file=sys.stderr) as bar:
                    counts = worker.backfill(encoder, user_id, bar.update)
            else:
                counts = worker.backfill(encoder, user_id)
        except Unavailable as err:
            raise click.ClickException(err.message) from None
    seconds = time.perf_counter() - started
    rate = f", {counts.messages / seconds:.0f} messages/s" if counts.messages and seconds else ""
    click.echo(f"Embedded {counts.sessions} sessions ({counts.texts} texts for {counts.messages} messages) "
               f"with {encoder.name} in {seconds:.1f} s{rate}.")


@main.command("mcp")
@click.option("--key", envvar="OPENSYNC_KEY", show_envvar=True, required=True, metavar="osk_…",
              help="An API key (`keys create`): the tools read that key's user's sessions only.")
@db_option
def mcp_stdio(key, db_path):
    """An MCP server on stdin/stdout, for agents: `claude mcp add opensync -- opensync-lite mcp --key osk_…`.
    Its tools search and read the key's user's sessions (needs the mcp extra)."""
    try:
        from . import mcp_tools
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "mcp":
            raise click.ClickException("the MCP server needs the mcp extra: pip install 'opensync-lite[mcp]'.") from None
        raise
    app = _app(db_path)
    with app.app_context():
        found = auth.key_user(key)
    if found is None:
        raise click.ClickException("unknown or revoked API key (see `keys list`; `keys create` makes one).")
    mcp_tools.run_stdio(app, found[1])


@main.command("migrate")
@click.option("--from", "source", required=True, metavar="DB",
              help="The store to copy: a SQLite file / sqlite:///path (or a postgresql:// URL).")
@click.option("--to", "target", required=True, metavar="DB",
              help="Where to copy it: postgresql://user:pass@host:5432/name (or a SQLite file).")
def migrate(source, target):
    """Copy a store into another: users, keys (their hashes), sessions with their sources,
    messages, parts and import state. Rows the target has are kept as they are, so running it
    again copies nothing, but for messages an interrupted run left without all their parts or
    file-index rows: those it repairs. The server can keep running on either side meanwhile."""
    from . import transfer

    if db.display_url(source) == db.display_url(target) or source == target:
        raise click.ClickException("--from and --to name the same database.")
    source_app, target_app = _app(source), _app(target)
    source_totals = transfer.totals(source_app)
    with click.progressbar(length=source_totals["sessions"] + source_totals["messages"], label="Copying",
                           file=sys.stderr) as bar:
        counts = transfer.copy(source_app, target_app, source_totals, bar.update)
    click.echo(f"Copied {db.display_url(source)} to {db.display_url(target)}:")
    for table in counts.source:
        click.echo(f"  {table:<17} {counts.copied[table]:>9} copied; {counts.source[table]:>9} in the source, "
                   f"{counts.target[table]:>9} in the target")
    repaired = counts.repaired
    if repaired["messages"]:  # counted in the lines above too: say which of those rows were repairs
        click.echo(f"Repaired {repaired['messages']} message{'s' * (repaired['messages'] != 1)} that an interrupted "
                   f"run had left incomplete ({repaired['parts']} parts and {repaired['file_touches']} file-index rows "
                   "copied again).")


SYSTEMD_UNIT = """\
# opensync-lite as a systemd user service. Install:
#   {me} service > ~/.config/systemd/user/opensync-lite.service
#   systemctl --user daemon-reload && systemctl --user enable --now opensync-lite
# Logs: journalctl --user -u opensync-lite
[Unit]
Description=opensync-lite: local sync server for coding-agent sessions
After=network.target

[Service]
ExecStart={command}
Restart=on-failure
# SIGTERM: stop listening, finish the requests in flight, exit.
KillSignal=SIGTERM
TimeoutStopSec=40

[Install]
WantedBy=default.target
"""

LAUNCHD_PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>dev.opensync-lite</string>
  <key>ProgramArguments</key>
  <array>
{arguments}
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><true/>
  <key>StandardErrorPath</key><string>{log}</string>
</dict>
</plist>
"""


@main.command()
@click.option("--systemd", "kind", flag_value="systemd", help="A systemd user unit (the default on Linux).")
@click.option("--launchd", "kind", flag_value="launchd", help="A launchd agent (the default on macOS).")
@click.option("--host", envvar="OPENSYNC_HOST", show_envvar=True, default=config.DEFAULT_HOST, show_default=True)
@click.option("--port", envvar="OPENSYNC_PORT", show_envvar=True, default=config.DEFAULT_PORT,
              type=click.IntRange(1, 65535), show_default=True)
@db_option
def service(kind, host, port, db_path):
    """Print a service definition that starts the server at login (save it as shown in its
    first lines). It runs this same installation with absolute paths."""
    from xml.sax.saxutils import escape

    kind = kind or ("launchd" if sys.platform == "darwin" else "systemd")
    exe = shutil.which("opensync-lite") or os.path.abspath(sys.argv[0])
    if Path(exe).name != "opensync-lite":
        argv = [sys.executable, "-m", "opensync_lite.cli"]
    else:
        argv = [os.path.abspath(exe)]
    if not db.is_postgres_url(db_path):
        db_path = os.path.abspath(os.path.expanduser(db.sqlite_path(db_path)))
    argv += ["serve", "--host", host, "--port", str(port), "--db", db_path]
    me = _command()
    if kind == "systemd":
        click.echo(SYSTEMD_UNIT.format(me=me, command=shlex.join(argv)), nl=False)
    else:
        arguments = "\n".join(f"    <string>{escape(a)}</string>" for a in argv)
        beside = config.default_db_path() if db.is_postgres_url(db_path) else db_path
        log = escape(str(Path(beside).with_name("opensync-lite.log")))
        click.echo(LAUNCHD_PLIST.format(arguments=arguments, log=log), nl=False)
        # An XML comment cannot hold "--", so the way to install it goes to stderr.
        click.echo(f"Install: {me} service --launchd > ~/Library/LaunchAgents/dev.opensync-lite.plist\n"
                   "         launchctl load ~/Library/LaunchAgents/dev.opensync-lite.plist", err=True)



@main.command("statusline", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def statusline_command(ctx):
    """Claude Code's status line: this session's cost, today's spend, the 5-hour and weekly quota
    (`--setup [--url URL] [--key osk_…]` writes it into ~/.claude/settings.json). The
    `opensync-lite` script runs it without loading the server (launch.py)."""
    from . import statusline

    ctx.exit(statusline.main(ctx.args))


if __name__ == "__main__":
    main()
