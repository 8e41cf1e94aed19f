"""The HTTP API: one blueprint per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from ..schemas.common import ErrorSchema
from . import (
    apps,
    base,
    bindings,
    calls,
    errors,
    fraud_guard,
    health,
    messages,
    numbers,
    proxy_webhooks,
    sandbox,
    templates,
    verifications,
    webhooks,
)


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
    for module in (apps, templates, messages, calls, sandbox, verifications, fraud_guard, numbers, bindings):
        api.register_blueprint(module.blp)
    app.register_blueprint(health.blp)
    app.register_blueprint(webhooks.blp)
    app.register_blueprint(proxy_webhooks.blp)
    errors.register(app)
    app.teardown_appcontext(base.close_session)
    return api
