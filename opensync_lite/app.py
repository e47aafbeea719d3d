"""The app factory and ``init_app`` for embedding: config → database → blueprints → errors."""

import importlib.util
import logging
import time

from flask import Blueprint, Flask, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import auth, config, db, errors, ingest

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "86400",
}


request_log = logging.getLogger("opensync_lite.requests")


def _start_clock():
    g.started = time.perf_counter()


def _log_request(response):
    """One line per request, so a user can see the plugin reach the server: never the query
    string, a key or a body."""
    if request_log.isEnabledFor(logging.INFO):
        ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        request_log.info("%s %s %s %.1fms user=%s", request.method, request.path, response.status_code, ms,
                         g.get("user_id", "-"))
    return response


def _preflight():
    if request.method == "OPTIONS":  # CORS preflight, on any path
        return "", 204


def _add_cors(response):
    response.headers.update(CORS_HEADERS)
    return response


def _add_cors_outside_blueprint(response):
    # The blueprint's own routes already have them; this covers unknown paths (404, 405).
    return response if request.blueprint else _add_cors(response)


JSON_PATHS = {"api", "sync", "health", "openapi.json", "v1", "mcp", "opensync"}  # the first path segments of the JSON routes


def _unmatched(err):
    """A request no route took (404, 405): the dashboard's error page for a dashboard route
    sent the wrong method, or for a browser asking for a page at an unknown path; else JSON."""
    if request.blueprint is None and (_dashboard_route(err) or _page_wanted()):
        from . import dashboard

        return dashboard.error_page(err)
    return errors.http_error(err)


def _dashboard_route(err):
    if not isinstance(err, MethodNotAllowed) or not err.valid_methods:
        return False
    try:
        endpoint, _ = current_app.create_url_adapter(request).match(method=err.valid_methods[0])
    except HTTPException:
        return False
    return endpoint.startswith("dashboard.")


def _page_wanted():
    first = request.path.lstrip("/").split("/", 1)[0]
    return first not in JSON_PATHS and request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _health():
    return {"status": "ok", "timestamp": int(time.time() * 1000)}


def _openapi():
    # The paths are relative to where the blueprint is mounted (a host app may use a prefix).
    root = url_for("opensync.health")[: -len("/health")] or "/"
    documents = current_app.extensions.setdefault("opensync.openapi", {})
    if root not in documents:
        from . import openapi

        documents[root] = openapi.build(root)
    return documents[root]


def _blueprint():
    """The whole service as one blueprint: the sync and read blueprints nest inside it and
    share its CORS, connection and error handling, also when mounted under a prefix."""
    from . import api, opensync_api, stats, sync_messages, sync_sessions
    from .intake import otlp

    bp = Blueprint("opensync", __name__)
    bp.before_request(_preflight)
    bp.before_request(db.prepare_request)
    bp.url_value_preprocessor(db.ids_in_range)
    bp.after_request(_add_cors)
    errors.register(bp)
    bp.add_url_rule("/health", "health", _health, methods=["GET"])
    bp.add_url_rule("/openapi.json", "openapi", _openapi, methods=["GET"])
    # opensync_api.bp: OpenSync's own routes and shapes, under /opensync (see its docstring).
    for child in (sync_sessions.bp, sync_messages.bp, api.bp, stats.bp, otlp.bp, opensync_api.bp, *_extras()):
        bp.register_blueprint(child)
    return bp


def _extras():
    """The blueprints of the optional extras that are installed: /mcp with `mcp`."""
    if importlib.util.find_spec("mcp") and importlib.util.find_spec("a2wsgi"):
        from . import mcp_http

        return [mcp_http.bp]
    return []


def init_app(app, url_prefix=None, routes=True):
    """Mount opensync-lite on ``app`` (under ``url_prefix``), with the database named by
    ``app.config["OPENSYNC_DB"]``; missing settings take their defaults. Without ``routes``
    only the database is set up: a command that serves nothing (an import) starts in half
    the time without the API's, the dashboard's and their libraries' modules."""
    for key, value in config.defaults().items():
        app.config.setdefault(key, value)
    database = db.open_database(app.config["OPENSYNC_DB"], app.config["OPENSYNC_DURABILITY"])
    app.extensions[db.EXTENSION] = database
    db.migrate(database)
    with app.app_context(), database.connection_context():
        ingest.index_files_once()
        ingest.index_part_texts()
        auth.get_or_create_user(config.DEFAULT_USER)
    if routes:
        from . import dashboard

        app.register_blueprint(_blueprint(), url_prefix=url_prefix)
        app.register_blueprint(dashboard.bp, url_prefix=url_prefix)
    return app


def create_app(test_config=None, routes=True):
    """The standalone server: opensync-lite at the root, JSON errors and CORS on every path."""
    app = Flask(__name__)
    app.config.from_mapping(config.defaults())
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True)
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False
    init_app(app, routes=routes)
    # Paths outside the blueprints (unknown routes) answer with CORS headers, JSON under the API's paths.
    app.before_request(_start_clock)
    app.before_request(_preflight)
    app.after_request(_add_cors_outside_blueprint)
    app.after_request(_log_request)
    errors.register(app)
    app.register_error_handler(HTTPException, _unmatched)
    return app
