"""One error type and the handlers that turn every failure into a JSON body."""

import logging

from flask import jsonify, request
from peewee import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("opensync_lite")


class ApiError(Exception):
    """A client-facing failure: HTTP status, a message, per-field details, and headers the
    answer carries (``Retry-After`` of a 429)."""

    def __init__(self, status, message, fields=None, headers=None, field_error_count=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        # Set when ``fields`` holds only the first of more errors (schemas.MAX_FIELD_ERRORS).
        self.field_error_count = field_error_count


def error_response(status, message, fields=None, **more):
    body = {"error": message}
    if fields:
        body["fields"] = fields
    body.update((k, v) for k, v in more.items() if v is not None)
    return jsonify(body), status


def _api_error(err):
    response, status = error_response(err.status, err.message, err.fields, fieldErrorCount=err.field_error_count)
    response.headers.update(err.headers)
    return response, status


def _size(limit):
    return f"{limit // 2**20} MiB ({limit} bytes)" if limit % 2**20 == 0 else f"{limit} bytes"


def too_large():
    """A 413 that names the body limit and the setting that moves it."""
    limit = request.max_content_length
    if not limit:
        return error_response(413, "The request body is too large.")
    return error_response(413, f"The request body is over the limit of {_size(limit)}; the server's "
                          "--max-body option (OPENSYNC_MAX_BODY) sets it.", limit=limit, setting="OPENSYNC_MAX_BODY")


def http_error(err):
    # 404, 405, ...: werkzeug's description is plain text fit for a client.
    if err.code == 413:
        return too_large()
    response, status = error_response(err.code or 500, err.description or err.name)
    if err.code == 405 and err.valid_methods:
        response.headers["Allow"] = ", ".join(err.valid_methods)
    return response, status


# How long a client is asked to wait when the database stayed locked past its busy time-out.
RETRY_AFTER_S = 2


def _database_busy(err):
    """SQLite's "database is locked" after the busy time-out: the server is busy, not broken
    (503 with Retry-After, which the sync plugins and scripts can honour); anything else is
    unexpected."""
    text = str(err).lower()
    if "locked" not in text and "busy" not in text:
        return _unexpected(err)
    log.warning("database busy past its time-out: %s", err)
    return _api_error(ApiError(503, "The database is busy; try again shortly.",
                               headers={"Retry-After": str(RETRY_AFTER_S)}))


def _unexpected(err):
    # Never a stack trace or SQL in the body; the details go to the server log.
    log.exception("unhandled error")
    return error_response(500, "Internal server error.")


def register(target):
    """Install the handlers on an app or a blueprint."""
    target.register_error_handler(ApiError, _api_error)
    target.register_error_handler(HTTPException, http_error)
    target.register_error_handler(OperationalError, _database_busy)
    target.register_error_handler(Exception, _unexpected)
