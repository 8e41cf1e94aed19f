"""How an accepted message or call moves through its statuses, and the callbacks each step sends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .callbacks import Scheduler, WebhookSender
from .config import EmulatorConfig
from .resources import DELIVERY_ERRORS, call_callback_params, message_callback_params, now_rfc2822
from .store import Store

MESSAGE_PRICE = "-0.00790"
CALL_PRICE_PER_MINUTE = 0.014
# Which StatusCallbackEvent value subscribes to a call status; every final status is "completed".
_CALL_EVENT = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


@dataclass
class _Run:
    """One message or call on its way; ``steps`` are (seconds after start, callback status, changes)."""

    store: Store
    kind: str
    state: dict[str, Any]
    steps: list[tuple[float, str, dict[str, Any]]]
    callback: str | None
    events: frozenset[str]
    generation: int
    started: float = field(default_factory=time.monotonic)
    sequence: int = 0


class Lifecycle:
    """Plays each accepted message or call forward on the scheduler, one step after another.

    A step runs only after the previous step's callback was delivered (or gave up), so the
    callbacks of one message arrive in order even when ``delivery_delay`` is zero.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        sender: WebhookSender,
        config: Callable[[], EmulatorConfig],
        generation: Callable[[], int],
    ):
        self._scheduler = scheduler
        self._sender = sender
        self._config = config
        self._generation = generation

    def start_message(self, store: Store, record: dict[str, Any], config: EmulatorConfig) -> None:
        outcome = config.outcome("message", record["to"])
        status = outcome["status"]
        final: dict[str, Any] = {"status": status}
        if status != "delivered":
            code = int(outcome.get("error_code") or (30003 if status == "undelivered" else 30008))
            final.update(error_code=code, error_message=DELIVERY_ERRORS.get(code, "Unknown error"))
        steps: list[tuple[float, str, dict[str, Any]]] = []
        if status != "failed":  # a failed message never left Twilio
            sent = {"status": "sent", "date_sent": now_rfc2822(), "price": MESSAGE_PRICE}
            steps.append((0.0, "sent", sent))
        steps.append((config.delivery_delay, status, final))
        self._begin(store, "message", record, steps, frozenset())

    def start_call(self, store: Store, record: dict[str, Any], config: EmulatorConfig) -> None:
        outcome = config.outcome("call", record["to"])
        status = outcome["status"]
        delay = config.delivery_delay
        steps: list[tuple[float, str, dict[str, Any]]] = [
            (0.0, "initiated", {}),
            (0.0, "ringing", {"status": "ringing"}),
        ]
        if status == "completed":
            seconds = int(outcome.get("duration", config.call_duration))
            minutes = (seconds + 59) // 60
            detect = record["_params"].get("MachineDetection")
            answered_by = outcome.get("answered_by") or ("human" if detect else None)
            steps.append((delay, "in-progress", {"status": "in-progress", "answered_by": answered_by}))
            price = f"-{minutes * CALL_PRICE_PER_MINUTE:.5f}"
            steps.append((2 * delay, status, {"status": status, "duration": str(seconds), "price": price}))
        else:
            steps.append((delay, status, {"status": status, "duration": "0"}))
        raw_events = " ".join(record.get("_events", ()))
        events = frozenset(raw_events.split()) | {"completed"}
        self._begin(store, "call", record, steps, events)

    def _begin(self, store, kind, record, steps, events) -> None:
        run = _Run(
            store=store,
            kind=kind,
            state={k: v for k, v in record.items() if not k.startswith("_")},
            steps=steps,
            callback=record.get("_status_callback"),
            events=events,
            generation=self._generation(),
        )
        self._schedule(run, 0)

    def _schedule(self, run: _Run, index: int) -> None:
        delay = run.started + run.steps[index][0] - time.monotonic()
        self._scheduler.call_later(delay, self._step, run, index)

    def _step(self, run: _Run, index: int) -> None:
        if run.generation != self._generation():  # the emulator was reset since
            return
        _, callback_status, changes = run.steps[index]
        changes = dict(changes, date_updated=now_rfc2822())
        if run.kind == "call":
            changes.update(self._call_timestamps(callback_status))
        run.state.update(changes)
        run.store.update(run.state["sid"], **changes)
        if callback_status == "in-progress":
            self._fetch_twiml(run)

        def advance() -> None:
            if index + 1 < len(run.steps):
                self._schedule(run, index + 1)

        if not run.callback or not self._wants(run, callback_status):
            advance()
            return
        if run.kind == "message":
            params = message_callback_params(run.state)
        else:
            params = call_callback_params(dict(run.state, status=callback_status), run.sequence)
            run.sequence += 1
        config = self._config()
        self._sender.post(
            run.callback,
            params,
            retries=config.callback_retries,
            timeout=config.callback_timeout,
            then=advance,
        )

    @staticmethod
    def _wants(run: _Run, status: str) -> bool:
        if run.kind == "message":
            return True
        return _CALL_EVENT.get(status, "completed") in run.events

    @staticmethod
    def _call_timestamps(status: str) -> dict[str, Any]:
        if status == "in-progress":
            return {"start_time": now_rfc2822()}
        if status not in _CALL_EVENT:
            return {"end_time": now_rfc2822()}
        return {}

    def _fetch_twiml(self, run: _Run) -> None:
        """Like Twilio, ask the call's ``Url`` for TwiML once the call is answered."""
        record = run.store.get(run.state["sid"])
        url = record and record["_params"].get("Url")
        if not url:
            return
        config = self._config()
        params = call_callback_params(run.state, run.sequence)
        try:
            response = self._sender.request(url, params, config.callback_timeout)
            twiml = response.body.decode("utf-8", "replace")
        except Exception as exc:  # the call goes on; the failure is visible in the record
            twiml = f"<!-- fetching {url} failed: {exc} -->"
        run.store.update(run.state["sid"], _twiml=twiml)
