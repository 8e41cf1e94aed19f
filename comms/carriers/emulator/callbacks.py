"""Background delivery of signed webhooks: a delay scheduler, a small sender pool, and retries."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import urllib3
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.25, 1.0, 3.0)  # seconds before the 2nd, 3rd, 4th attempt


class Scheduler:
    """Runs functions after a delay on a small thread pool; never blocks the caller.

    One thread sleeps on a heap of due times and hands due work to the pool, so a thousand
    pending callbacks cost a thousand heap entries, not a thousand sleeping threads.
    """

    def __init__(self, workers: int, max_pending: int = 200_000):
        self.max_pending = max_pending
        self.dropped = 0
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-callback")
        self._thread = threading.Thread(target=self._run, name="emulator-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the pool after ``delay`` seconds (at once when ``delay <= 0``)."""
        if self._stopped:
            return
        if delay <= 0:
            self._submit(fn, args)
            return
        with self._cond:
            if len(self._heap) >= self.max_pending:
                # Memory stays bounded when a receiver cannot keep up; tests see it in /_emulator/stats.
                self.dropped += 1
                return
            entry = (time.monotonic() + delay, next(self._order), fn, args)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                due = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for _, _, fn, args in due:
                self._submit(fn, args)

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._pool.submit(_guarded, fn, args)
        except RuntimeError:  # the pool was shut down while this was due
            pass


def _guarded(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:  # a bug in one callback must not kill a pool thread or the server
        log.exception("emulator background task failed")


class WebhookSender:
    """POSTs form-encoded, ``X-Twilio-Signature``-signed webhooks the way Twilio does."""

    def __init__(self, scheduler: Scheduler, auth_token: Callable[[], str], workers: int):
        self._scheduler = scheduler
        self._auth_token = auth_token
        self._http = urllib3.PoolManager(num_pools=16, maxsize=workers, retries=False)
        self._lock = threading.Lock()
        self.stats = {"callbacks_sent": 0, "callbacks_failed": 0, "callbacks_retried": 0}

    def request(self, url: str, params: Mapping[str, str], timeout: float) -> urllib3.BaseHTTPResponse:
        """One signed POST, synchronously; raises on connection errors."""
        signature = RequestValidator(self._auth_token()).compute_signature(url, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        return self._http.request(
            "POST", url, body=urlencode(params), headers=headers, timeout=timeout, redirect=False
        )

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        retries: int,
        timeout: float,
        then: Callable[[], None] | None = None,
        attempt: int = 0,
    ) -> None:
        """Send in the background's current thread; on a failure retry later, then call ``then``.

        Like Twilio, a 4xx answer is final; a 5xx or an unreachable receiver is retried.
        """
        try:
            ok = self.request(url, params, timeout).status < 500
        except Exception as exc:  # whatever the receiver does must not stop the emulator
            log.debug("callback to %s failed: %s", url, exc)
            ok = False
        if not ok and attempt < min(retries, len(RETRY_DELAYS)):
            self._count("callbacks_retried")
            delay = RETRY_DELAYS[attempt]
            self._scheduler.call_later(
                delay, self._retry, url, params, retries, timeout, then, attempt + 1
            )
            return
        self._count("callbacks_sent" if ok else "callbacks_failed")
        if then is not None:
            then()

    def _retry(self, url, params, retries, timeout, then, attempt) -> None:
        self.post(url, params, retries=retries, timeout=timeout, then=then, attempt=attempt)

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def close(self) -> None:
        self._http.clear()
