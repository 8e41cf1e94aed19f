"""One error body everywhere: ``{code, status, message, error, errors}``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import CommsError

log = logging.getLogger(__name__)

# Stable ids for the HTTP errors raised by Flask itself rather than by our code.
HTTP_ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def body(code: int, message: str, error: str, errors: dict | None = None):
    return {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": message,
        "error": error,
        "errors": errors or {},
    }


def register(app: Flask) -> None:
    @app.errorhandler(CommsError)
    def comms_error(exc: CommsError):
        response = jsonify(body(exc.status_code, exc.message, exc.error, exc.errors))
        response.status_code = exc.status_code
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(int(exc.retry_after))
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        data = getattr(exc, "data", None) or {}
        response = jsonify(
            body(
                code,
                data.get("message") or exc.description or exc.name,
                HTTP_ERROR_IDS.get(code, "http_error"),
                data.get("errors"),
            )
        )
        response.status_code = code
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        response = jsonify(body(500, InternalServerError.description, "internal_error"))
        response.status_code = 500
        return response
