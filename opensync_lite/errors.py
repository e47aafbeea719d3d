"""One error type and the handlers that turn every failure into a JSON body."""

import logging

from flask import jsonify
from peewee import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("opensync_lite")


class ApiError(Exception):
    """A client-facing failure: HTTP status, a message, per-field details, and headers the
    answer carries (``Retry-After`` of a 429)."""

    def __init__(self, status, message, fields=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def error_response(status, message, fields=None):
    body = {"error": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


def _api_error(err):
    response, status = error_response(err.status, err.message, err.fields)
    response.headers.update(err.headers)
    return response, status


def http_error(err):
    # 404, 405, 413, ...: werkzeug's description is plain text fit for a client.
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
