"""Background delivery of signed webhooks: a delay scheduler, a small sender pool, and retries."""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

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
        self._queued = 0
        self._queued_lock = threading.Lock()
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
        """Tasks waiting for their time or for a free pool thread (a backlog shows here)."""
        return len(self._heap) + self._queued

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
        with self._queued_lock:
            self._queued += 1
        try:
            self._pool.submit(self._guarded, fn, args)
        except RuntimeError:  # the pool was shut down while this was due
            pass

    def _guarded(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._queued_lock:
            self._queued -= 1
        try:
            fn(*args)
        except Exception:  # a bug in one callback must not kill a pool thread or the server
            log.exception("emulator background task failed")


class WebhookResponse(NamedTuple):
    status: int
    body: bytes
    content_type: str | None


class WebhookSender:
    """POSTs form-encoded, ``X-Twilio-Signature``-signed webhooks the way Twilio does.

    Each sending thread keeps one kept-alive ``http.client`` connection per receiver: at
    hundreds of messages a second (two callbacks each) a pooled client library costs about
    twice the CPU, and that CPU is taken from the REST side of the same process.
    """

    def __init__(self, scheduler: Scheduler, auth_token: Callable[[], str]):
        self._scheduler = scheduler
        self._auth_token = auth_token
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self.stats = {"callbacks_sent": 0, "callbacks_failed": 0, "callbacks_retried": 0}

    def request(self, url: str, params: Mapping[str, str], timeout: float) -> WebhookResponse:
        """One signed POST, synchronously; raises OSError or HTTPException when it cannot be made."""
        signature = RequestValidator(self._auth_token()).compute_signature(url, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": f"{random.getrandbits(128):032x}",
        }
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = (parts.scheme, parts.hostname, parts.port)
        body = urlencode(params)
        while True:
            connection, reused = self._connection(origin, timeout)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._discard(origin, connection)
                if reused:  # the receiver closed an idle kept-alive connection: once more, on a new one
                    continue
                raise
            except BaseException:
                self._discard(origin, connection)
                raise
            if response.will_close:
                self._discard(origin, connection)
            return WebhookResponse(response.status, data, response.getheader("Content-Type"))

    def _connection(self, origin: tuple[str, str, int | None], timeout: float):
        connections = self._local.__dict__.setdefault("by_origin", {})
        connection = connections.get(origin)
        if connection is not None:
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, True
        scheme, host, port = origin
        factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = factory(host, port, timeout=timeout)
        connections[origin] = connection
        with self._lock:
            self._open.add(connection)
        return connection, False

    def _discard(self, origin: tuple[str, str, int | None], connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.__dict__.get("by_origin", {}).pop(origin, None)
        with self._lock:
            self._open.discard(connection)

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
        """Send from the calling (background) thread; on a failure retry later, then call ``then``.

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
            self._scheduler.call_later(delay, self._retry, url, params, retries, timeout, then, attempt + 1)
            return
        self._count("callbacks_sent" if ok else "callbacks_failed")
        if then is not None:
            then()

    def _retry(self, url, params, retries, timeout, then, attempt) -> None:
        self.post(url, params, retries=retries, timeout=timeout, then=then, attempt=attempt)

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = dict.fromkeys(self.stats, 0)

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def close(self) -> None:
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.close()
