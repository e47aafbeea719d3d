"""The Host names the dashboard answers: loopback ones (127.0.0.1, localhost, [::1], any port),
the address `serve` listens on, and those of ``OPENSYNC_ALLOWED_HOSTS`` (``--allowed-host``).
A DNS-rebinding page (its own name made to resolve to 127.0.0.1) reaches the server with that
name as Host, so it gets an error page, never a signed-in dashboard. The sync and API routes
are not restricted: a Bearer key is their check, and plugins on a LAN use any name."""

from flask import abort, current_app, request

from ..shares import is_loopback

WILDCARD_LISTEN = ("0.0.0.0", "::", "")
UNCHECKED = {"dashboard.shared"}  # /s/<slug> needs no sign-in: its slug is its only secret, as through a tunnel


def _split(host):
    """("name", "port" or None), lower-case, an IPv6 address in brackets, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else None
    elif host.count(":") > 1:  # a bare IPv6 address, as --host takes it
        name, port = f"[{host}]", None
    else:
        name, _, port = host.partition(":")
    return name.rstrip("."), port or None


def allowed(host, names):
    """Whether the Host header ``host`` is a loopback name or one of ``names`` (a name alone
    allows any port; "name:port" that port; "*" any host)."""
    name, port = _split(host)
    if is_loopback(name):
        return True
    for entry in names:
        if entry.strip() == "*":
            return True
        want, want_port = _split(entry)
        if name == want and want_port in (None, port):
            return True
    return False


def check():
    """before_request of the dashboard: 421 for a Host it does not answer."""
    if request.endpoint in UNCHECKED:
        return
    names = list(current_app.config.get("OPENSYNC_ALLOWED_HOSTS") or ())
    listening = current_app.config.get("OPENSYNC_LISTEN_HOST")
    if listening not in (None, *WILDCARD_LISTEN):
        names.append(listening)
    if not allowed(request.host, names):
        shown = _split(request.host)[0][:100]
        abort(421, f"This server does not answer its dashboard to the name “{shown}”. If you reached it through "
                   f"a proxy or by a name on your network, start it with --allowed-host {shown} "
                   "(or OPENSYNC_ALLOWED_HOSTS).")
