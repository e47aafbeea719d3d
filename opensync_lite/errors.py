"""One error type and the handlers that turn every failure into a JSON body."""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("opensync_lite")


class ApiError(Exception):
    """A client-facing failure: HTTP status, a message, and per-field details."""

    def __init__(self, status, message, fields=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


def error_response(status, message, fields=None):
    body = {"error": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


def _api_error(err):
    return error_response(err.status, err.message, err.fields)


def http_error(err):
    # 404, 405, 413, ...: werkzeug's description is plain text fit for a client.
    response, status = error_response(err.code or 500, err.description or err.name)
    if err.code == 405 and err.valid_methods:
        response.headers["Allow"] = ", ".join(err.valid_methods)
    return response, status


def _unexpected(err):
    # Never a stack trace or SQL in the body; the details go to the server log.
    log.exception("unhandled error")
    return error_response(500, "Internal server error.")


def register(target):
    """Install the handlers on an app or a blueprint."""
    target.register_error_handler(ApiError, _api_error)
    target.register_error_handler(HTTPException, http_error)
    target.register_error_handler(Exception, _unexpected)
