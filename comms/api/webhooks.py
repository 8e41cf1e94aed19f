"""Carrier webhooks: no API key, the carrier's own signature instead."""

from __future__ import annotations

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from ..carriers.twilio import TwilioCarrier
from ..errors import InvalidSignature, ValidationFailed
from ..services import inbound, reports
from .base import runtime

blp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")


def _verified_carrier() -> TwilioCarrier:
    """The configured Twilio account whose auth token signed this request; 403 when none did."""
    signature = request.headers.get("X-Twilio-Signature")
    form = request.form.to_dict()
    for carrier in runtime().carriers.values():
        if isinstance(carrier, TwilioCarrier) and carrier.verify_request(request.url, form, signature):
            return carrier
    raise InvalidSignature()


def _params() -> dict[str, str]:
    # Our StatusCallback URLs carry ``reference`` in the query string; the carrier's fields are the form.
    return {**request.args.to_dict(), **request.form.to_dict()}


def _parse(parse):
    try:
        return parse(_params())
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


@blp.post("/message-status")
def message_status():
    carrier = _verified_carrier()
    report = _parse(carrier.parse_message_status)
    with runtime().db.session() as session:
        reports.store(session, carrier.name, report)
    return "", 204


@blp.post("/call-status")
def call_status():
    carrier = _verified_carrier()
    report = _parse(carrier.parse_call_status)
    with runtime().db.session() as session:
        reports.store(session, carrier.name, report, kind="call")
    return "", 204


@blp.post("/sms")
def inbound_sms():
    carrier = _verified_carrier()
    form = request.form
    inbound.handle_sms(
        runtime(),
        carrier,
        form.get("From", ""),
        form.get("To", ""),
        form.get("Body", ""),
        sid=form.get("MessageSid"),
    )
    return Response(str(MessagingResponse()), mimetype="application/xml")
