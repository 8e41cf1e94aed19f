"""comms: a self-hosted communication API (login codes, templated SMS, voice, masked numbers)."""

from __future__ import annotations

import logging

from flask import Flask

from .runtime import Runtime
from .settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the WSGI app. Settings are read here, once; nothing connects until first use."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    runtime = runtime or Runtime(settings)
    app = Flask(__name__)
    app.config.update(
        API_TITLE="comms",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    app.extensions["comms"] = runtime
    if settings.trusted_proxies:
        # Carrier signatures cover the URL the carrier called: behind a proxy, rebuild it from X-Forwarded-*.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import api

    api.register(app)
    return app
