"""The sandbox carrier: sends nothing, keeps what it "sent", and reports delivery like a real carrier.

Its outbox and pending delivery reports live in Redis (short-lived developer state), so the API
process can show what a worker process "sent". Behaviour is set in its configuration:

- ``latency``: seconds each hand-off takes (simulated network time);
- ``transient_failure_rate`` / ``permanent_failure_rate``: share of hand-offs that fail;
- ``fail_times``: ``{number: N}`` — the first N attempts of each message to that number fail transiently;
- ``delivery_delay``: seconds until the ``delivered`` report; ``undelivered``: numbers that end undelivered;
- calls ring at once, are answered (``in-progress``) after ``delivery_delay`` and end ``completed`` after
  twice that, lasting ``call_duration`` seconds; ``busy`` and ``no_answer`` list numbers whose calls end
  that way after ringing (besides the emulator's ``+15005550021`` busy, ``+15005550022`` no answer and
  ``+15005550023`` failed);
- ``outbox_size``: how many sent items are kept per app.

Twilio's magic test numbers behave as on Twilio (``+15005550001`` invalid, ``+15005550004`` opted out …).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from .base import (
    Carrier,
    CarrierPermanentError,
    CarrierTransientError,
    OutboundCall,
    OutboundSms,
    SendResult,
    StatusReport,
)

MAGIC_NUMBERS: dict[str, tuple[str, str, str]] = {
    "+15005550001": ("21211", "The 'To' number is not a valid phone number.", "invalid_phone_number"),
    "+15005550002": ("21612", "The 'To' phone number is not currently reachable.", "unreachable_destination"),
    "+15005550003": ("21408", "Permission to send to this region is not enabled.", "unreachable_destination"),
    "+15005550004": ("21610", "Attempt to send to unsubscribed recipient.", "recipient_opted_out"),
    "+15005550009": ("21614", "'To' number is not a valid mobile number.", "not_a_mobile_number"),
}

# Twilio refuses calls to its test numbers with other codes than texts (see the emulator's config).
CALL_MAGIC_NUMBERS: dict[str, tuple[str, str, str]] = {
    "+15005550001": ("21211", "Invalid 'To' Phone Number", "invalid_phone_number"),
    "+15005550002": ("21214", "'To' phone number cannot be reached", "invalid_phone_number"),
    "+15005550003": ("21215", "Account not authorized to call this number", "unreachable_destination"),
    "+15005550004": ("21216", "Account not allowed to call this number", "unreachable_destination"),
}
# How an accepted call to these numbers ends, as on the emulator.
CALL_OUTCOMES = {"+15005550021": "busy", "+15005550022": "no-answer", "+15005550023": "failed"}
# Reports due at one time keep their order: each is due a millisecond after the one before.
_STEP = 0.001

# Pops up to ARGV[2] members whose score (due time) is <= ARGV[1], atomically across workers.
_POP_DUE = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #items > 0 then redis.call('ZREM', KEYS[1], unpack(items)) end
return items
"""


