"""The Twilio carrier: Messages and Calls through the official SDK, TwiML ``<Say>``, signed webhooks.

Which failures are worth retrying:

- **Transient** (``CarrierTransientError``, retry later or on another route): HTTP 429 and code
  20429 (rate limited); every HTTP 5xx (20500, 20503: Twilio itself is failing); 21611 (the
  sender's outbound queue is full — it drains by itself); connection errors and timeouts (the
  request may not have reached Twilio). A read timeout can hide a message Twilio did accept,
  so a retry may deliver twice; Twilio's Messages API has no idempotency key to prevent that.
- **Permanent** (``CarrierPermanentError``, stop): everything else Twilio refuses with a 4xx,
  because the same request will be refused again — an invalid or unreachable number (21211,
  21214, 21217, 21408, 21612, 21614), an opted-out recipient (21610), a sender that is not
  ours (21212, 21606), a missing body (21602), a trial-account restriction (21608), and bad
  credentials (20003: no retry fixes a wrong auth token; an operator must).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from twilio.base import values
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from .base import (
    Carrier,
    CarrierContext,
    CarrierError,
    CarrierPermanentError,
    CarrierTransientError,
    OutboundCall,
    OutboundSms,
    SendResult,
    StatusReport,
)

# Twilio code -> our stable error id. Codes not listed: 5xx/429 are transient, other 4xx permanent.
PERMANENT_ERRORS: dict[int, str] = {
    20003: "carrier_auth_failed",
    21201: "invalid_phone_number",
    21211: "invalid_phone_number",
    21214: "invalid_phone_number",
    21217: "invalid_phone_number",
    21604: "invalid_phone_number",
    21212: "invalid_sender",
    21213: "invalid_sender",
    21603: "invalid_sender",
    21606: "invalid_sender",
    21408: "unreachable_destination",
    21612: "unreachable_destination",
    21215: "unreachable_destination",
    21216: "unreachable_destination",
    21610: "recipient_opted_out",
    21614: "not_a_mobile_number",
    21602: "invalid_message_body",
    21617: "invalid_message_body",
    21608: "unverified_recipient",
}
TRANSIENT_ERRORS: dict[int, str] = {
    20429: "rate_limited",
    21611: "carrier_queue_full",
}

# Delivery-receipt codes Twilio sends without a message.
DELIVERY_ERRORS: dict[str, str] = {
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered",
    "30008": "Unknown error",
}

MESSAGE_STATUSES: dict[str, str] = {
    # Twilio has it but has not handed it on yet: ours is still "sending".
    "accepted": "sending",
    "scheduled": "sending",
    "queued": "sending",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "canceled",
}
CALL_STATUSES = frozenset(
    {"queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"}
)
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
MAX_LOOP = 10
TWILIO_API_URL = "https://api.twilio.com"


class PooledHttpClient(TwilioHttpClient):
    """The SDK's HTTP client with one connection pool shared safely by many sending threads.

    The stock client mounts its pooled adapter for ``https://`` only (so ``http://`` emulator
    URLs get requests' default pool of 10) and sizes it by CPU count. Here both schemes share
    ``max_connections`` connections, urllib3 never re-sends a POST by itself (a retry is the
    worker's decision), and the session keeps no cookies, its only mutable state across requests.

    Proxy and CA-bundle environment variables are read once here: with ``trust_env`` on, requests
    scans the whole environment twice per request, which was a third of the client's CPU time.
    """

    def __init__(self, timeout: float, max_connections: int, base_url: str):
        super().__init__(pool_connections=True, timeout=timeout, proxy=get_environ_proxies(base_url))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.session.trust_env = False
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle


class TwilioCarrier(Carrier):
    """Sends texts and voice calls through Twilio (or the local emulator, via ``api_base_url``).

    Configuration: ``account_sid``, ``auth_token``, ``from`` (default sender) and/or
    ``messaging_service_sid``, ``webhook_base_url`` (where Twilio reaches comms; defaults to the
    deployment's public URL), ``api_base_url`` (for example the emulator's ``http://127.0.0.1:8099``),
    ``timeout`` (seconds, default 10), ``max_connections`` (connections kept open to Twilio,
    default 64; a burst beyond it opens short-lived extras rather than waiting), ``machine_detection``
    (a call's default), ``voice`` (the ``<Say>`` voice of calls that name none), ``cps`` (calls per
    second, default 1 as on a Twilio account), and ``region``/``edge`` (real Twilio only; ignored with
    ``api_base_url``).
    """

    type_name = "twilio"
    secret_fields = ("auth_token",)
    default_cps = 1.0  # Twilio's default calls-per-second limit of an account

    def __init__(self, name: str, config: Mapping[str, Any], context: CarrierContext | None = None):
        super().__init__(name, config, context)
        cfg = self.config
        account_sid, auth_token = cfg.get("account_sid"), cfg.get("auth_token")
        if not account_sid or not auth_token:
            raise ValueError(f"carrier {name}: account_sid and auth_token are required")
        timeout = float(cfg.get("timeout", 10))
        max_connections = int(cfg.get("max_connections", 64))
        if timeout <= 0 or max_connections < 1:
            raise ValueError(f"carrier {name}: timeout must be > 0 and max_connections >= 1")
        api_base_url = cfg.get("api_base_url")
        if api_base_url and urlsplit(api_base_url).scheme not in ("http", "https"):
            raise ValueError(f"carrier {name}: api_base_url must be an http(s) URL")
        self.default_from = cfg.get("from")
        self.messaging_service_sid = cfg.get("messaging_service_sid")
        webhook_base = cfg.get("webhook_base_url") or self.context.public_url or ""
        self.webhook_base_url = webhook_base.rstrip("/")

        # A non-empty ``environment`` stops the SDK reading TWILIO_EDGE/TWILIO_REGION from
        # os.environ, which would rewrite an emulator host (it only checks ``environment or os.environ``).
        client = Client(
            account_sid,
            auth_token,
            http_client=PooledHttpClient(timeout, max_connections, api_base_url or TWILIO_API_URL),
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
            region=None if api_base_url else cfg.get("region"),
            edge=None if api_base_url else cfg.get("edge"),
        )
        if api_base_url:
            # Messages and Calls both live on the "api" domain; its base_url is read per request.
            client.api.base_url = api_base_url.rstrip("/")
        account = client.api.v2010.account  # resolved once: the SDK's lazy properties are not locked
        self._messages = account.messages
        self._calls = account.calls
        self._validator = RequestValidator(auth_token)

    # -- sending -------------------------------------------------------------------------------

    def send_sms(self, sms: OutboundSms) -> SendResult:
        sender = sms.from_ or self.default_from
        if not sender and not self.messaging_service_sid:
            raise CarrierPermanentError(None, f"carrier {self.name}: no sender configured", "invalid_sender")
        with _translated_errors():
            message = self._messages.create(
                to=sms.to,
                body=sms.body,
                from_=sender or values.unset,
                messaging_service_sid=self.messaging_service_sid or values.unset,
                status_callback=self._callback(sms.status_callback, "message-status", sms.reference),
            )
        return SendResult(carrier_message_id=message.sid, status="sent", price=message.price)

    def place_call(self, call: OutboundCall) -> SendResult:
        sender = call.from_ or self.default_from
        if not sender:
            raise CarrierPermanentError(None, f"carrier {self.name}: no caller id", "invalid_sender")
        if not 1 <= call.loop <= MAX_LOOP:  # Twilio reads loop="0" as "forever"
            raise CarrierPermanentError(None, f"loop must be between 1 and {MAX_LOOP}", "invalid_request")
        twiml = VoiceResponse()
        voice = call.voice or self.config.get("voice")
        twiml.say(call.text, voice=voice, language=call.language, loop=call.loop)
        machine_detection = call.machine_detection or self.config.get("machine_detection")
        with _translated_errors():
            created = self._calls.create(
                to=call.to,
                from_=sender,
                twiml=str(twiml),
                status_callback=self._callback(call.status_callback, "call-status", call.reference),
                status_callback_event=CALL_EVENTS,
                status_callback_method="POST",
                machine_detection=machine_detection or values.unset,
            )
        return SendResult(carrier_message_id=created.sid, status="initiated", price=created.price)

    def _callback(self, explicit: str | None, path: str, reference: str) -> str | object:
        """The StatusCallback URL; ours carries ``reference`` so an early callback can be matched."""
        if explicit:
            return explicit
        if not self.webhook_base_url:
            return values.unset
        return f"{self.webhook_base_url}/webhooks/twilio/{path}?{urlencode({'reference': reference})}"

    # -- webhooks ------------------------------------------------------------------------------

    def verify_request(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """True when ``signature`` (X-Twilio-Signature) signs ``url`` + the POST form ``params``.

        ``url`` is the full URL Twilio called, query string included; ``params`` the form body only.
        """
        if not signature:
            return False
        return self._validator.validate(url, params, signature)

    def parse_message_status(self, params: Mapping[str, str]) -> StatusReport:
        """A message status callback as a report in our statuses (``read`` counts as delivered)."""
        sid = params.get("MessageSid") or params.get("SmsSid")
        twilio_status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or twilio_status not in MESSAGE_STATUSES:
            raise ValueError(f"not a Twilio message status callback (status {twilio_status!r})")
        error_code = params.get("ErrorCode") or None
        error_message = params.get("ErrorMessage") or DELIVERY_ERRORS.get(error_code or "")
        return StatusReport(
            carrier_message_id=sid,
            status=MESSAGE_STATUSES[twilio_status],
            reference=params.get("reference") or None,
            error_code=error_code,
            error_message=error_message,
            price=params.get("Price") or None,
            raw=dict(params),
        )

    def parse_call_status(self, params: Mapping[str, str]) -> StatusReport:
        """A call progress callback; Twilio's call statuses are ours, ``duration`` from CallDuration."""
        sid = params.get("CallSid")
        status = params.get("CallStatus")
        if not sid or status not in CALL_STATUSES:
            raise ValueError(f"not a Twilio call status callback (status {status!r})")
        duration = params.get("CallDuration")
        return StatusReport(
            carrier_message_id=sid,
            status=status,
            reference=params.get("reference") or None,
            error_code=params.get("ErrorCode") or None,
            error_message=params.get("ErrorMessage") or None,
            duration=int(duration) if duration not in (None, "") else None,
            price=params.get("Price") or None,
            raw=dict(params),
        )


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn what the SDK and requests raise into our transient/permanent carrier errors."""
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise classify(exc.status, exc.code, _message(exc)) from exc
    except requests.Timeout as exc:
        message = f"Twilio did not answer in time ({type(exc).__name__})"
        raise CarrierTransientError(None, message, "carrier_timeout") from exc
    except requests.RequestException as exc:
        message = f"could not reach Twilio ({type(exc).__name__})"
        raise CarrierTransientError(None, message, "carrier_unreachable") from exc


def classify(status: int | None, code: int | None, message: str) -> CarrierError:
    """The carrier error for a Twilio refusal with HTTP ``status`` and Twilio ``code``."""
    code_text = str(code) if code is not None else None
    if code in TRANSIENT_ERRORS:
        return CarrierTransientError(code_text, message, TRANSIENT_ERRORS[code])
    if code in PERMANENT_ERRORS:
        return CarrierPermanentError(code_text, message, PERMANENT_ERRORS[code])
    status = status or 0
    if status == 429:
        return CarrierTransientError(code_text, message, "rate_limited")
    if status >= 500:
        return CarrierTransientError(code_text, message, "carrier_unavailable")
    if status == 401:
        return CarrierPermanentError(code_text, message, "carrier_auth_failed")
    return CarrierPermanentError(code_text, message, "carrier_rejected")


def _message(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioServiceException):
        return exc.detail or exc.title
    # The SDK prefixes "Unable to create record: "; keep Twilio's own words.
    return exc.msg.split(": ", 1)[-1] if exc.msg else f"HTTP {exc.status}"
