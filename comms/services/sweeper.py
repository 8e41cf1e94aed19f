"""The outbox sweeper: releases scheduled messages, re-enqueues stranded ones, pumps carrier reports.

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
from sqlalchemy import or_, select, update

from ..models import Message, MessageEvent, new_id, utcnow
from . import callbacks, reports, status

log = logging.getLogger(__name__)

LIVE_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
BATCH = 2000
# After this many claims a message is given up on: something about it keeps killing its job.
MAX_ATTEMPTS = 20


def sweep(runtime) -> dict[str, int]:
    """One pass; returns counts for logs and tests."""
    counts = {
        "released": release_scheduled(runtime),
        "requeued": requeue_stranded(runtime),
        "reports": pump_reports(runtime),
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
        jobs = _plan_jobs(session, [c.message for c in changes], runtime.settings.batch_chunk_size)
        planned = callbacks.plan(session, changes)
    runtime.queues.enqueue_delivery(jobs)
    runtime.queues.enqueue_callbacks(planned)
    return len(changes)


def requeue_stranded(runtime) -> int:
    settings = runtime.settings
    now = utcnow()
    table = Message.__table__
    stale_claim = now - timedelta(seconds=settings.claim_timeout)
    quiet = now - timedelta(seconds=settings.requeue_after)
    with runtime.db.session() as session:
        rows = [
            dict(r._mapping)
            for r in session.execute(
                select(
                    table.c.id,
                    table.c.app_id,
                    table.c.job_id,
                    table.c.queue,
                    table.c.status,
                    table.c.claimed_at,
                    table.c.attempts,
                    table.c.to,
                    table.c.client_ref,
                    table.c.status_callback,
                )
                .where(
                    table.c.status.in_(("queued", "sending")),
                    table.c.due_at <= now,
                    or_(table.c.enqueued_at.is_(None), table.c.enqueued_at < quiet),
                    or_(table.c.claimed_at.is_(None), table.c.claimed_at < stale_claim),
                )
                .limit(BATCH)
            )
        ]
        if not rows:
            return 0
        live = _live_jobs(runtime, {r["job_id"] for r in rows if r["job_id"]})
        stranded, still_moving, abandoned = [], [], []
        for row in rows:
            if row["attempts"] >= MAX_ATTEMPTS:
                abandoned.append(row)
            elif row["job_id"] in live and not (row["status"] == "sending" and row["claimed_at"]):
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
        )
        jobs = _plan_jobs(session, stranded, settings.batch_chunk_size)
        if stranded:
            session.add_all(
                MessageEvent(
                    message_id=r["id"], status=r["status"], at=now, detail="re-enqueued: its job was lost"
                )
                for r in stranded
            )
        planned = callbacks.plan(session, changes)
    runtime.queues.enqueue_delivery(jobs)
    runtime.queues.enqueue_callbacks(planned)
    if stranded:
        log.warning("re-enqueued %d stranded message(s)", len(stranded))
    return len(stranded)


def pump_reports(runtime) -> int:
    """Apply delivery reports from carriers that are polled (the sandbox) rather than call back."""
    return sum(
        reports.apply_message_reports(runtime, carrier.name, carrier.poll_reports())
        for carrier in runtime.carriers.values()
    )


def _plan_jobs(session, rows: list[dict[str, Any]], chunk_size: int) -> list[tuple[str, str, list[str]]]:
    """New delivery jobs for rows, chunked per queue; records each message's new job id."""
    now = utcnow()
    by_queue: dict[str, list[str]] = {}
    for row in rows:
        by_queue.setdefault(row["queue"], []).append(row["id"])
    jobs = []
    for queue, ids in by_queue.items():
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            job_id = f"deliver-{new_id('r')}"
            jobs.append((queue, job_id, chunk))
            session.execute(
                update(Message).where(Message.id.in_(chunk)).values(job_id=job_id, enqueued_at=now)
            )
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
