"""Carrier delivery reports (webhooks or polled) applied to messages, idempotently."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..carriers.base import StatusReport
from ..models import Message
from . import callbacks, status


def apply_message_reports(runtime, carrier_name: str, reports: Sequence[StatusReport]) -> int:
    """Apply reports; duplicates and out-of-order ones are harmless (see comms.services.status).

    A report names our message by ``reference`` when the carrier echoes it (our StatusCallback
    carries it, so a report that overtakes the worker's own record still finds its message);
    otherwise by the carrier's message id. Returns how many reports matched a message.
    """
    if not reports:
        return 0
    with runtime.db.session() as session:
        unreferenced = [r.carrier_message_id for r in reports if not r.reference]
        by_sid = {}
        if unreferenced:
            by_sid = dict(
                session.execute(
                    select(Message.carrier_message_id, Message.id).where(
                        Message.carrier_message_id.in_(unreferenced)
                    )
                ).all()
            )
        transitions = []
        for r in reports:
            message_id = r.reference or by_sid.get(r.carrier_message_id)
            if not message_id:
                continue
            fields = {"carrier": carrier_name, "carrier_message_id": r.carrier_message_id, "price": r.price}
            if r.status in {"undelivered", "failed"}:
                fields |= {
                    "error": "carrier_undelivered" if r.status == "undelivered" else "carrier_failed",
                    "error_code": r.error_code,
                    "error_message": r.error_message,
                }
            transitions.append(
                status.Transition(message_id, r.status, detail=f"{carrier_name} report", fields=fields)
            )
        changes = status.apply(session, transitions)
        planned = callbacks.plan(session, changes)
    runtime.queues.enqueue_callbacks(planned)
    return len(transitions)
