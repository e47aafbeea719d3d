"""Requests the server makes to addresses its users give (budget alert webhooks and ntfy
topics). Unless the operator allows it (OPENSYNC_WEBHOOK_ALLOW_PRIVATE, for a receiver on
the same machine or LAN), every address the host resolves to must be a public one: else
any user of a shared server could make it POST to its own loopback services, the LAN or a
cloud metadata address. The check runs when the URL is saved and again at each send, the
connection goes to the very address checked (no second lookup to rebind), and redirects
are not followed."""

import http.client
import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request

CONNECT_TIMEOUT_S = 2  # one unreachable receiver must not hold up everyone else's alerts


class Refused(ValueError):
    pass


def _public(ip):
    ip = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_unspecified
                or ip.is_reserved or not ip.is_global)


def resolve(url, allow_private=False):
    """The address to connect to for ``url``; ``Refused`` when any address of its host is
    not public (and the operator did not allow that) or the host does not resolve."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused("the host name does not resolve") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise Refused("the host name does not resolve")
    if not allow_private and not all(_public(a) for a in addresses):
        raise Refused("a loopback, private, link-local or other non-public address is not allowed")
    return addresses[0]


def _pinned(base, address):
    class Connection(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Connect to the checked address; https keeps the host name for SNI and the certificate.
            self._create_connection = lambda where, timeout=None, source=None: socket.create_connection(
                (address, where[1]), CONNECT_TIMEOUT_S if timeout is None else min(timeout, CONNECT_TIMEOUT_S), source)

        def connect(self):
            super().connect()
            self.sock.settimeout(self.timeout)  # the connect timeout was the short one; reads get the full one
    return Connection


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is then an HTTPError: the receiver's answer, not somewhere else to go


def post(request, timeout, allow_private=False):
    """Send ``request`` (a urllib Request) to the checked address of its host, no redirects."""
    address = resolve(request.full_url, allow_private)

    class Pinned(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
        def http_open(self, req):
            return self.do_open(_pinned(http.client.HTTPConnection, address), req)

        def https_open(self, req):
            return self.do_open(_pinned(http.client.HTTPSConnection, address), req, context=self._context)

    opener = urllib.request.OpenerDirector()
    for handler in (Pinned(), _NoRedirect(), urllib.request.HTTPErrorProcessor(), urllib.request.HTTPDefaultErrorHandler()):
        opener.add_handler(handler)
    with opener.open(request, timeout=timeout) as response:
        response.read(65536)


def describe(err):
    """A failure as stored and shown to the user: never the receiver's own text, which would let
    a user read what answers where."""
    if isinstance(err, Refused):
        return f"refused: {err}"
    if isinstance(err, urllib.error.HTTPError):
        return f"the receiver answered HTTP {err.code}"
    if isinstance(err, (TimeoutError, socket.timeout)) or "timed out" in str(err):
        return "timed out"
    if isinstance(err, (OSError, http.client.HTTPException)):
        return "could not connect or send"
    return "failed"
