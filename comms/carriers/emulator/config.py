"""The emulator's settings, Twilio's magic test numbers, and what each number does."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "emulator-token"  # the same default as `comms emulator`

# Twilio's documented test-credential numbers (https://www.twilio.com/docs/iam/test-credentials).
# The REST create is refused with the error code, as Twilio does for test credentials.
MESSAGE_TO_ERRORS: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MESSAGE_FROM_ERRORS: dict[str, int] = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
CALL_TO_ERRORS: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21214,
    "+15005550003": 21215,
    "+15005550004": 21216,
}
CALL_FROM_ERRORS: dict[str, int] = {"+15005550001": 21212}

# Emulator-only numbers (Twilio has no test number for an asynchronous failure): the create
# succeeds and the number ends with this outcome, reported by status callback.
OUTCOME_NUMBERS: dict[str, dict[str, Any]] = {
    "+15005550011": {"status": "undelivered", "error_code": 30003},
    "+15005550012": {"status": "undelivered", "error_code": 30005},
    "+15005550013": {"status": "undelivered", "error_code": 30006},
    "+15005550014": {"status": "failed", "error_code": 30008},
    "+15005550021": {"status": "busy"},
    "+15005550022": {"status": "no-answer"},
    "+15005550023": {"status": "failed"},
}

MESSAGE_FINAL = frozenset({"delivered", "undelivered", "failed"})
CALL_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_NUMBER_KEYS = frozenset({"error", "status", "error_code", "duration", "answered_by"})
_RATES = ("failure_rate", "error_429_rate")
_DELAYS = ("latency", "delivery_delay", "callback_timeout")


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves. Immutable: a change swaps in a new object, so readers need no lock.

    Attributes:
        account_sid, auth_token: the only credentials the REST API accepts; the token signs callbacks.
        latency: seconds added to every REST create (a message or call), to look like a real carrier.
        failure_rate: share of creates answered 500 or 503 (a transient carrier outage).
        error_429_rate: share of creates answered 429 (code 20429, too many requests).
        delivery_delay: seconds from create to the final delivery callback; a call is answered
            after one delay and ends after two.
        call_duration: the ``CallDuration`` (seconds) a completed call reports; not waited for.
        numbers: per-``To`` overrides, ``{"+15551230000": {"error": 21610}}`` (refuse the create)
            or ``{"status": "undelivered", "error_code": 30003}`` (accept, then end that way);
            calls take ``status`` ``busy``/``no-answer``/``failed`` and ``duration``.
        store_limit: messages and calls kept for ``GET`` and the ``/_emulator`` listings (each kind).
        callback_workers, callback_retries, callback_timeout: the status-callback sender.
    """

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    latency: float = 0.0
    failure_rate: float = 0.0
    error_429_rate: float = 0.0
    delivery_delay: float = 0.0
    call_duration: int = 7
    numbers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    store_limit: int = 10_000
    callback_workers: int = 8
    callback_retries: int = 2
    callback_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.account_sid or not self.auth_token:
            raise ValueError("account_sid and auth_token are required")
        for name in _RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.failure_rate + self.error_429_rate > 1.0:
            raise ValueError("failure_rate + error_429_rate must not exceed 1")
        for name in _DELAYS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.call_duration < 0 or self.store_limit < 1 or self.callback_workers < 1:
            raise ValueError("call_duration >= 0, store_limit >= 1 and callback_workers >= 1 are required")
        for number, behaviour in self.numbers.items():
            unknown = set(behaviour) - _NUMBER_KEYS
            if unknown:
                raise ValueError(f"numbers[{number!r}]: unknown keys {sorted(unknown)}")
            for key in ("error", "error_code", "duration"):
                if behaviour.get(key) is not None:
                    int(behaviour[key])  # a ValueError here names the bad value

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> EmulatorConfig:
        """Build a config from plain values (JSON, TOML, keyword arguments); unknown keys are an error."""
        return cls().updated(values or {})

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with ``changes`` applied; ``numbers`` entries are merged, a ``None`` entry removes one."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown emulator settings: {sorted(unknown)}")
        values = dict(changes)
        for name in _RATES + _DELAYS:
            if name in values:
                values[name] = float(values[name])
        for name in ("call_duration", "store_limit", "callback_workers", "callback_retries"):
            if name in values:
                values[name] = int(values[name])
        if "numbers" in values:
            merged = dict(self.numbers)
            for number, behaviour in (values["numbers"] or {}).items():
                if behaviour is None:
                    merged.pop(number, None)
                else:
                    merged[number] = dict(behaviour)
            values["numbers"] = merged
        return dataclasses.replace(self, **values)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the auth token."""
        values = dataclasses.asdict(self)
        values["auth_token"] = "********"
        return values

    def rest_error(self, kind: str, to: str, from_: str | None) -> int | None:
        """The Twilio error code a create to ``to`` from ``from_`` is refused with, if any."""
        override = self.numbers.get(to, {}).get("error")
        if override:
            return int(override)
        if kind == "message":
            to_errors, from_errors = MESSAGE_TO_ERRORS, MESSAGE_FROM_ERRORS
        else:
            to_errors, from_errors = CALL_TO_ERRORS, CALL_FROM_ERRORS
        if from_ and from_ in from_errors:
            return from_errors[from_]
        return to_errors.get(to)

    def outcome(self, kind: str, to: str) -> dict[str, Any]:
        """How an accepted message or call to ``to`` ends: ``status`` plus optional details."""
        behaviour = dict(OUTCOME_NUMBERS.get(to, {}))
        behaviour.update(self.numbers.get(to, {}))
        final = MESSAGE_FINAL if kind == "message" else CALL_FINAL
        if behaviour.get("status") not in final:
            behaviour["status"] = "delivered" if kind == "message" else "completed"
            behaviour.pop("error_code", None)
        return behaviour
