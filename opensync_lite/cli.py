"""The ``opensync-lite`` command: serve, and manage API keys."""

import logging
import signal
import sys
import time
from datetime import datetime, timezone

import click

from . import __version__, auth, config, create_app

db_option = click.option(
    "--db",
    "db_path",
    envvar="OPENSYNC_DB",
    default=config.default_db_path,
    show_default="$XDG_DATA_HOME/opensync-lite/opensync.db",
    help="SQLite database file.",
)


def _app(db_path, **settings):
    return create_app({"OPENSYNC_DB": db_path, **settings})


def _when(ms):
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


@click.group()
@click.version_option(__version__, prog_name="opensync-lite")
def main():
    """opensync-lite: a local OpenSync server for coding-agent sessions."""


@main.command()
@click.option("--host", envvar="OPENSYNC_HOST", default=config.DEFAULT_HOST, show_default=True)
@click.option("--port", envvar="OPENSYNC_PORT", default=config.DEFAULT_PORT, type=click.IntRange(0, 65535), show_default=True)
@click.option("--threads", default=8, type=click.IntRange(1, 256), show_default=True, help="Worker threads.")
@click.option(
    "--durability",
    type=click.Choice(["normal", "full"]),
    envvar="OPENSYNC_DURABILITY",
    default="normal",
    show_default=True,
    help="normal: WAL with synchronous=NORMAL; full: synchronous=FULL (survives power loss).",
)
@db_option
def serve(host, port, threads, durability, db_path):
    """Serve the sync API with waitress."""
    from waitress import create_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # waitress warns for every request that waits for a free thread: noise under normal bursts.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = _app(db_path, OPENSYNC_DURABILITY=durability)
    if host in ("0.0.0.0", "::", ""):
        click.echo(
            f"warning: listening on all interfaces ({host or '*'}): anyone who can reach this machine "
            "can try keys against it. Use 127.0.0.1 unless you mean it.",
            err=True,
        )
    server = create_server(app, host=host, port=port, threads=threads, ident="opensync-lite")
    stopping = _stop_on_signals(server)  # before we announce ourselves: an early stop drains too
    with app.app_context():
        if not auth.has_active_key():
            click.echo(f"No API key yet: create one with `opensync-lite keys create --db {db_path}`.", err=True)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.effective_port}"
    click.echo(f"opensync-lite {__version__} listening on {url} (database: {db_path})")
    click.echo("Point claude-code-sync at it (key from `opensync-lite keys create`):")
    click.echo(f"  export CLAUDE_SYNC_CONVEX_URL={url} CLAUDE_SYNC_API_KEY=osk_...")
    sys.stdout.flush()
    _serve_until_stopped(server, stopping)


def _stop_on_signals(server):
    """SIGTERM and SIGINT ask the server to stop; returns the list they append to."""
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        server.pull_trigger()  # wake the loop now rather than at its next timeout

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return stopping


def _serve_until_stopped(server, stopping, grace_seconds=30):
    """Run waitress until ``stopping`` fills; then stop listening and finish what is in flight
    (requests being read, handled or sent) before exiting, so no acknowledged write is cut
    off. Drives waitress's own event loop one turn at a time to keep serving while draining."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    def turn(timeout):
        server.asyncore.loop(timeout=timeout, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)

    def in_flight():
        return any(
            isinstance(ch, HTTPChannel) and (ch.requests or ch.request is not None or ch.total_outbufs_len)
            for ch in list(server._map.values())
        )

    while not stopping:
        turn(server.adj.asyncore_loop_timeout)
    click.echo("opensync-lite: stopping, finishing requests in flight", err=True)
    wasyncore.dispatcher.close(server)  # no new connections; the trigger stays to wake the loop
    deadline = time.monotonic() + grace_seconds
    while in_flight() and time.monotonic() < deadline:
        turn(0.05)
    server.task_dispatcher.shutdown(timeout=5)
    click.echo("opensync-lite: stopped", err=True)


@main.group()
def keys():
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--user", "user_name", default=config.DEFAULT_USER, show_default=True)
@click.option("--label", default="", help="A note to tell keys apart.")
@db_option
def keys_create(user_name, label, db_path):
    """Create a key. It is printed once, alone on the last line, and never stored in clear."""
    app = _app(db_path)
    with app.app_context():
        key, row = auth.create_key(user_name, label)
    click.echo(f"Created key {row.prefix}… for user {user_name!r}. Store it now: it is not shown again.")
    click.echo(key)


@keys.command("list")
@db_option
def keys_list(db_path):
    """List keys: id, prefix, label, user, created, last used, revoked."""
    from .models import ApiKey, User

    app = _app(db_path)
    with app.app_context():
        rows = list(ApiKey.select(ApiKey, User).join(User).order_by(ApiKey.id))
    click.echo(f"{'ID':>4}  {'PREFIX':<14}{'USER':<12}{'LABEL':<20}{'CREATED':<18}{'LAST USED':<18}REVOKED")
    for r in rows:
        click.echo(
            f"{r.id:>4}  {r.prefix:<14}{r.user.name:<12}{r.label[:19]:<20}"
            f"{_when(r.created_at):<18}{_when(r.last_used_at):<18}{_when(r.revoked_at)}"
        )


@keys.command("revoke")
@click.argument("prefix_or_id")
@db_option
def keys_revoke(prefix_or_id, db_path):
    """Revoke the key with this id or prefix; it is refused from the next request on."""
    app = _app(db_path)
    with app.app_context():
        matches = auth.find_keys(prefix_or_id)
        if len(matches) != 1:
            raise click.ClickException(
                f"{len(matches)} keys match {prefix_or_id!r}; give the id or a longer prefix."
            )
        auth.revoke_key(matches[0])
    click.echo(f"Revoked key {matches[0].prefix}… (id {matches[0].id}).")


if __name__ == "__main__":
    main()
