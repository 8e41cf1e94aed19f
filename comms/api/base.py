"""What every blueprint shares: the arguments parser, the request's session and caller, idempotency."""

from __future__ import annotations

from collections.abc import Callable

import flask_smorest
from flask import Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser

from ..errors import Forbidden, MalformedJson, Unauthorized, ValidationFailed
from ..runtime import Runtime
from ..services import apps, idempotency
from ..services.apps import Caller


class Parser(FlaskParser):
    """webargs' parser, speaking the contract: 400 with field errors and a stable ``error`` id."""

    DEFAULT_VALIDATION_STATUS = 400

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise MalformedJson()

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.normalized_messages()
        # Flatten webargs' {"json": {...}} / {"query": {...}} to field → messages.
        flat: dict[str, list[str]] = {}
        for location, fields in messages.items():
            if not isinstance(fields, dict):
                flat[location] = fields if isinstance(fields, list) else [str(fields)]
                continue
            for name, value in fields.items():
                flat[name] = value if isinstance(value, list) else [value]
        if "_schema" in flat:
            flat["_request"] = flat.pop("_schema")
        raise ValidationFailed(errors=flat)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


def runtime() -> Runtime:
    return current_app.extensions["comms"]


def session() -> Session:
    """The request's session; closed (and rolled back if uncommitted) when the request ends."""
    if "db_session" not in g:
        g.db_session = runtime().db.sessionmaker()
    return g.db_session


def close_session(_exc=None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


def caller() -> Caller:
    """Authenticate the request's bearer key (once per request)."""
    if "caller" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized()
        found = apps.authenticate(session(), key.strip())
        if found is None:
            raise Unauthorized("The API key is not valid or was revoked.")
        g.caller = found
    return g.caller


def admin() -> Caller:
    who = caller()
    if not who.is_admin:
        raise Forbidden("This needs an admin key.")
    return who


def idempotent(endpoint: str, produce: Callable[[], tuple[int, dict]]) -> tuple[Response, bool]:
    """Run ``produce`` once per Idempotency-Key and commit; a concurrent duplicate replays the winner's
    response. Returns the response and whether it was replayed."""
    key = request.headers.get("Idempotency-Key")
    body = request.get_json(silent=True)
    app_id = caller().app.id
    ttl = runtime().settings.idempotency_ttl
    try:
        status, response, replayed = idempotency.run(
            session(), app_id=app_id, key=key, endpoint=endpoint, body=body, ttl=ttl, produce=produce
        )
        session().commit()
    except IntegrityError as exc:
        session().rollback()
        if not (key and idempotency.is_conflict(exc)):
            raise
        status, response = idempotency.replay(
            session(), app_id, key, endpoint, idempotency.request_hash(endpoint, body), ttl
        )
        replayed = True
    result = jsonify(response)
    result.status_code = status
    if replayed:
        result.headers["Idempotent-Replayed"] = "true"
    return result, replayed
