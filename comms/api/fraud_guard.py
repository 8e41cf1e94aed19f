"""The fraud guard's view of an app: countries paused for SMS pumping, conversion per country; admin lift."""

from __future__ import annotations

from flask.views import MethodView

from ..models import App, utcnow
from ..schemas.common import ErrorSchema
from ..schemas.verification import FraudGuardSchema
from ..services import apps, fraud_guard
from .base import Blueprint, admin, caller, runtime, session

blp = Blueprint(
    "fraud_guard", __name__, url_prefix="/v1", description="Fraud guard: countries paused for SMS pumping"
)


def fraud_guard_view(app: App) -> dict:
    settings = apps.verification_settings(app)
    now = utcnow()
    return {
        "enabled": settings["fraud_guard"],
        "min_sends": settings["fraud_guard_min_sends"],
        "min_conversion": settings["fraud_guard_min_conversion"],
        "paused": fraud_guard.pauses(session(), app.id, now),
        "countries": fraud_guard.stats(runtime().redis, app.id, now),
    }


@blp.route("/app/fraud-guard")
class OwnFraudGuard(MethodView):
    @blp.response(200, FraudGuardSchema)
    def get(self):
        """Countries the fraud guard paused for the calling app, and its conversion per country."""
        return fraud_guard_view(caller().app)


@blp.route("/apps/<app_id>/fraud-guard")
class AppFraudGuard(MethodView):
    @blp.response(200, FraudGuardSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, app_id):
        """The fraud guard's view of any app (admin)."""
        admin()
        return fraud_guard_view(apps.get_app(session(), app_id))


@blp.route("/apps/<app_id>/fraud-guard/<country>")
class Pause(MethodView):
    @blp.response(200, FraudGuardSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="The country is not paused for the app")
    def delete(self, app_id, country):
        """Lift a country's pause for an app (admin); its statistics start afresh."""
        who = admin()
        app = apps.get_app(session(), app_id)
        fraud_guard.lift(session(), runtime().redis, app.id, country.upper(), who.key_id, utcnow())
        session().commit()
        return fraud_guard_view(app)
