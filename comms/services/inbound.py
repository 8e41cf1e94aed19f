"""Texts arriving at our numbers: opt-out keywords now; relays for masked numbers build on this."""

from __future__ import annotations

import logging

from ..carriers.base import Carrier
from . import optouts, phone

log = logging.getLogger(__name__)


def handle_sms(runtime, carrier: Carrier, sender: str, recipient: str, body: str) -> str | None:
    """Act on an inbound text; returns the keyword acted on, if any."""
    word = optouts.keyword(body)
    if word is None:
        return None
    with runtime.db.session() as session:
        app_ids = optouts.apps_texting(session, sender, recipient, carrier.default_sender)
        optouts.record(session, app_ids, sender, word)
    log.info("%s from %s for %d app(s)", word, phone.mask(sender), len(app_ids))
    return word
