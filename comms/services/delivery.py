"""Handing claimed messages to carriers, many at once, and recording what happened.

One delivery job carries one message (a single send or a login code) or a chunk of a batch.
Messages are claimed with one conditional UPDATE, so a job that runs twice (RQ retry, sweeper
re-enqueue after a lost job) never sends a message another run has already handed over; then all
of them are handed to carriers concurrently on the worker's thread pool, and the results are
written back in a handful of statements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, update
from sqlalchemy.orm import Session

from ..carriers.base import (
    Carrier,
    CarrierError,
    CarrierPermanentError,
    CarrierTransientError,
    OutboundSms,
    SendResult,
)
from ..models import Message, MessageEvent, utcnow
from . import callbacks, secret_bodies, status
from .phone import mask

log = logging.getLogger(__name__)


class RetryLater(Exception):  # noqa: N818 - reads as what it asks RQ to do
    """Some messages of the job failed transiently; RQ's Retry runs the job again after a pause."""


@dataclass(frozen=True)
class Outcome:
    result: SendResult | None = None
    error: CarrierError | None = None
    carrier: str | None = None


def claim(session: Session, message_ids: list[str], claim_timeout: float) -> list[dict[str, Any]]:
    """Mark due messages ``sending`` and return them; a message another worker holds is skipped.

    A ``sending`` message whose claim is older than ``claim_timeout`` belonged to a worker that died
    mid-delivery (or to a transient failure awaiting retry, whose claim is cleared), so it is taken again.
    """
    now = utcnow()
    table = Message.__table__
    stale = now - timedelta(seconds=claim_timeout)
    stmt = (
        update(table)
        .where(
            table.c.id.in_(message_ids),
            table.c.due_at <= now,
            or_(
                table.c.status == "queued",
                and_(
                    table.c.status == "sending", or_(table.c.claimed_at.is_(None), table.c.claimed_at < stale)
                ),
            ),
        )
        .values(status="sending", claimed_at=now, attempts=table.c.attempts + 1, updated_at=now)
        .returning(table)
    )
    rows = [dict(row._mapping) for row in session.execute(stmt)]
    if rows:
        session.execute(
            insert(MessageEvent),
            [
                {"message_id": r["id"], "status": "sending", "at": now, "detail": f"attempt {r['attempts']}"}
                for r in rows
            ],
        )
    return rows


NO_ROUTE_UP = "no_route_available"


def hand_off(runtime, row: dict[str, Any], down: set[str]) -> Outcome:
    """Hand one claimed message to the first healthy route that takes it (see :func:`through_routes`)."""
    body = row["body"]
    if row["purpose"] == "verification":
        body = secret_bodies.load(runtime.redis, row["id"])
        if body is None:
            return Outcome(error=secret_expired())

    def send(carrier: Carrier) -> SendResult:
        sender = row["from"] or carrier.default_sender
        sms = OutboundSms(reference=row["id"], to=row["to"], from_=sender, body=body, app_id=row["app_id"])
        mps = carrier.sender_mps(sender)
        if mps:
            runtime.pacer.wait(carrier.name, sender or "", mps)
        return carrier.send_sms(sms)

    return through_routes(runtime, row, down, send)


def secret_expired() -> CarrierPermanentError:
    """A login code's text left Redis before it could go: the app asks for a new code."""
    return CarrierPermanentError(None, "the code expired before it could be sent", "secret_expired")


def through_routes(
    runtime, row: dict[str, Any], down: set[str], send: Callable[[Carrier], SendResult]
) -> Outcome:
    """Try the number's healthy routes in order with ``send``; a transient failure moves on to the next.

    ``down`` holds the carriers in their cool-down, shared by the job's threads: a carrier that trips
    its circuit here is added so the job's other messages skip it at once.
    """
    routes = runtime.router.candidates(row["to"])
    if not routes:
        return Outcome(
            error=CarrierPermanentError(None, "no route is configured for this number", "no_route")
        )
    outcome = Outcome(error=CarrierTransientError(None, "every route is down", NO_ROUTE_UP))
    for carrier in routes:
        if carrier.name in down:
            continue
        try:
            return Outcome(result=send(carrier), carrier=carrier.name)
        except CarrierPermanentError as exc:
            return Outcome(error=exc, carrier=carrier.name)
        except CarrierTransientError as exc:
            log.warning(
                "carrier %s: transient failure for %s to %s: %s",
                carrier.name,
                row["id"],
                mask(row["to"]),
                exc,
            )
            if runtime.health.failed(carrier.name):
                down.add(carrier.name)
            outcome = Outcome(error=exc, carrier=carrier.name)
    return outcome


