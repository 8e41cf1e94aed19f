"""Twilio's voice webhooks for proxy numbers: bridge an inbound call to the other party, and log how
the bridged leg went. Signed by the carrier (X-Twilio-Signature), like every carrier webhook."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from twilio.twiml.voice_response import VoiceResponse

from ..services import proxy_routing
from .base import runtime
from .webhooks import _verified_carrier

blp = Blueprint("proxy_webhooks", __name__, url_prefix="/webhooks/twilio")

REFUSAL = "Sorry, this number cannot connect your call."
CALL_EVENTS = "initiated ringing answered completed"


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="application/xml")


@blp.post("/voice")
def inbound_call():
    """A call to a proxy number: dial the caller's other party showing the proxy number, or refuse."""
    _verified_carrier()
    form = request.form
    routed = proxy_routing.route_call(
        runtime().db.engine, form.get("CallSid"), form.get("From", ""), form.get("To", "")
    )
    twiml = VoiceResponse()
    if routed is None:
        twiml.say(REFUSAL)
        twiml.hangup()
        return _twiml(twiml)
    route, interaction_id = routed
    # The URL Twilio just reached (with ProxyFix behind a proxy, the public one) reaches us again.
    progress = url_for(".call_status", interaction=interaction_id, _external=True)
    dial = twiml.dial(
        caller_id=route.proxy_number,
        action=progress,
        method="POST",
        answer_on_bridge=True,
        record="record-from-answer" if route.record else None,
        recording_status_callback=progress if route.record else None,
    )
    dial.number(
        route.callee,
        status_callback=progress,
        status_callback_event=CALL_EVENTS,
        status_callback_method="POST",
    )
    return _twiml(twiml)


@blp.post("/proxy-call-status")
def call_status():
    """Progress of a bridged call: the dialled leg's status callbacks, <Dial action>, recordings."""
    _verified_carrier()
    with runtime().db.session() as session:
        proxy_routing.record_call_status(session, request.args.get("interaction"), request.form.to_dict())
    # Also <Dial>'s action: once the other party hangs up, the call ends here.
    return _twiml(VoiceResponse())
