"""The worker process: an RQ worker on comms' queues, plus the outbox sweeper on a side thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from comms.queues import PRIORITY
from comms.runtime import Runtime
from comms.services import sweeper

from .context import install

log = logging.getLogger(__name__)


class Sweeper(threading.Thread):
    """Runs :func:`comms.services.sweeper.sweep` every ``interval`` seconds until stopped.

    A Redis lock keeps one sweep at a time across all workers; a failed sweep (Redis or the
    database briefly away) is logged and tried again on the next tick.
    """

    def __init__(self, runtime: Runtime, interval: float):
        super().__init__(name="comms-sweeper", daemon=True)
        self.runtime = runtime
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        try:
            sweeper.pump_reports(self.runtime)
            lock = self.runtime.redis.lock(
                "comms:sweeper", timeout=max(30, self.interval * 10), blocking=False
            )
            if lock.acquire():
                try:
                    sweeper.sweep_outbox(self.runtime)
                finally:
                    lock.release()
        except Exception:  # noqa: BLE001 - keep sweeping; the next tick retries
            log.exception("sweep failed")

    def stop(self) -> None:
        self.stopped.set()


def make_worker(runtime: Runtime, queues: Sequence[str] | None = None) -> SimpleWorker:
    """An RQ worker that runs jobs in its own process: the hand-off thread pool, the database pool and
    the carrier HTTP sessions stay warm across jobs, which forking a work-horse per job would lose."""
    install(runtime)
    return SimpleWorker(
        runtime.queues.in_priority_order(queues or PRIORITY),
        connection=runtime.redis,
        serializer=JSONSerializer,
    )


def run(
    runtime: Runtime, queues: Sequence[str] | None = None, *, burst: bool = False, sweep: bool = True
) -> None:
    worker = make_worker(runtime, queues)
    sweeper_thread = Sweeper(runtime, runtime.settings.sweep_interval) if sweep else None
    if sweeper_thread:
        sweeper_thread.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=runtime.settings.log_level)
    finally:
        if sweeper_thread:
            sweeper_thread.stop()