def deliver(runtime, message_ids: list[str], *, last_attempt: bool) -> None:
    """Deliver the given messages; raise RetryLater when some should be tried again."""
    with runtime.db.session() as session:
        rows = claim(session, message_ids, runtime.settings.claim_timeout)
    if not rows:
        return
    # A first claim moved queued → sending: that is a status change the app hears about.
    first = [
        status.Change(record=r, status="sending", at=r["claimed_at"]) for r in rows if r["attempts"] == 1
    ]
    settle(
        runtime, rows, hand_off, _transition, last_attempt=last_attempt, track=status.MESSAGES, first=first
    )


def settle(
    runtime,
    rows: list[dict[str, Any]],
    hand_off: Callable[[Any, dict[str, Any], set[str]], Outcome],
    transition: Callable[[dict[str, Any], Outcome, bool], status.Transition],
    *,
    last_attempt: bool,
    track: status.Track,
    first: Sequence[status.Change] = (),
) -> None:
    """Hand claimed records over concurrently, record what happened and plan the status callbacks.

    Raises:
        RetryLater: some records failed transiently and wait (in the track's waiting status) for a retry.
    """
    down = runtime.health.down(runtime.carriers)
    outcomes = list(runtime.executor.map(lambda r: hand_off(runtime, r, down), rows))
    runtime.health.succeeded(o.carrier for o in outcomes if o.result is not None)
    transitions = [
        transition(row, outcome, last_attempt) for row, outcome in zip(rows, outcomes, strict=True)
    ]
    with runtime.db.session() as session:
        changes = status.apply(session, transitions, track)
        planned = callbacks.plan(session, [*first, *changes])
    runtime.queues.enqueue_callbacks(planned)
    retrying = sum(t.status in track.waiting for t in transitions)
    if retrying and not last_attempt:
        raise RetryLater(f"{retrying} of {len(rows)} {track.kind}(s) failed transiently")


def _transition(row: dict[str, Any], outcome: Outcome, last_attempt: bool) -> status.Transition:
    if outcome.result is not None:
        r = outcome.result
        return status.Transition(
            row["id"],
            "sent",
            detail=f"accepted by {outcome.carrier}",
            fields={
                "carrier": outcome.carrier,
                "carrier_message_id": r.carrier_message_id,
                "price": r.price,
                "claimed_at": None,
                "error": None,
                "error_code": None,
                "error_message": None,
            },
        )
    return failure(row, outcome, last_attempt, waiting="sending")


def failure(row: dict[str, Any], outcome: Outcome, last_attempt: bool, *, waiting: str) -> status.Transition:
    """The transition for a hand-off that failed: ``failed`` for good, or back to ``waiting`` for a retry."""
    error = outcome.error
    fields = {
        "carrier": outcome.carrier,
        "error": error.error,
        "error_code": error.code,
        "error_message": error.message[:500],
    }
    if error.error == NO_ROUTE_UP:
        # Every carrier is in its cool-down: the record waits (the sweeper re-enqueues it once this
        # job's retries are spent) and the wait does not count against its attempts.
        return status.Transition(
            row["id"],
            waiting,
            repeatable=True,
            detail="every route is down; waiting for a carrier to recover",
            fields={**fields, "claimed_at": None, "attempts": row["attempts"] - 1},
        )
    if isinstance(error, CarrierPermanentError):
        return status.Transition(
            row["id"], "failed", detail=f"{outcome.carrier or 'no carrier'}: {error}", fields=fields
        )
    if last_attempt:
        return status.Transition(
            row["id"], "failed", detail=f"{outcome.carrier}: {error} (retries exhausted)", fields=fields
        )
    # Clearing the claim lets RQ's retry of this job take the record again.
    return status.Transition(
        row["id"],
        waiting,
        repeatable=True,
        detail=f"{outcome.carrier}: {error}; will retry",
        fields={**fields, "claimed_at": None},
    )
