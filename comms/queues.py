"""The RQ queues comms uses, and enqueueing delivery jobs after a commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from .settings import Settings

log = logging.getLogger(__name__)

# Workers listen in this order, so login codes always go before single sends, and those before bulk.
PRIORITY = ("verify", "default", "bulk", "callbacks")
# The job function that delivers each kind of record.
DELIVERY_JOBS = {"message": "workers.jobs.deliver", "call": "workers.jobs.deliver_calls"}


class Queues:
    """Named RQ queues (JSON-serialised: jobs carry ids, never pickled objects)."""

    def __init__(self, connection: redis.Redis, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._queues = {
            name: Queue(f"{settings.queue_prefix}-{name}", connection=connection, serializer=JSONSerializer)
            for name in PRIORITY
        }

    def __getitem__(self, name: str) -> Queue:
        return self._queues[name]

    def in_priority_order(self, names: Sequence[str] | None = None) -> list[Queue]:
        return [self._queues[n] for n in (names or PRIORITY)]

    def delivery_retry(self) -> Retry:
        intervals = list(self.settings.delivery_retries)
        return Retry(max=len(intervals), interval=intervals)

    def enqueue_callbacks(self, planned: Sequence[tuple[str, str, dict]]) -> None:
        """Enqueue status callbacks ``(app_id, url, payload)``, retried with backoff on failure."""
        if not planned:
            return
        intervals = list(self.settings.webhook_retries)
        data = [
            Queue.prepare_data(
                "workers.jobs.post_callback",
                args=(app_id, url, payload),
                retry=Retry(max=len(intervals), interval=intervals),
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
                description=f"callback {payload.get('id')}",
            )
            for app_id, url, payload in planned
        ]
        with self.connection.pipeline() as pipe:
            self._queues["callbacks"].enqueue_many(data, pipeline=pipe)
            pipe.execute()

    def enqueue_delivery(self, jobs: Sequence[tuple[str, str, list[str]]], kind: str = "message") -> bool:
        """Enqueue ``(queue, job_id, record_ids)`` delivery jobs of messages (or calls) in one pipeline.

        Returns False (and logs) when Redis is unreachable: the records are already committed,
        and the worker's sweeper enqueues them once Redis is back.
        """
        function = DELIVERY_JOBS[kind]
        by_queue: dict[str, list] = {}
        for queue_name, job_id, record_ids in jobs:
            by_queue.setdefault(queue_name, []).append(
                Queue.prepare_data(
                    function,
                    args=(record_ids,),
                    job_id=job_id,
                    retry=self.delivery_retry(),
                    result_ttl=0,
                    failure_ttl=7 * 24 * 3600,
                    description=f"deliver {len(record_ids)} {kind}(s)",
                )
            )
        try:
            with self.connection.pipeline() as pipe:
                for queue_name, data in by_queue.items():
                    self._queues[queue_name].enqueue_many(data, pipeline=pipe)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("enqueue failed, leaving %d job(s) to the sweeper: %s", len(jobs), exc)
            return False
        return True

    def enqueue_call_delivery(self, jobs: Sequence[tuple[str, str, list[str]]]) -> bool:
        """Enqueue ``(queue, job_id, call_ids)`` call jobs; False when Redis is unreachable."""
        return self.enqueue_delivery(jobs, kind="call")
