"""The calling app's own settings, and admin management of every app."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from ..models import App
from ..schemas.app import (
    AdminAppPatchSchema,
    AppPatchSchema,
    AppSchema,
    CreateAppSchema,
    CreatedAppSchema,
    WebhookSecretSchema,
)
from ..schemas.common import ErrorSchema
from ..services import apps
from .base import Blueprint, admin, caller, session

blp = Blueprint("apps", __name__, url_prefix="/v1", description="The calling app and (admin) all apps")


def _view(app: App) -> dict:
    """The app as shown: verification and voice settings with defaults filled in (stored: overrides)."""
    fields = (
        "id",
        "name",
        "status_callback",
        "allowed_countries",
        "allow_free_text",
        "created_at",
        "updated_at",
    )
    return {
        **{f: getattr(app, f) for f in fields},
        "verification": apps.verification_settings(app),
        "voice": apps.voice_settings(app),
    }


@blp.route("/app")
class CurrentApp(MethodView):
    @blp.response(200, AppSchema)
    def get(self):
        """The calling app's settings."""
        return _view(caller().app)

    @blp.arguments(AppPatchSchema)
    @blp.response(200, AppSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    def patch(self, changes):
        """Change the calling app's settings (``allow_free_text`` needs an admin key: /v1/apps/{id})."""
        app = caller().app
        apps.update_app(app, changes)
        session().commit()
        return _view(app)


@blp.route("/app/webhook-secret")
class WebhookSecret(MethodView):
    @blp.response(200, WebhookSecretSchema)
    def post(self):
        """Rotate the secret that signs this app's callbacks; it is shown only in this response."""
        app = caller().app
        app.webhook_secret = apps.new_webhook_secret()
        session().commit()
        return {"webhook_secret": app.webhook_secret}


@blp.route("/apps")
class Apps(MethodView):
    @blp.response(200, AppSchema(many=True))
    def get(self):
        """Every app (admin)."""
        admin()
        return [_view(a) for a in session().scalars(select(App).order_by(App.id))]

    @blp.arguments(CreateAppSchema)
    @blp.response(201, CreatedAppSchema)
    def post(self, data):
        """Create an app and its first API key (admin). The key is shown only in this response."""
        admin()
        app, key = apps.create_app(session(), data["name"], admin=data["admin"])
        session().commit()
        return {**_view(app), "api_key": key}


@blp.route("/apps/<app_id>")
class OneApp(MethodView):
    @blp.response(200, AppSchema)
    def get(self, app_id):
        """One app (admin)."""
        admin()
        return _view(apps.get_app(session(), app_id))

    @blp.arguments(AdminAppPatchSchema)
    @blp.response(200, AppSchema)
    def patch(self, changes, app_id):
        """Change any app's settings, including ``allow_free_text`` (admin)."""
        admin()
        app = apps.update_app(apps.get_app(session(), app_id), changes)
        session().commit()
        return _view(app)
