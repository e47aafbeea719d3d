"""Defaults and the OPENSYNC_* environment. Config keys carry the same names as the
environment variables, so a host app sets e.g. ``app.config["OPENSYNC_DB"]``."""

import os
from pathlib import Path


def default_db_path() -> str:
    """$XDG_DATA_HOME/opensync-lite/opensync.db, else ~/.local/share/opensync-lite/opensync.db."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "opensync-lite" / "opensync.db")


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_USER = "local"
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_HEAVY_PER_USER = 2


def host_list(*values) -> list:
    """Host names from comma-separated lists: "a.lan, b.lan:8443" -> ["a.lan", "b.lan:8443"]."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _flag(name) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


DEFAULT_EDITOR_URL = "vscode://file/{path}"


def defaults() -> dict:
    """Settings read at app creation; an explicit config passed to create_app wins."""
    return {
        # A file path or sqlite:/// URL, or a postgresql:// URL (DATABASE_URL, as hosts set it).
        "OPENSYNC_DB": os.environ.get("OPENSYNC_DB") or os.environ.get("DATABASE_URL") or default_db_path(),
        # "normal" = WAL + synchronous=NORMAL (a power cut may lose the last commits, never
        # corrupts); "full" = synchronous=FULL (every acknowledged write survives a power cut).
        "OPENSYNC_DURABILITY": os.environ.get("OPENSYNC_DURABILITY", "normal"),
        "OPENSYNC_MAX_BODY": int(os.environ.get("OPENSYNC_MAX_BODY", DEFAULT_MAX_BODY)),
        # Exports and evals previews one user may run at once in one process (then 429): see heavy.py.
        "OPENSYNC_HEAVY_PER_USER": max(1, int(os.environ.get("OPENSYNC_HEAVY_PER_USER", DEFAULT_HEAVY_PER_USER))),
        # Share links (/s/<slug>, no sign-in) work only when this is on.
        "OPENSYNC_SHARING": os.environ.get("OPENSYNC_SHARING", "").strip().lower() in ("1", "true", "yes", "on"),
        # Budget alert webhooks/ntfy topics may point at loopback or private addresses (a receiver
        # on this machine or LAN); off, they must be public, so users cannot reach internal services.
        "OPENSYNC_WEBHOOK_ALLOW_PRIVATE": _flag("OPENSYNC_WEBHOOK_ALLOW_PRIVATE"),
        # Users may turn on desktop alerts, which run notify-send/osascript on the server's machine.
        "OPENSYNC_DESKTOP_ALERTS": _flag("OPENSYNC_DESKTOP_ALERTS"),
        # The address `serve` listens on (None when embedded: the address a request came to counts).
        "OPENSYNC_LISTEN_HOST": None,
        # Host names the dashboard answers besides loopback ones (a LAN name, a proxy's; "*": any).
        "OPENSYNC_ALLOWED_HOSTS": host_list(os.environ.get("OPENSYNC_ALLOWED_HOSTS", "")),
        # The Files page's "open in editor" link, {path} the file's absolute path (empty: no link).
        "OPENSYNC_EDITOR_URL": os.environ.get("OPENSYNC_EDITOR_URL", DEFAULT_EDITOR_URL),
    }
