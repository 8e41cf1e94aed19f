"""Carrier delivery reports (webhooks or polled) applied to messages, idempotently and in bulk."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ..carriers.base import StatusReport
from ..models import CarrierReport
from . import callbacks, status

log = logging.getLogger(__name__)

KEPT_FIELDS = (
    "carrier_message_id",
    "status",
    "reference",
    "error_code",
    "error_message",
    "duration",
    "price",
)


def store(session: Session, carrier_name: str, report: StatusReport, kind: str = "message") -> None:
    """Keep a webhook's report for the workers to apply: one insert, so the webhook answers at once."""
    data = {k: v for k, v in asdict(report).items() if k in KEPT_FIELDS}
    session.execute(insert(CarrierReport).values(carrier=carrier_name, kind=kind, report=data))


def pump_inbox(runtime, batch: int = 1000) -> int:
    """Apply stored webhook reports, oldest first, a batch per transaction; safe in every worker at once
    (rows are claimed with SKIP LOCKED on PostgreSQL, under SQLite's write lock otherwise)."""
    total = 0
    while True:
        with runtime.db.session() as session:
            claim = select(CarrierReport.id).order_by(CarrierReport.id).limit(batch)
            if session.bind.dialect.name == "postgresql":
                claim = claim.with_for_update(skip_locked=True)
            rows = session.execute(
                delete(CarrierReport)
                .where(CarrierReport.id.in_(claim.scalar_subquery()))
                .returning(CarrierReport.id, CarrierReport.carrier, CarrierReport.kind, CarrierReport.report)
            ).all()
            # RETURNING promises no order, and a call's ringing must apply before its completed.
            by_source: dict[tuple[str, str], list[StatusReport]] = {}
            for _, carrier_name, kind, data in sorted(rows, key=lambda row: row[0]):
                by_source.setdefault((carrier_name, kind), []).append(StatusReport(**data))
            planned = []
            for (carrier_name, kind), found in by_source.items():
                if kind not in status.TRACKS:  # dropped, or it would block the inbox forever
                    log.error("dropped %d %s report(s) of unknown kind %r", len(found), carrier_name, kind)
                    continue
                planned += _apply(session, carrier_name, found, status.TRACKS[kind])
        runtime.queues.enqueue_callbacks(planned)
        total += len(rows)
        if len(rows) < batch:
            return total


def apply_reports(runtime, carrier_name: str, reports: Sequence[StatusReport]) -> int:
    """Apply reports now (the polled sandbox's): a reference starting ``call_`` names a call, any
    other a message. Returns how many there were."""
    if not reports:
        return 0
    calls = [r for r in reports if kind_of(r) == "call"]
    messages = [r for r in reports if kind_of(r) == "message"]
    with runtime.db.session() as session:
        planned = _apply(session, carrier_name, messages, status.MESSAGES)
        planned += _apply(session, carrier_name, calls, status.CALLS)
    runtime.queues.enqueue_callbacks(planned)
    return len(reports)


def kind_of(report: StatusReport) -> str:
    return "call" if (report.reference or "").startswith("call_") else "message"


# What a failed record's ``error`` says, by the status the carrier reported.
REPORTED_ERRORS = {"undelivered": "carrier_undelivered", "failed": "carrier_failed"}


def _apply(
    session: Session, carrier_name: str, reports: Sequence[StatusReport], track: status.Track
) -> list[tuple[str, str, Any]]:
    """Duplicates and out-of-order reports are harmless (see comms.services.status).

    A report names our message or call by ``reference`` when the carrier echoes it (our StatusCallback
    carries it, so a report that overtakes the worker's own record still finds its record); otherwise
    by the carrier's id for it.
    """
    if not reports:
        return []
    carrier_id = track.table.c[track.carrier_id]
    unreferenced = [r.carrier_message_id for r in reports if not r.reference]
    by_sid = {}
    if unreferenced:
        by_sid = dict(
            session.execute(select(carrier_id, track.table.c.id).where(carrier_id.in_(unreferenced))).all()
        )
    transitions = []
    for r in reports:
        record_id = r.reference or by_sid.get(r.carrier_message_id)
        if not record_id or r.status not in track.rank:
            continue
        fields = {"carrier": carrier_name, track.carrier_id: r.carrier_message_id, "price": r.price}
        if r.duration is not None:
            fields["duration"] = r.duration
        if r.status in REPORTED_ERRORS:
            fields |= {
                "error": REPORTED_ERRORS[r.status],
                "error_code": r.error_code,
                "error_message": r.error_message,
            }
        transitions.append(
            status.Transition(record_id, r.status, detail=f"{carrier_name} report", fields=fields)
        )
    return callbacks.plan(session, status.apply(session, transitions, track))
