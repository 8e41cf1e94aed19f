"""The HTTP API: one blueprint per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from ..schemas.common import ErrorSchema
from . import apps, base, errors, health, messages, sandbox, templates, webhooks


class CommsApi(Api):
    ERROR_SCHEMA = ErrorSchema


def register(app: Flask) -> Api:
    api = CommsApi(
        app,
        spec_kwargs={
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key from `comms create-app`",
                    }
                }
            },
            "security": [{"bearer": []}],
        },
    )
    for module in (apps, templates, messages, sandbox):
        api.register_blueprint(module.blp)
    app.register_blueprint(health.blp)
    app.register_blueprint(webhooks.blp)
    errors.register(app)
    app.teardown_appcontext(base.close_session)
    return api
