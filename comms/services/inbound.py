"""Texts arriving at our numbers: relays through masked numbers first, then opt-out keywords."""

from __future__ import annotations

import logging

from ..carriers.base import Carrier
from . import optouts, phone, proxy_routing

log = logging.getLogger(__name__)


def handle_sms(
    runtime, carrier: Carrier, sender: str, recipient: str, body: str, sid: str | None = None
) -> str | None:
    """Act on an inbound text; returns the keyword acted on (``relay`` for a relayed text), if any.

    ``sid`` is the carrier's id of the text (Twilio's MessageSid): a repeated webhook relays nothing twice.
    """
    # A party of a binding talks to the other party, keywords included: their STOP is for the person.
    if proxy_routing.relay_sms(runtime, sender, recipient, body, sid):
        return "relay"
    word = optouts.keyword(body)
    if word is None:
        return None
    with runtime.db.session() as session:
        app_ids = optouts.apps_texting(session, sender, recipient, carrier.default_sender)
        optouts.record(session, app_ids, sender, word)
    log.info("%s from %s for %d app(s)", word, phone.mask(sender), len(app_ids))
    return word
