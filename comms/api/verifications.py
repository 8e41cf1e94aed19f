"""Verifications (login codes): start or resend, check, cancel, read."""

from __future__ import annotations

from flask.views import MethodView

from ..models import Verification
from ..schemas.common import ErrorSchema
from ..schemas.verification import (
    CheckResultSchema,
    CheckVerificationSchema,
    StartVerificationSchema,
    VerificationSchema,
)
from ..services import messages, verifications
from .base import Blueprint, caller, runtime, session

blp = Blueprint(
    "verifications", __name__, url_prefix="/v1/verifications", description="Login codes (verifications)"
)


def verification_view(verification: Verification, send_attempts: list[dict] | None = None) -> dict:
    data = {c.key: getattr(verification, c.key) for c in Verification.__mapper__.column_attrs}
    data.pop("code_hash")
    if send_attempts is None:
        send_attempts = verifications.send_attempts(session(), verification.id)
    return {**data, "valid": verification.status == "approved", "send_attempts": send_attempts}


@blp.route("")
class Verifications(MethodView):
    @blp.arguments(StartVerificationSchema)
    @blp.response(201, VerificationSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Bad input")
    @blp.alt_response(
        403, schema=ErrorSchema, description="country_not_allowed, or country_paused by the fraud guard"
    )
    @blp.alt_response(
        429,
        schema=ErrorSchema,
        description="max_send_attempts, resend_too_soon, rate_limited (client IP), country_limit_reached "
        "or (voice) max_call_attempts; with Retry-After",
    )
    def post(self, data):
        """Send a login code; while one is pending for the number, send the same code again."""
        started = verifications.start(runtime(), session(), caller().app, data)
        session().commit()
        messages.dispatch(runtime().queues, runtime().db.session, started.jobs, kind=started.kind)
        return verification_view(started.verification, started.send_attempts)


@blp.route("/check")
class Check(MethodView):
    @blp.arguments(CheckVerificationSchema)
    @blp.response(200, CheckResultSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="verification_not_found")
    @blp.alt_response(429, schema=ErrorSchema, description="max_check_attempts, with Retry-After")
    def post(self, data):
        """Check a code: ``valid`` is true only for the check that approves; a wrong code stays pending."""
        verification, valid = verifications.check(runtime(), session(), caller().app, data)
        session().commit()
        return {**verification_view(verification, send_attempts=[]), "valid": valid}


@blp.route("/<verification_id>")
class OneVerification(MethodView):
    @blp.response(200, VerificationSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, verification_id):
        """A verification and its send attempts; readable after approval, cancelation or expiry."""
        verification = verifications.get(session(), caller().app.id, verification_id)
        session().commit()
        return verification_view(verification)


@blp.route("/<verification_id>/cancel")
class Cancel(MethodView):
    @blp.response(200, VerificationSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="invalid_state: no longer pending")
    def post(self, verification_id):
        """Cancel a pending verification; its code stops working at once."""
        verification = verifications.cancel(runtime(), session(), caller().app.id, verification_id)
        session().commit()
        return verification_view(verification)
