"""The outbox sweeper: releases scheduled messages, re-enqueues stranded messages and calls, pumps reports.

The database is the outbox. A message is stranded when it should be moving but no live RQ job
carries it: Redis was down when the API accepted it, Redis restarted and lost its queues, or the
worker holding it was killed. The sweeper finds those by their rows, so nothing accepted is lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import insert, or_, select, update

from ..models import Message, new_id, utcnow
from . import bindings, callbacks, reports, status

log = logging.getLogger(__name__)

LIVE_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
BATCH = 2000
# After this many claims a message is given up on: something about it keeps killing its job.
MAX_ATTEMPTS = 20


def sweep(runtime) -> dict[str, int]:
    """One pass of everything; returns counts for logs and tests."""
    counts = {**sweep_outbox(runtime), "reports": pump_reports(runtime)}
    return counts


def sweep_outbox(runtime) -> dict[str, int]:
    """Release due scheduled messages, re-enqueue stranded messages and calls, and mark bindings whose
    time is up as expired (one sweeper at a time)."""
    counts = {
        "released": release_scheduled(runtime),
        "requeued": requeue_stranded(runtime) + requeue_stranded(runtime, status.CALLS),
        "expired_bindings": bindings.expire_due(runtime),
    }
    if any(counts.values()):
        log.info("sweep: %s", counts)
    return counts


def release_scheduled(runtime) -> int:
    """Scheduled messages whose time has come become queued and go to the queue."""
    now = utcnow()
    table = Message.__table__
    with runtime.db.session() as session:
        ids = list(
            session.scalars(
                select(table.c.id)
                .where(table.c.status == "scheduled", table.c.due_at <= now)
                .order_by(table.c.due_at)
                .limit(BATCH)
            )
        )
        if not ids:
            return 0
        transitions = [status.Transition(i, "queued", detail="scheduled time reached") for i in ids]
        changes = status.apply(session, transitions)
        jobs = _plan_jobs(session, [c.record for c in changes], runtime.settings.batch_chunk_size)
        planned = callbacks.plan(session, changes)
    runtime.queues.enqueue_delivery(jobs)
    runtime.queues.enqueue_callbacks(planned)
    return len(changes)


def requeue_stranded(runtime, track: status.Track = status.MESSAGES) -> int:
    """Re-enqueue messages (or calls) that wait for a worker but whose job Redis no longer knows."""
    settings = runtime.settings
    now = utcnow()
    table = track.table
    stale_claim = now - timedelta(seconds=settings.claim_timeout)
    quiet = now - timedelta(seconds=settings.requeue_after)
    columns = ("id", "app_id", "job_id", "queue", "status", "claimed_at", "attempts")
    columns += ("to", "client_ref", "status_callback")  # what a status callback needs
    conditions = [
        table.c.status.in_(track.waiting),
        or_(table.c.enqueued_at.is_(None), table.c.enqueued_at < quiet),
        or_(table.c.claimed_at.is_(None), table.c.claimed_at < stale_claim),
    ]
    if "due_at" in table.c:  # scheduled messages wait for release_scheduled, not for a worker
        conditions.append(table.c.due_at <= now)
    with runtime.db.session() as session:
        rows = [
            dict(r._mapping)
            for r in session.execute(select(*(table.c[c] for c in columns)).where(*conditions).limit(BATCH))
        ]
        if not rows:
            return 0
        live = _live_jobs(runtime, {r["job_id"] for r in rows if r["job_id"]})
        stranded, still_moving, abandoned = [], [], []
        for row in rows:
            if row["attempts"] >= MAX_ATTEMPTS:
                abandoned.append(row)
            elif row["job_id"] in live and not row["claimed_at"]:
                # (a claim that is still set here is stale: its worker died holding the record)
                still_moving.append(row["id"])
            else:
                stranded.append(row)
        if still_moving:  # look again after another quiet period
            session.execute(update(table).where(table.c.id.in_(still_moving)).values(enqueued_at=now))
        changes = status.apply(
            session,
            [
                status.Transition(
                    r["id"],
                    "failed",
                    detail=f"given up after {r['attempts']} attempts",
                    fields={"error": "delivery_abandoned", "error_message": "Too many failed attempts."},
                )
                for r in abandoned
            ],
            track,
        )
        jobs = _plan_jobs(session, stranded, settings.batch_chunk_size, track)
        if stranded:
            session.execute(
                insert(track.events),
                [
                    {
                        track.key: r["id"],
                        "status": r["status"],
                        "at": now,
                        "detail": "re-enqueued: its job was lost",
                    }
                    for r in stranded
                ],
            )
        planned = callbacks.plan(session, changes)
    runtime.queues.enqueue_delivery(jobs, kind=track.kind)
    runtime.queues.enqueue_callbacks(planned)
    if stranded:
        log.warning("re-enqueued %d stranded %s(s)", len(stranded), track.kind)
    return len(stranded)


def pump_reports(runtime, batch: int = 1000) -> int:
    """Apply webhook reports stored by the API, and due reports of polled carriers (the sandbox).

    Claims are atomic, so every worker may pump at once; each drains what is due, a batch at a time.
    """
    total = reports.pump_inbox(runtime, batch)
    for carrier in runtime.carriers.values():
        while True:
            due = carrier.poll_reports(batch)
            total += reports.apply_reports(runtime, carrier.name, due)
            if len(due) < batch:
                break
    return total


def _plan_jobs(
    session, rows: list[dict[str, Any]], chunk_size: int, track: status.Track = status.MESSAGES
) -> list[tuple[str, str, list[str]]]:
    """New delivery jobs for rows, chunked per queue; records each record's new job id."""
    now = utcnow()
    table = track.table
    by_queue: dict[str, list[str]] = {}
    for row in rows:
        by_queue.setdefault(row["queue"], []).append(row["id"])
    jobs = []
    for queue, ids in by_queue.items():
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            job_id = f"deliver-{new_id('r')}"
            jobs.append((queue, job_id, chunk))
            session.execute(update(table).where(table.c.id.in_(chunk)).values(job_id=job_id, enqueued_at=now))
    return jobs


def _live_jobs(runtime, job_ids: set[str]) -> set[str]:
    if not job_ids:
        return set()
    ids = sorted(job_ids)
    jobs = Job.fetch_many(ids, connection=runtime.redis, serializer=runtime.queues["default"].serializer)
    live = set()
    for job_id, job in zip(ids, jobs, strict=True):
        try:
            if job is not None and job.get_status(refresh=False) in LIVE_JOB_STATUSES:
                live.add(job_id)
        except NoSuchJobError:
            continue
    return live
