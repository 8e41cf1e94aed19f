"""Placing claimed calls with carriers, concurrently, and recording what happened.

The same shape as text delivery (:mod:`comms.services.delivery`): one conditional UPDATE claims the
calls, so a job that runs twice never dials a number twice; the claimed calls go to carriers on the
worker's thread pool, along the number's routes with failover; the results are written in bulk.
A claimed call stays ``queued`` (Twilio's first status) until a carrier takes it, which makes it
``initiated``; the carrier's progress reports (ringing, in-progress, completed …) follow by webhook
or poll. Calls are paced per carrier account (``cps``: Twilio allows 1 call a second by default).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ..carriers.base import Carrier, OutboundCall, SendResult
from ..models import Call, utcnow
from . import delivery, secret_bodies, status
from .delivery import Outcome

# The pacing key of a carrier's calls (senders of texts are phone numbers, so it cannot clash).
PACE_KEY = "calls"


def claim(session: Session, call_ids: list[str], claim_timeout: float) -> list[dict[str, Any]]:
    """Take the queued calls no live worker holds (a claim older than ``claim_timeout`` is a dead one's)."""
    now = utcnow()
    table = Call.__table__
    stale = now - timedelta(seconds=claim_timeout)
    stmt = (
        update(table)
        .where(
            table.c.id.in_(call_ids),
            table.c.status == "queued",
            or_(table.c.claimed_at.is_(None), table.c.claimed_at < stale),
        )
        .values(claimed_at=now, attempts=table.c.attempts + 1, updated_at=now)
        .returning(table)
    )
    return [dict(row._mapping) for row in session.execute(stmt)]


def hand_off(runtime, row: dict[str, Any], down: set[str]) -> Outcome:
    """Place one claimed call with the first healthy route that takes it."""
    text = row["text"]
    if row["purpose"] == "verification":
        text = secret_bodies.load(runtime.redis, row["id"])
        if text is None:
            return Outcome(error=delivery.secret_expired())

    def place(carrier: Carrier) -> SendResult:
        call = OutboundCall(
            reference=row["id"],
            to=row["to"],
            from_=row["from"] or carrier.default_sender,
            text=text,
            voice=row["voice"],
            language=row["language"],
            loop=row["repeat"],
            app_id=row["app_id"],
            machine_detection=row["machine_detection"],
        )
        cps = carrier.calls_per_second()
        if cps:
            runtime.pacer.wait(carrier.name, PACE_KEY, cps)
        return carrier.place_call(call)

    return delivery.through_routes(runtime, row, down, place)


def deliver(runtime, call_ids: list[str], *, last_attempt: bool) -> None:
    """Place the given calls; raise RetryLater when some should be tried again."""
    with runtime.db.session() as session:
        rows = claim(session, call_ids, runtime.settings.claim_timeout)
    if rows:
        delivery.settle(runtime, rows, hand_off, _transition, last_attempt=last_attempt, track=status.CALLS)


def _transition(row: dict[str, Any], outcome: Outcome, last_attempt: bool) -> status.Transition:
    if outcome.result is None:
        return delivery.failure(row, outcome, last_attempt, waiting="queued")
    return status.Transition(
        row["id"],
        "initiated",
        detail=f"placed by {outcome.carrier}",
        fields={
            "carrier": outcome.carrier,
            "carrier_call_id": outcome.result.carrier_message_id,
            "price": outcome.result.price,
            "claimed_at": None,
            "error": None,
            "error_code": None,
            "error_message": None,
        },
    )