class SandboxCarrier(Carrier):
    type_name = "sandbox"

    def __init__(self, name, config, context=None):
        super().__init__(name, config, context)
        self._prefix = f"comms:sandbox:{name}"
        self._pop_due = self.context.redis.register_script(_POP_DUE) if self.context.redis else None

    def setting(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def send_sms(self, sms: OutboundSms) -> SendResult:
        self._simulate(sms.reference, sms.to, MAGIC_NUMBERS)
        sid = "SB" + uuid.uuid4().hex
        entry = {"kind": "sms", "to": sms.to, "from": sms.from_, "body": sms.body, "reference": sms.reference}
        if sms.to in self.setting("undelivered", ()):
            final = {"status": "undelivered", "error_code": "30003"}
        else:
            final = {"status": "delivered"}
        self._record(sms.app_id, sid, entry, [(1, final)])
        return SendResult(carrier_message_id=sid, status="sent", price="0.0000")

    def place_call(self, call: OutboundCall) -> SendResult:
        self._simulate(call.reference, call.to, CALL_MAGIC_NUMBERS)
        sid = "SC" + uuid.uuid4().hex
        entry = {
            "kind": "call",
            "to": call.to,
            "from": call.from_,
            "text": call.text,
            "reference": call.reference,
            "voice": call.voice,
            "language": call.language,
            "loop": call.loop,
        }
        self._record(call.app_id, sid, entry, self._call_reports(call.to))
        return SendResult(carrier_message_id=sid, status="initiated")

    def _call_reports(self, to: str) -> list[tuple[int, dict[str, Any]]]:
        """``(delays, report)`` of a call's progress: rings at once, then answered and completed, or not."""
        ending = CALL_OUTCOMES.get(to)
        if to in self.setting("busy", ()):
            ending = "busy"
        if to in self.setting("no_answer", ()):
            ending = "no-answer"
        if ending:
            return [(0, {"status": "ringing"}), (1, {"status": ending, "duration": 0})]
        duration = int(self.setting("call_duration", 12))
        return [
            (0, {"status": "ringing"}),
            (1, {"status": "in-progress"}),
            (2, {"status": "completed", "duration": duration}),
        ]

    def outbox(self, app_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """What was "sent" for ``app_id``, newest first."""
        raw = self.context.redis.lrange(f"{self._prefix}:outbox:{app_id}", 0, max(limit, 1) - 1)
        return [json.loads(item) for item in raw]

    def poll_reports(self, limit: int = 500) -> list[StatusReport]:
        if self._pop_due is None:
            return []
        items = self._pop_due(keys=[f"{self._prefix}:reports"], args=[time.time(), limit])
        reports = []
        for item in items:
            data = json.loads(item)
            reports.append(
                StatusReport(
                    carrier_message_id=data["sid"],
                    status=data["status"],
                    reference=data["reference"],
                    error_code=data.get("error_code"),
                    duration=data.get("duration"),
                )
            )
        return reports

    def _simulate(self, reference: str, to: str, magic: dict[str, tuple[str, str, str]]) -> None:
        latency = float(self.setting("latency", 0))
        if latency:
            time.sleep(latency)
        if to in magic:
            code, message, error = magic[to]
            raise CarrierPermanentError(code, message, error)
        fail_times = self.setting("fail_times", {})
        if to in fail_times:
            key = f"{self._prefix}:attempts:{reference}"
            with self.context.redis.pipeline() as pipe:
                attempts, _ = pipe.incr(key).expire(key, 3600).execute()
            if attempts <= int(fail_times[to]):
                raise CarrierTransientError(
                    "503", f"sandbox: simulated outage (attempt {attempts})", "carrier_unavailable"
                )
        roll = random.random()
        if roll < float(self.setting("transient_failure_rate", 0)):
            raise CarrierTransientError("503", "sandbox: simulated transient failure", "carrier_unavailable")
        if roll > 1 - float(self.setting("permanent_failure_rate", 0)):
            raise CarrierPermanentError("30006", "sandbox: simulated permanent failure", "carrier_rejected")

    def _record(
        self, app_id: str, sid: str, entry: dict[str, Any], reports: list[tuple[int, dict[str, Any]]]
    ) -> None:
        """Keep what was "sent" and schedule its reports, each ``delays`` × ``delivery_delay`` from now."""
        entry = {**entry, "sid": sid, "at": time.time()}
        outbox_key = f"{self._prefix}:outbox:{app_id}"
        delay = float(self.setting("delivery_delay", 0.5))
        now = time.time()
        due = {}
        for i, (delays, report) in enumerate(reports):
            member = json.dumps({"sid": sid, "reference": entry["reference"], **report})
            due[member] = now + delays * delay + i * _STEP
        with self.context.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(outbox_key, json.dumps(entry))
            pipe.ltrim(outbox_key, 0, int(self.setting("outbox_size", 1000)) - 1)
            pipe.zadd(f"{self._prefix}:reports", due)
            pipe.execute()
