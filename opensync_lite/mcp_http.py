"""The MCP server over streamable HTTP at /mcp, for the user of the request's Bearer key.

The SDK's HTTP transport is ASGI and this app is WSGI (waitress), so the SDK's session manager
runs on one event loop in a thread of its own and each request reaches it through a2wsgi, from
a Flask view: the key check, CORS, the request log and the JSON errors are the API's own. The
manager is stateless and answers JSON (no session to keep, no stream to hold a waitress thread);
the user id travels in the WSGI environ, which a2wsgi hands on in the ASGI scope.
"""

import asyncio
import concurrent.futures
import threading

from flask import Blueprint, Response, current_app, g, request

from .auth import require_user

bp = Blueprint("mcp", __name__)
bp.before_request(require_user)
USER = "opensync.user_id"  # the environ key a request's user id travels under
EXTENSION = "opensync.mcp"
_starting = threading.Lock()


def _request_user(ctx):
    from mcp.server.mcpserver.exceptions import ToolError

    request_ = ctx.request_context.request
    user_id = getattr(request_, "scope", {}).get("wsgi_environ", {}).get(USER)
    if user_id is None:  # only the view below reaches the manager, and it always sets one
        raise ToolError("No API key: send Authorization: Bearer osk_...")
    return user_id


class Bridge:
    """The SDK's session manager on its own event loop, as a WSGI app."""

    def __init__(self, app):
        # The SDK is imported here, on the first /mcp request: it takes half a second, which
        # every other command (an import, a key) would pay for nothing.
        from a2wsgi import ASGIMiddleware
        from mcp.server.transport_security import TransportSecuritySettings

        from . import mcp_tools

        server = mcp_tools.server(app, _request_user)
        # Builds the manager (the Starlette app around it is not used: requests come from Flask).
        # No Host allow-list of the SDK's: every request needs a key, which a page rebinding a name
        # to this address has not got, as for the rest of the API (and `serve` may be reached by
        # names the SDK cannot know: --allowed-host, a proxy).
        server.streamable_http_app(stateless_http=True, json_response=True,
                                   max_request_body_size=app.config["OPENSYNC_MAX_BODY"],
                                   transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.manager = server.session_manager
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="opensync-mcp", daemon=True).start()
        started = concurrent.futures.Future()
        asyncio.run_coroutine_threadsafe(self._run(started), self.loop)
        started.result(timeout=10)
        self.wsgi = ASGIMiddleware(self.manager.handle_request, loop=self.loop)

    async def _run(self, started):
        async with self.manager.run():
            started.set_result(None)
            await asyncio.Event().wait()  # for the life of the process (the thread is a daemon)


def _bridge():
    app = current_app._get_current_object()
    with _starting:  # made on the first request, once per app
        if EXTENSION not in app.extensions:
            app.extensions[EXTENSION] = Bridge(app)
    return app.extensions[EXTENSION]


@bp.post("/mcp")
def endpoint():
    """MCP's streamable HTTP: JSON-RPC in a POST, answered as JSON. Stateless, so there is no
    stream to GET and no session to DELETE: both are 405s, as the transport's spec allows."""
    bridge = _bridge()
    request.environ[USER] = g.user_id
    return Response.from_app(bridge.wsgi, request.environ)
